"""KEDA's HTTP add-on: request-based scaling from and to zero, the first request held while the
application starts (docs/decisions/0007-request-based-scale-to-zero.md).

The edge sends an opted-in application's hostnames to the interceptor instead of the application;
the interceptor counts the requests, holds them while the application has no ready pod, and
forwards them when one is ready. The external scaler hands KEDA those counts. The add-on's
operator is not run: an application describes its routing in an `InterceptorRoute` and its
scaling in its own `ScaledObject`, which the operator would only mark Ready (0.15.0
operator/controllers/http/interceptorroute_controller.go).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components import namespaces, versions
from components.kube import (
    API_SERVER_EGRESS,
    DNS_EGRESS,
    PLATFORM_LABELS,
    RESTRICTED,
    Size,
    chart,
    egress_policy,
    from_namespaces,
    from_nodes,
    in_namespaces,
    namespace,
    network_policy,
    service_host,
    to_pods,
    with_provider,
)

NAMESPACE = namespaces.KEDA_HTTP
CHART = "keda-add-ons-http"
# The chart names every object `<chart name>-<part>` (0.15.0 templates/*): fixed, whatever the release.
PROXY_SERVICE = f"{CHART}-interceptor-proxy"
SCALER_SERVICE = f"{CHART}-external-scaler"
# keda-add-ons-http 0.15.0 values.yaml, and the code defaults they feed (pkg/observability/config.go).
PROXY_PORT = 8080  # interceptor.proxy.port: the edge's traffic, HTTP/1.1 and h2c alike
ADMIN_PORT = 9090  # interceptor.admin.port: the scaler reads the counts here; the kubelet probes it
SCALER_PORT = 9090  # scaler.grpcPort: KEDA calls the external scaler here; the kubelet probes it (gRPC)
METRICS_PORT = 2223  # OTEL_PROM_EXPORTER_PORT: both the interceptor's and the scaler's /metrics
GATEWAY_API_GROUP = "gateway.networking.k8s.io"

# What a visitor waits, at most, for an application scaled to zero to get a ready pod: the
# interceptor's KEDA_HTTP_READINESS_TIMEOUT (0.15.0 interceptor/config/timeouts.go; its default, 0,
# waits for ever), after which it answers 504. Under Cloudflare's 100 s for an origin's response
# headers, with room for the response itself; an application's InterceptorRoute may ask for less
# (`spec.timeouts.readiness`).
READINESS_TIMEOUT_SECONDS = 60
# No total deadline (KEDA_HTTP_REQUEST_TIMEOUT, 0 = none): the api's gRPC streams and any WebSocket
# stay open as long as the client keeps them. Response headers keep the code default (300 s,
# KEDA_HTTP_RESPONSE_HEADER_TIMEOUT), beyond Cloudflare's own 100 s.

# Sized from the chart's defaults (20Mi requests), one replica each: a lab run of 0.15.0 measured
# 10.6 MiB (interceptor) and 16.9 MiB (scaler) resident. The interceptor's limit is raised above the
# chart's 64Mi: it holds every waiting request's body and connection during a cold start.
INTERCEPTOR = Size(cpu="20m", memory="20Mi", cpu_limit="500m", memory_limit="128Mi")
SCALER = Size(cpu="20m", memory="20Mi", cpu_limit="500m", memory_limit="64Mi")
RUN_AS = 1000  # the chart's own suggestion (values.yaml podSecurityContext), its fsGroup's id


@dataclass
class KedaHttpArgs:
    provider: k8s.Provider
    edge_namespace: str
    """Where the edge's NGINX runs: the only pods that send the interceptor traffic."""
    app_namespaces: Sequence[str] = field(default_factory=tuple)
    """The applications that scale from zero through the interceptor: the only pods it forwards to."""
    keda_namespace: str = namespaces.KEDA
    """Where KEDA's operator runs: the only pods that call the external scaler."""
    prometheus_namespace: str = "monitoring"
    """Where Prometheus runs (kube-prometheus-stack in spitikos/charts): it may scrape the metrics."""
    keda_release: pulumi.Resource | None = None
    """KEDA's release: the add-on's chart renders a ScaledObject for its interceptor (0.15.0
    templates/interceptor/scaledobject.yaml, not switchable), which Helm cannot install before
    KEDA's CRDs exist."""
    gateway_api: pulumi.Resource | None = None
    """The Gateway API's CRDs, once the edge is a Gateway (docs/decisions/0006): with them, a
    ReferenceGrant per application namespace lets its HTTPRoutes and GRPCRoutes name the
    interceptor's Service. None on a stack without the Gateway (an Ingress cannot name a
    Service in another namespace at all)."""


