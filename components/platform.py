"""The whole platform, composed from its parts and wired together by Outputs."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.k3s import K3sCluster, K3sClusterArgs, NodeArgs
from components.settings import NodeSettings, Settings


@dataclass
class PlatformArgs:
    settings: Settings


class Platform(pulumi.ComponentResource):
    """k3s and everything on and around it, from one validated `Settings`."""

    cluster: K3sCluster
    kubeconfig: pulumi.Output[str]
    """Secret."""
    node_address: str

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spitikos:platform:Platform", name, None, opts)
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)

        def node(n: NodeSettings) -> NodeArgs:
            return NodeArgs(
                host=n.host, user=n.user, port=n.port, private_key=settings.ssh_private_key, host_key=n.host_key
            )

        self.cluster = K3sCluster(
            f"{name}-k3s",
            K3sClusterArgs(
                server=node(settings.server),
                agents=[node(a) for a in settings.agents],
                version=settings.k3s_version,
            ),
            opts=child,
        )
        self.kubeconfig = self.cluster.kubeconfig
        self.node_address = settings.server.host
        self.register_outputs({"kubeconfig": self.kubeconfig, "node_address": self.node_address})
