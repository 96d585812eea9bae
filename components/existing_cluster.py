"""A cluster the operator already runs (k3s, kind, a managed Kubernetes): the platform is built on
it as on the k3s node, through a provider made from its kubeconfig, and nothing is installed on a
machine. It exposes what `K3sCluster` does to the rest of the platform: `kubeconfig` and `provider`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s


@dataclass
class ExistingClusterArgs:
    kubeconfig: pulumi.Input[str]
    """The cluster's kubeconfig (its current context is used). Secret."""


class ExistingCluster(pulumi.ComponentResource):
    """A Kubernetes provider for a cluster the stack does not set up."""

    kubeconfig: pulumi.Output[str]
    """The kubeconfig as given. Secret."""
    provider: k8s.Provider
    """The Kubernetes provider every in-cluster component uses."""
    server_token: pulumi.Output[str] | None = None
    """None: the stack keeps no k3s server token for a cluster it did not set up."""

    def __init__(self, name: str, args: ExistingClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spitikos:cluster:ExistingCluster", name, None, opts)
        self.kubeconfig = pulumi.Output.secret(args.kubeconfig)
        self.provider = k8s.Provider(
            f"{name}-kubernetes",
            kubeconfig=self.kubeconfig,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"kubeconfig": self.kubeconfig})