class KedaHttp(pulumi.ComponentResource):
    """The upstream chart, its interceptor and external scaler sized for a Pi, no operator."""

    release: k8s.helm.v3.Release
    proxy_url: str
    """`http://<interceptor proxy service>:8080`, where an opted-in application's route points."""
    scaler_address: str
    """`<external scaler service>.<namespace>:9090`, an application's ScaledObject's `scalerAddress`."""

    def __init__(self, name: str, args: KedaHttpArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spitikos:autoscaling:KedaHttp", name, None, with_provider(opts, args.provider))
        ns = namespace(f"{name}-namespace", NAMESPACE, self, RESTRICTED)
        self.release = chart(
            f"{name}-release",
            self,
            release="keda-add-ons-http",
            chart=CHART,
            version=versions.KEDA_ADD_ONS_HTTP_CHART,
            namespace=ns.metadata.name,
            values=chart_values(),
            depends_on=[args.keda_release] if args.keda_release is not None else None,
        )
        self._network_policy(name, ns, args)
        self._egress_policy(name, ns, args)
        if args.gateway_api is not None:
            for app in args.app_namespaces:
                self._reference_grant(name, ns, app, args.gateway_api)
        self.proxy_url = f"http://{service_host(PROXY_SERVICE, NAMESPACE)}:{PROXY_PORT}"
        self.scaler_address = f"{SCALER_SERVICE}.{NAMESPACE}:{SCALER_PORT}"
        self.register_outputs({"proxy_url": self.proxy_url, "scaler_address": self.scaler_address})

    def _network_policy(self, name: str, ns: k8s.core.v1.Namespace, args: KedaHttpArgs) -> None:
        """The edge reaches the proxy port alone; KEDA the scaler; the scaler reads the interceptor's
        counts (both here); the kubelets probe both (admin and gRPC ports: k3s's kube-router admits
        a pod's own node only when a rule says so); Prometheus scrapes. Nothing else reaches them:
        no application calls the interceptor's admin port, which answers anyone's queue counts."""
        network_policy(
            f"{name}-network-policy",
            self,
            ns.metadata.name,
            "keda-http",
            {
                "podSelector": {},
                "ingress": [
                    {
                        "from": [from_namespaces(args.edge_namespace)],
                        "ports": [{"protocol": "TCP", "port": PROXY_PORT}],
                    },
                    {
                        "from": [from_namespaces(args.keda_namespace)],
                        "ports": [{"protocol": "TCP", "port": SCALER_PORT}],
                    },
                    {"from": [{"podSelector": {}}], "ports": [{"protocol": "TCP", "port": ADMIN_PORT}]},
                    {
                        "from": from_nodes(),
                        "ports": [{"protocol": "TCP", "port": p} for p in (ADMIN_PORT, SCALER_PORT)],
                    },
                    {
                        "from": [from_namespaces(args.prometheus_namespace)],
                        "ports": [{"protocol": "TCP", "port": METRICS_PORT}],
                    },
                ],
            },
        )

    def _egress_policy(self, name: str, ns: k8s.core.v1.Namespace, args: KedaHttpArgs) -> None:
        """DNS; the API server (routes, Services, EndpointSlices); its own pods (the scaler to the
        interceptor's admin port); and the opted-in applications' pods, on their own ports. No
        other namespace: a route that names another application's Service gets nothing back."""
        apps = [to_pods(in_namespaces(*args.app_namespaces))] if args.app_namespaces else []
        egress_policy(
            f"{name}-egress-policy",
            self,
            ns.metadata.name,
            [
                DNS_EGRESS,
                *API_SERVER_EGRESS,
                {"to": [{"podSelector": {}}], "ports": [{"protocol": "TCP", "port": ADMIN_PORT}]},
                *apps,
            ],
        )

    def _reference_grant(self, name: str, ns: k8s.core.v1.Namespace, app: str, crds: pulumi.Resource) -> None:
        """Lets `app`'s routes send to the interceptor's proxy Service, and to nothing else here. The
        platform's, in its namespace: an application writes in no platform namespace, and so can
        grant itself nothing more (Gateway API v1.5.1 ReferenceGrant, `to.name` narrowing it to
        one Service)."""
        route_kinds = ("HTTPRoute", "GRPCRoute")
        k8s.apiextensions.CustomResource(
            f"{name}-grant-{app}",
            api_version="gateway.networking.k8s.io/v1",
            kind="ReferenceGrant",
            metadata={"name": f"routes-from-{app}", "namespace": ns.metadata.name, "labels": PLATFORM_LABELS},
            spec={
                "from": [{"group": GATEWAY_API_GROUP, "kind": k, "namespace": app} for k in route_kinds],
                "to": [{"group": "", "kind": "Service", "name": PROXY_SERVICE}],
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[crds]),
        )


def chart_values() -> dict:
    """keda-add-ons-http 0.15.0's values (values.yaml): one interceptor and one scaler, no operator,
    Pod Security `restricted`, the wait bounded."""
    restricted_pod = {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "fsGroup": RUN_AS,
        "supplementalGroups": [RUN_AS],
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    return {
        # `operator.replicas: 0` leaves out its Deployment, Service, ServiceAccount and RBAC
        # (templates/operator/*: `if gt (int .Values.operator.replicas) 0`), and with them its
        # right to write every namespace's ScaledObjects. HTTPScaledObjects, which it alone turns
        # into ScaledObjects, therefore do nothing here: the applications use InterceptorRoutes.
        "operator": {"replicas": 0},
        "scaler": {"replicas": 1, "pullPolicy": "IfNotPresent", "resources": SCALER.resources()},
        "interceptor": {
            "pullPolicy": "IfNotPresent",
            # The chart's own ScaledObject for the interceptor (templates/interceptor/scaledobject.yaml):
            # one pod on a Pi, never the default's 3 to 50.
            "replicas": {"min": 1, "max": 1},
            "readinessTimeout": f"{READINESS_TIMEOUT_SECONDS}s",
            "resources": INTERCEPTOR.resources(),
            # With one interceptor, a PodDisruptionBudget only stops a node drain.
            "pdb": {"enabled": False},
        },
        "podSecurityContext": restricted_pod,
        # The chart's default container context (no privilege escalation, every capability
        # dropped, read-only root) plus the seccomp profile `restricted` asks of each pod or container.
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
