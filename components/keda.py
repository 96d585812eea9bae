"""KEDA: event-driven autoscaling, scale to zero included."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import versions
from components.kube import (
    RESTRICTED,
    Size,
    chart,
    from_namespaces,
    from_nodes,
    namespace,
    network_policy,
    with_provider,
)

NAMESPACE = "keda"
OPERATOR = Size(cpu="50m", memory="96Mi", cpu_limit="500m", memory_limit="256Mi")
METRICS_SERVER = Size(cpu="50m", memory="64Mi", cpu_limit="500m", memory_limit="192Mi")
WEBHOOKS = Size(cpu="20m", memory="32Mi", cpu_limit="200m", memory_limit="128Mi")
# keda chart 2.20.2 (values.yaml, templates/*/deployment.yaml): what the nodes call.
WEBHOOKS_PORT = 9443  # the admission webhooks (`webhooks.port` unset: 9443)
METRICS_API_PORT = 6443  # the external metrics API server (`service.portHttpsTarget`); also probed there
HEALTH_PORT = 8081  # the operator's and the webhooks' liveness and readiness probes
PROMETHEUS_PORT = 8080  # every component's Prometheus metrics (`prometheus.*.port`)


@dataclass
class KedaArgs:
    provider: k8s.Provider
    node_count: int = 1
    """The cluster's nodes: the API server and kubelets reach KEDA from their addresses."""
    prometheus_namespace: str = "monitoring"
    """Where Prometheus runs (kube-prometheus-stack in spitikos/charts): it may scrape KEDA's metrics."""


class Keda(pulumi.ComponentResource):
    """The upstream chart, sized for a Pi."""

    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: KedaArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spitikos:autoscaling:Keda", name, None, with_provider(opts, args.provider))
        ns = namespace(f"{name}-namespace", NAMESPACE, self, RESTRICTED)
        self.release = chart(
            f"{name}-release",
            self,
            release="keda",
            chart="keda",
            version=versions.KEDA_CHART,
            repo=versions.KEDA_REPO,
            namespace=ns.metadata.name,
            values={
                "operator": {"replicaCount": 1},
                "metricsServer": {"replicaCount": 1},
                "webhooks": {"replicaCount": 1},
                "resources": {
                    "operator": OPERATOR.resources(),
                    "metricServer": METRICS_SERVER.resources(),
                    "webhooks": WEBHOOKS.resources(),
                },
            },
        )
        self._network_policy(name, ns, args)
        self.register_outputs({})

    def _network_policy(self, name: str, ns: k8s.core.v1.Namespace, args: KedaArgs) -> None:
        """The operator, metrics server and webhooks talk among themselves; the API server, on the
        server node, calls the webhooks and the metrics API wherever they run (k3s's kube-router
        admits only a pod's own node unless a rule says otherwise); kubelets probe; Prometheus
        scrapes. No other pod has reason to."""
        tcp = [{"protocol": "TCP", "port": p} for p in (WEBHOOKS_PORT, METRICS_API_PORT, HEALTH_PORT)]
        network_policy(
            f"{name}-network-policy",
            self,
            ns.metadata.name,
            "keda-internal",
            {
                "podSelector": {},
                "ingress": [
                    {"from": [{"podSelector": {}}]},
                    {"from": from_nodes(args.node_count), "ports": tcp},
                    {
                        "from": [from_namespaces(args.prometheus_namespace)],
                        "ports": [{"protocol": "TCP", "port": PROMETHEUS_PORT}],
                    },
                ],
            },
        )
