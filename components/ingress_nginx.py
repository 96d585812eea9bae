"""ingress-nginx: the cluster's internal ingress, reached only through the tunnel."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import namespaces, versions
from components.kube import (
    API_SERVER_EGRESS,
    DNS_EGRESS,
    NAMESPACE_NAME,
    RESTRICTED,
    Size,
    chart,
    egress_policy,
    from_namespaces,
    from_nodes,
    namespace,
    network_policy,
    service_host,
    to_pods,
    with_provider,
)

NAMESPACE = namespaces.INGRESS_NGINX
INGRESS_CLASS = "nginx"
METRICS_PORT = 10254  # the chart's controller.metrics.port, also where the kubelet probes /healthz
WEBHOOK_PORT = 8443  # the chart's controller.admissionWebhooks.port
# Where the organization's kube-prometheus-stack runs (spitikos/charts, charts/argocd/values.yaml);
# its ServiceMonitor for NGINX ships in the charts patch (docs/migration/charts-7b7f06e.patch).
METRICS_CLIENT_NAMESPACE = "monitoring"
CONTROLLER = Size(cpu="100m", memory="128Mi", cpu_limit="1", memory_limit="256Mi")
ADMISSION_JOB = Size(cpu="10m", memory="16Mi", cpu_limit="100m", memory_limit="64Mi")


@dataclass
class IngressNginxArgs:
    provider: k8s.Provider
    client_namespace: str = "cloudflared"
    """The only namespace whose pods may send NGINX traffic: the tunnel's connector."""
    unreachable_namespaces: Sequence[str] = ()
    """Namespaces NGINX never forwards to (the platform's own but Argo CD's): its egress skips them."""


class IngressNginx(pulumi.ComponentResource):
    """The upstream chart; HTTPS on its default certificate so the tunnel can speak HTTP/2 (gRPC)."""

    service_url: str
    """`https://<controller service>:443`, where the tunnel sends every public hostname."""
    ingress_class: str
    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: IngressNginxArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spitikos:ingress:IngressNginx", name, None, with_provider(opts, args.provider))
        ns = namespace(f"{name}-namespace", NAMESPACE, self, RESTRICTED)
        self.release = chart(
            f"{name}-release",
            self,
            release="ingress-nginx",
            chart="ingress-nginx",
            version=versions.INGRESS_NGINX_CHART,
            namespace=ns.metadata.name,
            values=controller_values(),
        )
        self._network_policy(name, ns, args.client_namespace)
        self._egress_policy(name, ns, args.unreachable_namespaces)
        self.ingress_class = INGRESS_CLASS
        # fullnameOverride fixes the service name, so the address is known without waiting
        # for the release: the tunnel's configuration need not wait for the cluster.
        self.service_url = f"https://{service_host('ingress-nginx-controller', NAMESPACE)}:443"
        self.register_outputs({"service_url": self.service_url})

    def _network_policy(self, name: str, ns: k8s.core.v1.Namespace, client_namespace: str) -> None:
        """Only cloudflared reaches NGINX; the organization's Prometheus (`monitoring`) its metrics,
        which KEDA's ScaledObjects query. No pod reaches the admission webhook: only the nodes, for
        the API server on the server node calls it, on any node the controller runs (k3s's
        kube-router admits a pod's own node and nothing else from other nodes), and the kubelet
        probes the controller."""
        network_policy(
            f"{name}-network-policy",
            self,
            ns.metadata.name,
            "ingress-from-cloudflared",
            {
                "podSelector": {},
                "ingress": [
                    {
                        "from": [from_namespaces(client_namespace)],
                        "ports": [{"protocol": "TCP", "port": "http"}, {"protocol": "TCP", "port": "https"}],
                    },
                    {
                        "from": [from_namespaces(METRICS_CLIENT_NAMESPACE)],
                        "ports": [{"protocol": "TCP", "port": METRICS_PORT}],
                    },
                    {
                        "from": from_nodes(),
                        "ports": [{"protocol": "TCP", "port": WEBHOOK_PORT}, {"protocol": "TCP", "port": METRICS_PORT}],
                    },
                ],
            },
        )

    def _egress_policy(self, name: str, ns: k8s.core.v1.Namespace, unreachable: Sequence[str]) -> None:
        """DNS, the API server (Ingresses, Services, Endpoints), and the pods it forwards to: any
        namespace's but those it never serves (Redis, KEDA, ...), on any port (a backend's own)."""
        not_served = [{"key": NAMESPACE_NAME, "operator": "NotIn", "values": list(unreachable)}]
        backends = {"matchExpressions": not_served} if unreachable else {}
        egress_policy(
            f"{name}-egress-policy", self, ns.metadata.name, [DNS_EGRESS, *API_SERVER_EGRESS, to_pods(backends)]
        )


def controller_values() -> dict:
    return {
        "fullnameOverride": "ingress-nginx",
        "controller": {
            "replicaCount": 1,
            "ingressClassResource": {"name": INGRESS_CLASS, "default": True},
            # Snippets would let any Ingress in Git write raw NGINX configuration (CVE-2025-1974 and
            # kin). Off, and said so, whatever the chart's default becomes.
            "allowSnippetAnnotations": False,
            # An Ingress may not point at an ExternalName Service: otherwise a commit to an app's chart
            # could publish any in-cluster or outside address (argocd-server, Vault) under a new
            # hostname. A flag of the controller (v1.15.1 cmd/nginx/flags.go), not a ConfigMap key.
            "extraArgs": {"disable-svc-external-name": "true"},
            "config": {
                # cloudflared is the only client; trust what it forwards, and take the
                # visitor's address from the header Cloudflare sets.
                "use-forwarded-headers": "true",
                "forwarded-for-header": "CF-Connecting-IP",
                "use-http2": "true",
                # Refuse annotations rated High or Critical (controller v1.15.1 rates
                # backend-protocol and enable-cors Low, the cors-allow-* ones Medium: what the
                # real apps use stays allowed). The chart copies `config` into its ConfigMap.
                "annotations-risk-level": "Medium",
                "strict-validate-path-type": "true",
            },
            # No LoadBalancer and no open port on the node: traffic arrives through cloudflared.
            "service": {"type": "ClusterIP", "enableHttp": True, "enableHttps": True},
            "metrics": {"enabled": True},
            "resources": CONTROLLER.resources(),
            # The image is the chart's default, which runs by digest (values.yaml at 4.15.1:
            # controller.image.digest, and admissionWebhooks.patch.image.digest for certgen): not
            # overridden here, so a chart upgrade brings its own tag and digest together.
            "admissionWebhooks": {
                # Rejects a bad Ingress before NGINX loads it; only the API server calls it (see
                # the namespace's NetworkPolicy).
                "failurePolicy": "Fail",
                "createSecretJob": {"resources": ADMISSION_JOB.resources()},
                "patchWebhookJob": {"resources": ADMISSION_JOB.resources()},
            },
        },
        "defaultBackend": {"enabled": False},
    }
