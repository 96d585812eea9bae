"""Small helpers shared by the in-cluster components."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

PLATFORM_LABELS = {"app.kubernetes.io/part-of": "spitikos", "app.kubernetes.io/managed-by": "pulumi"}


@dataclass(frozen=True)
class Size:
    """A container's CPU and memory: requests are what the scheduler reserves, limits the ceiling."""

    cpu: str
    memory: str
    cpu_limit: str
    memory_limit: str

    def resources(self) -> dict[str, dict[str, str]]:
        return {
            "requests": {"cpu": self.cpu, "memory": self.memory},
            "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
        }


def namespace(resource_name: str, name: str, parent: pulumi.Resource) -> k8s.core.v1.Namespace:
    """A namespace the platform owns; its provider comes from the parent component."""
    return k8s.core.v1.Namespace(
        resource_name,
        metadata={"name": name, "labels": PLATFORM_LABELS},
        opts=pulumi.ResourceOptions(parent=parent),
    )


def with_provider(opts: pulumi.ResourceOptions | None, provider: k8s.Provider) -> pulumi.ResourceOptions:
    """Component options whose Kubernetes children all use `provider`."""
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(providers=[provider]))


def chart(
    resource_name: str,
    parent: pulumi.Resource,
    *,
    release: str,
    chart: str,
    version: str,
    repo: str,
    namespace: pulumi.Input[str],
    values: dict[str, Any],
) -> k8s.helm.v3.Release:
    """An upstream chart at a pinned version, rolled back if it does not become ready."""
    return k8s.helm.v3.Release(
        resource_name,
        k8s.helm.v3.ReleaseArgs(
            name=release,
            chart=chart,
            version=version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=repo),
            namespace=namespace,
            values=values,
            atomic=True,
            cleanup_on_fail=True,
            max_history=5,
            timeout=900,
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def service_host(service: str, namespace: str) -> str:
    return f"{service}.{namespace}.svc.cluster.local"
