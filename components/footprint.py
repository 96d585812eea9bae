"""What the platform asks of the node: CPU and memory requests and limits.

Computed from the inputs the program registers (Deployment specs and Helm values),
not from a table kept on the side, so it cannot drift from what is deployed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

NODE_MEMORY_MI = 4096
"""The smallest Pi 5 the platform supports: 4 GB."""
K3S_SYSTEM_MI = 512
"""An estimate for k3s itself (server, containerd) and its bundled CoreDNS, metrics-server
and local-path provisioner, none of which this stack sizes."""
APPLICATION_RESERVE_MI = 2560
"""What must stay free for the applications Argo CD deploys."""

_MEMORY_UNITS = {
    "Ki": 1 / 1024,
    "Mi": 1,
    "Gi": 1024,
    "K": 1000 / 1024**2,
    "M": 1000**2 / 1024**2,
    "G": 1000**3 / 1024**2,
}


def memory_mi(quantity: str) -> float:
    """`128Mi` -> 128; `1Gi` -> 1024; `500M` -> 476.8."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMG]i?)?", str(quantity))
    if not match:
        raise ValueError(f"not a memory quantity: {quantity!r}")
    number, unit = match.groups()
    return float(number) * (_MEMORY_UNITS[unit] if unit else 1 / 1024**2)


def cpu_millis(quantity: str) -> float:
    """`100m` -> 100; `1` -> 1000."""
    text = str(quantity)
    return float(text[:-1]) if text.endswith("m") else float(text) * 1000


@dataclass(frozen=True)
class Container:
    owner: str
    """The resource it comes from (a Deployment or a Helm release)."""
    path: str
    """Where in that resource's inputs its resources are set."""
    replicas: int
    cpu_request: float
    memory_request: float
    cpu_limit: float
    memory_limit: float


def _resource_specs(value: Any, path: str = "", replicas: int = 1) -> Iterator[tuple[str, dict, int]]:
    """Every `{requests, limits}` block in a Helm values tree, with the nearest replica count."""
    if isinstance(value, dict):
        replicas = int(value.get("replicas", value.get("replicaCount", replicas)))
        if "requests" in value or "limits" in value:
            yield path, value, replicas
            return
        for key, child in value.items():
            yield from _resource_specs(child, f"{path}.{key}" if path else key, replicas)
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _resource_specs(child, f"{path}[{i}]", replicas)


def _container(owner: str, path: str, spec: dict, replicas: int) -> Container:
    requests, limits = spec.get("requests", {}), spec.get("limits", {})
    return Container(
        owner=owner,
        path=path,
        replicas=replicas,
        cpu_request=cpu_millis(requests.get("cpu", "0")),
        memory_request=memory_mi(requests.get("memory", "0")),
        cpu_limit=cpu_millis(limits.get("cpu", "0")),
        memory_limit=memory_mi(limits.get("memory", "0")),
    )


def containers(kind: str, name: str, inputs: dict) -> list[Container]:
    """The containers a registered resource starts, with their sizes."""
    if kind == "kubernetes:helm.sh/v3:Release":
        return [_container(name, p, spec, n) for p, spec, n in _resource_specs(inputs.get("values", {}))]
    if kind in ("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet", "kubernetes:apps/v1:DaemonSet"):
        spec = inputs.get("spec", {})
        pod = spec.get("template", {}).get("spec", {})
        replicas = int(spec.get("replicas", 1))
        return [
            _container(name, f"{group}[{c.get('name')}]", c.get("resources", {}), replicas)
            for group in ("initContainers", "containers")
            for c in pod.get(group, [])
        ]
    return []


@dataclass(frozen=True)
class Footprint:
    containers: tuple[Container, ...]

    @property
    def memory_requests_mi(self) -> float:
        return sum(c.memory_request * c.replicas for c in self.containers)

    @property
    def memory_limits_mi(self) -> float:
        return sum(c.memory_limit * c.replicas for c in self.containers)

    @property
    def cpu_requests_millis(self) -> float:
        return sum(c.cpu_request * c.replicas for c in self.containers)

    @property
    def cpu_limits_millis(self) -> float:
        return sum(c.cpu_limit * c.replicas for c in self.containers)

    @property
    def left_for_applications_mi(self) -> float:
        return NODE_MEMORY_MI - K3S_SYSTEM_MI - self.memory_requests_mi

    def unsized(self) -> list[Container]:
        """Containers missing a CPU or memory request or limit."""
        return [c for c in self.containers if not all((c.cpu_request, c.memory_request, c.cpu_limit, c.memory_limit))]
