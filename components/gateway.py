"""The cluster's edge: Gateway API on NGINX Gateway Fabric, reached only through the tunnel.

One Gateway, `spitikos`, serves HTTPS with HTTP/2 on port 443 of the NGINX Service NGF provisions
for it; one listener per hostname the stack routes, each attaching routes from the namespace that
owns the hostname only (`allowedRoutes`). Why NGF, and at which version: docs/decisions/0006.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_tls as tls

from components import namespaces, versions
from components.kube import (
    API_SERVER_EGRESS,
    DNS_EGRESS,
    NAMESPACE_NAME,
    PLATFORM_LABELS,
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

NAMESPACE = namespaces.NGINX_GATEWAY
RELEASE = "nginx-gateway"
GATEWAY_CLASS = "nginx"  # the chart's nginxGateway.gatewayClassName
GATEWAY = "spitikos"
GATEWAY_API = "gateway.networking.k8s.io/v1"
# NGF names what it provisions for a Gateway `<gateway>-<class>` (controller.CreateNginxResourceName,
# internal/framework/controller/resource.go at v2.6.7): the NGINX Deployment, its Service, ...
DATA_PLANE = f"{GATEWAY}-{GATEWAY_CLASS}"
HTTPS_PORT = 443
METRICS_PORT = 9113  # the chart's nginxGateway.metrics.port, and NGINX's (config.DefaultNginxMetricsPort)
AGENT_PORT = 8443  # the control plane's `agent-grpc`, which each NGINX pod's agent dials
HEALTH_PORT = 8081  # both planes' readiness probes (nginxGateway.readinessProbe.port; dataplane default)
# Where the organization's kube-prometheus-stack runs (spitikos/charts charts/argocd/values.yaml).
METRICS_CLIENT_NAMESPACE = "monitoring"
CONTROL_PLANE = Size(cpu="50m", memory="64Mi", cpu_limit="500m", memory_limit="256Mi")
NGINX = Size(cpu="50m", memory="64Mi", cpu_limit="1", memory_limit="256Mi")
# The control plane's pods (the chart's selectorLabels with nginxGateway.name `nginx-gateway`) and
# the NGINX pods NGF provisions for the Gateway (objects.go buildLabelsAndAnnotations: the Gateway's
# name label; `app.kubernetes.io/name` is the provisioned name).
CONTROL_PLANE_POD = {"app.kubernetes.io/name": RELEASE, "app.kubernetes.io/instance": RELEASE}
DATA_PLANE_POD = {"gateway.networking.k8s.io/gateway-name": GATEWAY, "app.kubernetes.io/name": DATA_PLANE}
# The Gateway API's standard channel at the version NGF 2.6.7 supports (its CHANGELOG), vendored
# unchanged from kubernetes-sigs/gateway-api v1.5.1 config/crd/standard/ (safe-upgrades policy left out).
PROJECT = Path(__file__).parents[1]
CRD_FOLDER = PROJECT / "components" / "crds" / "gateway-api"
# The control plane's certificates for its agents, as the chart's cert-generator Job would make
# them (cmd/gateway/certs.go at v2.6.7: RSA 2048, 3 years, the CA signing both). Ours, so no
# unsized hook Job runs; renewed by `pulumi up` in the last 30 days.
CERT_HOURS = 3 * 365 * 24
RENEW_HOURS = 30 * 24
SERVER_TLS = "server-tls"  # certGenerator.serverTLSSecretName
AGENT_TLS = "agent-tls"  # certGenerator.agentTLSSecretName
LISTENER_TLS = "gateway-tls"


@dataclass(frozen=True)
class Listener:
    name: str
    hostname: str
    namespace: str | None
    """The one namespace whose routes attach; None: any namespace but the platform's."""


def listeners(hostnames: Sequence[str], owners: Mapping[str, str]) -> list[Listener]:
    """One HTTPS listener per hostname (those `owners` names too), named after it; a name two
    hostnames would share (`a-b.c`, `a.b-c`) gets a number, as listener names must be unique."""
    found: list[Listener] = []
    for hostname in dict.fromkeys([*hostnames, *owners]):
        base = hostname.replace("*", "wildcard").replace(".", "-")
        taken = {lst.name for lst in found}
        name = next(n for n in (base, *(f"{base}-{i}" for i in range(2, len(found) + 3))) if n not in taken)
        found.append(Listener(name, hostname, owners.get(hostname)))
    return found


