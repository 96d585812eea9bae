"""KEDA: event-driven autoscaling, scale to zero included."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import namespaces, versions
from components.kube import (
    API_SERVER_EGRESS,
    DNS_EGRESS,
    RESTRICTED,
    Size,
    chart,
    egress_policy,
    from_namespaces,
    from_nodes,
    in_namespaces,
    namespace,
    network_policy,
    to_pods,
    with_provider,
)

NAMESPACE = namespaces.KEDA
OPERATOR = Size(cpu="50m", memory="96Mi", cpu_limit="500m", memory_limit="256Mi")
METRICS_SERVER = Size(cpu="50m", memory="64Mi", cpu_limit="500m", memory_limit="192Mi")
# What the scalers read: the real applications' ScaledObjects (charts/_common's template) query
# kube-prometheus-stack's Prometheus (`prometheus_namespace`) on 9090. A scaler that reads anything
# else (a Redis list, an outside queue, an HTTP endpoint) needs a rule in `_egress_policy`.
PROMETHEUS_API_PORT = 9090
# keda chart 2.20.2 (values.yaml, templates/*/deployment.yaml): what the nodes call.
METRICS_API_PORT = 6443  # the external metrics API server (`service.portHttpsTarget`); also probed there
HEALTH_PORT = 8081  # the operator's liveness and readiness probes
# The HTTP add-on's external scaler (components/keda_http.py), which the operator asks for the
# request counts of the applications that scale from zero.
HTTP_SCALER_PORT = 9090
PROMETHEUS_PORT = 8080  # every component's Prometheus metrics (`prometheus.*.port`)


@dataclass
class KedaArgs:
    provider: k8s.Provider
    prometheus_namespace: str = "monitoring"
    """Where Prometheus runs (kube-prometheus-stack in spitikos/charts): it may scrape KEDA's metrics."""
    http_scaler_namespace: str | None = None
    """Where the HTTP add-on's external scaler runs, when the platform runs it."""


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
            namespace=ns.metadata.name,
            values={
                # The chart's default is `Always`: a restart without internet would then fail.
                "image": {"pullPolicy": "IfNotPresent", **pinned_images()},
                # Kept when the release is deleted or replaced, as Argo CD's are: deleting a CRD
                # deletes every ScaledObject with it. The chart (templates/crds/*.yaml at 2.20.2)
                # copies crds.additionalAnnotations onto each CRD.
                "crds": {"install": True, "additionalAnnotations": {"helm.sh/resource-policy": "keep"}},
                "operator": {"replicaCount": 1},
                "metricsServer": {"replicaCount": 1},
                # Off: 32Mi the Pi keeps for the HTTP add-on (docs/decisions/0007). The chart's
                # webhooks fail open (`webhooks.failurePolicy: Ignore`, values.yaml at 2.20.2), so
                # they never stopped a bad ScaledObject that arrived while they were down; the
                # operator still refuses one, on the object's `Ready` condition, which Argo CD's
                # health check for ScaledObjects shows. `enabled: false` also stops the operator
                # patching a webhook configuration (values.yaml).
                "webhooks": {"enabled": False},
                "resources": {
                    "operator": OPERATOR.resources(),
                    "metricServer": METRICS_SERVER.resources(),
                },
            },
        )
        self._network_policy(name, ns, args)
        self._egress_policy(name, ns, args)
        self.register_outputs({})

    def _network_policy(self, name: str, ns: k8s.core.v1.Namespace, args: KedaArgs) -> None:
        """The operator and the metrics server talk between themselves; the API server, on the
        server node, calls the metrics API wherever it runs (k3s's kube-router admits only a pod's
        own node unless a rule says otherwise); kubelets probe; Prometheus scrapes. No other pod
        has reason to."""
        tcp = [{"protocol": "TCP", "port": p} for p in (METRICS_API_PORT, HEALTH_PORT)]
        network_policy(
            f"{name}-network-policy",
            self,
            ns.metadata.name,
            "keda-internal",
            {
                "podSelector": {},
                "ingress": [
                    {"from": [{"podSelector": {}}]},
                    {"from": from_nodes(), "ports": tcp},
                    {
                        "from": [from_namespaces(args.prometheus_namespace)],
                        "ports": [{"protocol": "TCP", "port": PROMETHEUS_PORT}],
                    },
                ],
            },
        )

    def _egress_policy(self, name: str, ns: k8s.core.v1.Namespace, args: KedaArgs) -> None:
        """The API server (it watches and scales workloads), DNS, its own pods, and the scalers' sources."""
        scalers = [to_pods(in_namespaces(args.prometheus_namespace), [PROMETHEUS_API_PORT])]
        if args.http_scaler_namespace:
            scalers.append(to_pods(in_namespaces(args.http_scaler_namespace), [HTTP_SCALER_PORT]))
        egress_policy(
            f"{name}-egress-policy",
            self,
            ns.metadata.name,
            [DNS_EGRESS, *API_SERVER_EGRESS, {"to": [{"podSelector": {}}]}, *scalers],
        )


def pinned_images() -> dict:
    """The chart's three images by digest (components/versions.py), as `image.<component>` values:
    `registry`, `repository` and a `tag@digest` tag (keda 2.20.2 values.yaml). The webhooks' stays
    pinned while they are off, so switching them back on runs it by digest too."""

    def image(pinned: str) -> dict:
        repository, tag = versions.repository_and_tag(pinned)
        registry, path = repository.split("/", 1)
        return {"registry": registry, "repository": path, "tag": tag}

    return {
        "keda": image(versions.KEDA_IMAGE),
        "metricsApiServer": image(versions.KEDA_METRICS_API_SERVER_IMAGE),
        "webhooks": image(versions.KEDA_WEBHOOKS_IMAGE),
    }
