"""What the platform asks of the node: CPU and memory requests and limits.

Computed from the inputs the program registers (Deployment specs and Helm values),
not from a table kept on the side, so it cannot drift from what is deployed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from components.charts import chart_name

NODE_MEMORY_MI = 4096
"""The smallest Pi 5 the platform supports: 4 GB."""
K3S_SYSTEM_MI = 512
"""An estimate for k3s itself (server, containerd) and its bundled CoreDNS, metrics-server
and local-path provisioner, none of which this stack sizes."""
APPLICATION_RESERVE_MI = 2560
"""What must stay free for the applications Argo CD deploys: a sizing target, not a measurement.
The real organization's charts (spitikos/charts) run kube-prometheus-stack, whose Prometheus
alone requests 512Mi (limit 1Gi), Grafana, Vault, the api and the homepage beside the platform."""
NODE_CPU_MILLIS = 4000
"""Every Raspberry Pi 5 has four Cortex-A76 cores."""

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
class Part:
    """Something a chart runs (a Deployment, a Job, an init container) that needs its own size."""

    resources: str
    """The dotted path, in the chart's values, of the part's `{requests, limits}` block."""
    enabled: str | None = None
    """The dotted path of the switch that turns the part on, when it has one."""
    on_by_default: bool = True


CHART_PARTS: dict[str, tuple[Part, ...]] = {
    # argo-cd 10.1.1 (values.yaml): one block per workload; dex, notifications, the commit server,
    # server extensions and the Redis exporter run only when switched on.
    "argo-cd": (
        Part("controller.resources"),
        Part("server.resources"),
        Part("server.extensions.resources", "server.extensions.enabled", on_by_default=False),
        Part("repoServer.resources"),
        Part("repoServer.copyutil.resources"),
        Part("applicationSet.resources"),
        Part("redis.resources", "redis.enabled"),
        Part("redis.exporter.resources", "redis.exporter.enabled", on_by_default=False),
        Part("redisSecretInit.resources", "redisSecretInit.enabled"),
        Part("dex.resources", "dex.enabled"),
        Part("dex.initImage.resources", "dex.enabled"),
        Part("notifications.resources", "notifications.enabled"),
        Part("commitServer.resources", "commitServer.enabled", on_by_default=False),
    ),
    # nginx-gateway-fabric 2.6.7: the control plane, and the NGINX pod it provisions for each
    # Gateway (one: components/gateway.py), sized by `nginx.container.resources` through its
    # NginxProxy. The cert-generator Job has no resources value: components/gateway.py makes the
    # certificates instead, so it must stay off.
    "nginx-gateway-fabric": (
        Part("nginxGateway.resources"),
        Part("nginx.container.resources"),
        Part("(the cert-generator Job, which takes no size)", "certGenerator.enable"),
    ),
    # keda 2.20.2: sizes live under `resources`, one block per workload.
    # volsync 0.16.0: the controller alone (its movers are Jobs, sized in each ReplicationSource).
    "volsync": (Part("resources"),),
    # keda-add-ons-http 0.15.0: the interceptor, the external scaler, and the operator unless its
    # `replicas` is 0 (templates/operator/*).
    "keda-add-ons-http": (
        Part("interceptor.resources"),
        Part("scaler.resources"),
        Part("operator.resources", "operator.replicas"),
    ),
    "keda": (
        Part("resources.operator"),
        Part("resources.metricServer"),
        Part("resources.webhooks", "webhooks.enabled"),
    ),
}
"""Which parts each chart runs: a part left unsized would run with no requests or limits at all."""


def _lookup(values: dict, dotted: str) -> Any:
    node: Any = values
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def running_parts(chart: str, values: dict) -> list[Part] | None:
    """The parts `chart` runs with `values`; None for a chart `CHART_PARTS` does not know."""
    if chart not in CHART_PARTS:
        return None
    running = []
    for part in CHART_PARTS[chart]:
        switch = _lookup(values, part.enabled) if part.enabled else None
        if (part.on_by_default if switch is None else bool(switch)) is True:
            running.append(part)
    return running


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
        count = value.get("replicas", value.get("replicaCount", replicas))
        # A range the chart hands an autoscaler (keda-add-ons-http: `interceptor.replicas.{min,max}`):
        # as many pods as it may ever run.
        replicas = int(count.get("max", replicas) if isinstance(count, dict) else count)
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
        values = inputs.get("values", {})
        sized = [_container(name, p, spec, n) for p, spec, n in _resource_specs(values)]
        return sized + _unsized_parts(name, chart_name(inputs), values, {c.path for c in sized})
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


def _unsized_parts(owner: str, chart: str, values: dict, sized: set[str]) -> list[Container]:
    """A container with no size for each part the chart runs whose resources the values leave out."""
    parts = running_parts(chart, values)
    if parts is None:
        return [_container(owner, f"(chart {chart!r} is not in footprint.CHART_PARTS)", {}, 1)]
    return [_container(owner, p.resources, {}, 1) for p in parts if p.resources not in sized]


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