def allowed_namespaces(listener: Listener, platform: Sequence[str]) -> dict[str, Any]:
    """The listener's `allowedRoutes.namespaces`: its owner by name, or every namespace but the platform's."""
    if listener.namespace is not None:
        expression = {"key": NAMESPACE_NAME, "operator": "In", "values": [listener.namespace]}
    elif platform:
        expression = {"key": NAMESPACE_NAME, "operator": "NotIn", "values": list(platform)}
    else:  # `NotIn` needs values (a label selector's rule): with no platform namespace, all
        return {"from": "All"}
    return {"from": "Selector", "selector": {"matchExpressions": [expression]}}


def gateway_spec(hostnames: Sequence[str], owners: Mapping[str, str], platform: Sequence[str]) -> dict[str, Any]:
    return {
        "gatewayClassName": GATEWAY_CLASS,
        "listeners": [
            {
                "name": listener.name,
                "hostname": listener.hostname,
                "port": HTTPS_PORT,
                "protocol": "HTTPS",
                "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": LISTENER_TLS}]},
                "allowedRoutes": {"namespaces": allowed_namespaces(listener, platform)},
            }
            for listener in listeners(hostnames, owners)
        ],
    }


@dataclass
class EdgeArgs:
    provider: k8s.Provider
    hostnames: Sequence[str]
    """Every hostname the tunnel sends here; the Gateway gets a listener for each."""
    route_namespaces: Mapping[str, str]
    """hostname -> the namespace whose routes serve it (Argo CD's included)."""
    platform_namespaces: Sequence[str] = ()
    """Namespaces no route may come from for a hostname no namespace owns (a wildcard)."""
    client_namespace: str = "cloudflared"
    """The only namespace whose pods may send NGINX traffic: the tunnel's connector."""
    unreachable_namespaces: Sequence[str] = ()
    """Namespaces NGINX never forwards to (the platform's own but Argo CD's): its egress skips them."""


