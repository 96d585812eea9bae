"""Namespaces Pulumi prepares for applications Argo CD deploys, with the secrets they need."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.kube import BASELINE, PLATFORM_LABELS, namespace, with_provider


@dataclass
class AppNamespaceArgs:
    provider: k8s.Provider
    namespace: str
    env: Mapping[str, pulumi.Input[str]]
    """Environment for the application's pods, kept as one Secret. Every value is stored secret."""
    secret_name: str = "platform-env"  # noqa: S105 - a Secret object's name, not a secret


class AppNamespace(pulumi.ComponentResource):
    """The namespace an application runs in, and a Secret with what the platform hands it."""

    secret_name: str
    namespace: k8s.core.v1.Namespace
    """The Namespace itself: what the deployer's RoleBinding there waits for."""

    def __init__(self, name: str, args: AppNamespaceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spitikos:apps:AppNamespace", name, None, with_provider(opts, args.provider))
        ns = namespace(f"{name}-namespace", args.namespace, self, BASELINE)
        self.namespace = ns
        k8s.core.v1.Secret(
            f"{name}-env",
            metadata={"name": args.secret_name, "namespace": ns.metadata.name, "labels": PLATFORM_LABELS},
            type="Opaque",
            string_data={k: pulumi.Output.secret(v) for k, v in args.env.items()},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.secret_name = args.secret_name
        self.register_outputs({"secret_name": self.secret_name})