class Edge(pulumi.ComponentResource):
    """The Gateway API CRDs, NGF's chart, and the Gateway the tunnel reaches."""

    service_url: str
    """`https://<the Gateway's NGINX Service>:443`, where the tunnel sends every public hostname."""
    namespace: str
    gateway: k8s.apiextensions.CustomResource
    crds: pulumi.Resource
    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: EdgeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spitikos:gateway:Edge", name, None, with_provider(opts, args.provider))
        ns = namespace(f"{name}-namespace", NAMESPACE, self, RESTRICTED)
        self.crds = self._crds(name)
        agent_certs = self._agent_certificates(name, ns)
        self.release = chart(
            f"{name}-release",
            self,
            release=RELEASE,
            chart="nginx-gateway-fabric",
            version=versions.NGINX_GATEWAY_FABRIC_CHART,
            namespace=ns.metadata.name,
            values=release_values(),
            # The controller stops at start without the Gateway API's kinds, and without its certificates.
            depends_on=[self.crds, *agent_certs],
        )
        listener_tls = self._listener_certificate(name, ns, [*args.hostnames, *args.route_namespaces])
        self.gateway = k8s.apiextensions.CustomResource(
            f"{name}-gateway",
            api_version=GATEWAY_API,
            kind="Gateway",
            metadata={"name": GATEWAY, "namespace": ns.metadata.name, "labels": PLATFORM_LABELS},
            spec=gateway_spec(args.hostnames, args.route_namespaces, args.platform_namespaces),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.crds, self.release, listener_tls]),
        )
        self._network_policies(name, ns, args)
        self._egress_policy(name, ns, args.unreachable_namespaces)
        self.namespace = NAMESPACE
        # NGF names the Service after the Gateway: the address is known before anything exists, so
        # the tunnel's configuration need not wait for the cluster.
        self.service_url = f"https://{service_host(DATA_PLANE, NAMESPACE)}:{HTTPS_PORT}"
        self.register_outputs({"service_url": self.service_url})

    def _crds(self, name: str) -> pulumi.Resource:
        """The Gateway API's CRDs, read from the vendored files by the provider at deploy time. Paths
        relative to the project: the same on every machine, so the state does not change with it."""
        files = sorted(str(p.relative_to(PROJECT)) for p in CRD_FOLDER.glob("*.yaml"))
        return k8s.yaml.v2.ConfigGroup(
            f"{name}-gateway-api-crds", files=files, opts=pulumi.ResourceOptions(parent=self)
        )

    def _agent_certificates(self, name: str, ns: k8s.core.v1.Namespace) -> list[k8s.core.v1.Secret]:
        """`server-tls` (the control plane's, for its Service) and `agent-tls` (NGINX's agents', which
        NGF copies next to each Gateway), both with the CA that signed them."""
        child = pulumi.ResourceOptions(parent=self)
        ca_key = tls.PrivateKey(f"{name}-ca-key", algorithm="RSA", rsa_bits=2048, opts=child)
        ca = tls.SelfSignedCert(
            f"{name}-ca",
            private_key_pem=ca_key.private_key_pem,
            subject=tls.SelfSignedCertSubjectArgs(common_name="nginx-gateway"),
            is_ca_certificate=True,
            validity_period_hours=CERT_HOURS,
            early_renewal_hours=RENEW_HOURS,
            allowed_uses=["cert_signing", "digital_signature", "key_encipherment"],
            opts=child,
        )
        secrets = []
        for secret, dns_name in ((SERVER_TLS, f"{RELEASE}.{NAMESPACE}.svc"), (AGENT_TLS, "*.cluster.local")):
            key = tls.PrivateKey(f"{name}-{secret}-key", algorithm="RSA", rsa_bits=2048, opts=child)
            request = tls.CertRequest(
                f"{name}-{secret}-request",
                private_key_pem=key.private_key_pem,
                subject=tls.CertRequestSubjectArgs(common_name="nginx-gateway"),
                dns_names=[dns_name],
                opts=child,
            )
            cert = tls.LocallySignedCert(
                f"{name}-{secret}-cert",
                cert_request_pem=request.cert_request_pem,
                ca_private_key_pem=ca_key.private_key_pem,
                ca_cert_pem=ca.cert_pem,
                validity_period_hours=CERT_HOURS,
                early_renewal_hours=RENEW_HOURS,
                allowed_uses=["digital_signature", "key_encipherment"],
                opts=child,
            )
            data = {"ca.crt": ca.cert_pem, "tls.crt": cert.cert_pem, "tls.key": key.private_key_pem}
            secrets.append(_tls_secret(f"{name}-{secret}", secret, ns, data, self))
        return secrets

    def _listener_certificate(
        self, name: str, ns: k8s.core.v1.Namespace, hostnames: Sequence[str]
    ) -> k8s.core.v1.Secret:
        """What NGINX serves the tunnel: self-signed for every hostname, as ingress-nginx's default
        certificate was (cloudflared keeps `noTLSVerify`: the hop never leaves the cluster)."""
        child = pulumi.ResourceOptions(parent=self)
        key = tls.PrivateKey(f"{name}-listener-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
        cert = tls.SelfSignedCert(
            f"{name}-listener-cert",
            private_key_pem=key.private_key_pem,
            subject=tls.SelfSignedCertSubjectArgs(common_name=GATEWAY),
            dns_names=list(dict.fromkeys(hostnames)),
            validity_period_hours=CERT_HOURS,
            early_renewal_hours=RENEW_HOURS,
            allowed_uses=["digital_signature", "key_encipherment", "server_auth"],
            opts=child,
        )
        return _tls_secret(
            f"{name}-listener-tls", LISTENER_TLS, ns, {"tls.crt": cert.cert_pem, "tls.key": key.private_key_pem}, self
        )

    def _network_policies(self, name: str, ns: k8s.core.v1.Namespace, args: EdgeArgs) -> None:
        """NGINX admits cloudflared on 443 and Prometheus (`monitoring`) on its metrics; the control
        plane admits NGINX's agents and Prometheus; the kubelets probe both. Nothing else, and no
        webhook: NGF has none (its validation is the CRDs' own)."""
        probes = {"from": from_nodes(), "ports": [{"protocol": "TCP", "port": HEALTH_PORT}]}
        metrics = {
            "from": [from_namespaces(METRICS_CLIENT_NAMESPACE)],
            "ports": [{"protocol": "TCP", "port": METRICS_PORT}],
        }
        network_policy(f"{name}-default-deny", self, ns.metadata.name, "default-deny-ingress", {"podSelector": {}})
        network_policy(
            f"{name}-nginx-network-policy",
            self,
            ns.metadata.name,
            "nginx-from-cloudflared",
            {
                "podSelector": {"matchLabels": DATA_PLANE_POD},
                "ingress": [
                    {
                        "from": [from_namespaces(args.client_namespace)],
                        "ports": [{"protocol": "TCP", "port": HTTPS_PORT}],
                    },
                    metrics,
                    probes,
                ],
            },
        )
        network_policy(
            f"{name}-control-plane-network-policy",
            self,
            ns.metadata.name,
            "control-plane-from-nginx",
            {
                "podSelector": {"matchLabels": CONTROL_PLANE_POD},
                "ingress": [
                    {
                        "from": [{"podSelector": {"matchLabels": DATA_PLANE_POD}}],
                        "ports": [{"protocol": "TCP", "port": AGENT_PORT}],
                    },
                    metrics,
                    probes,
                ],
            },
        )

    def _egress_policy(self, name: str, ns: k8s.core.v1.Namespace, unreachable: Sequence[str]) -> None:
        """DNS, the API server (the control plane watches routes, Services, EndpointSlices), and the
        pods NGINX forwards to: any namespace's but those it never serves, on any port (a backend's
        own); this namespace's own included, where NGINX's agent dials the control plane."""
        not_served = [{"key": NAMESPACE_NAME, "operator": "NotIn", "values": list(unreachable)}]
        backends = {"matchExpressions": not_served} if unreachable else {}
        egress_policy(
            f"{name}-egress-policy", self, ns.metadata.name, [DNS_EGRESS, *API_SERVER_EGRESS, to_pods(backends)]
        )


def _tls_secret(
    resource_name: str, secret: str, ns: k8s.core.v1.Namespace, data: dict[str, Any], parent: pulumi.Resource
) -> k8s.core.v1.Secret:
    return k8s.core.v1.Secret(
        resource_name,
        metadata={"name": secret, "namespace": ns.metadata.name, "labels": PLATFORM_LABELS},
        type="kubernetes.io/tls",
        string_data={k: pulumi.Output.secret(v) if k == "tls.key" else v for k, v in data.items()},
        opts=pulumi.ResourceOptions(parent=parent, additional_secret_outputs=["data", "stringData"]),
    )


def release_values() -> dict[str, Any]:
    """NGF 2.6.7's values (charts/vendor/nginx-gateway-fabric-2.6.7/values.yaml)."""
    return {
        "nginxGateway": {
            # Names the release's objects `nginx-gateway` (templates/_helpers.tpl).
            "name": RELEASE,
            "gatewayClassName": GATEWAY_CLASS,
            "replicas": 1,
            "resources": CONTROL_PLANE.resources(),
            # No report to F5 (and its egress would be refused anyway).
            "productTelemetry": {"enable": False},
            # Snippets would let a route in Git write raw NGINX configuration: off, whatever the
            # chart's default becomes.
            "snippets": {"enable": False},
            "snippetsFilters": {"enable": False},
            "metrics": {"enable": True, "port": METRICS_PORT},
        },
        "nginx": {
            "replicas": 1,
            # No LoadBalancer and no open port on the node: traffic arrives through cloudflared.
            "service": {"type": "ClusterIP"},
            "container": {"resources": NGINX.resources()},
        },
        # The program makes `server-tls` and `agent-tls` (Edge._agent_certificates).
        "certGenerator": {"enable": False},
    }
