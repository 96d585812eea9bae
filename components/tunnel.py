"""Public ingress with no open port: a Cloudflare Tunnel, its routes and DNS, and cloudflared.

Every public hostname routes to NGINX over HTTPS with HTTP/2 (`http2Origin`, which gRPC
needs; `noTLSVerify` because NGINX serves its default certificate inside the cluster).
The optional SSH and Kubernetes API hostnames exist only behind Cloudflare Access: their
routes and DNS records are created after, and depend on, their Access application.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_cloudflare as cloudflare
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import versions
from components.kube import PLATFORM_LABELS, Size, namespace, with_provider

NAMESPACE = "cloudflared"
# The image's user is the named `nonroot` (65532); runAsNonRoot needs the number to verify it.
NONROOT_UID = 65532
METRICS_PORT = 2000
CLOUDFLARED = Size(cpu="20m", memory="32Mi", cpu_limit="200m", memory_limit="128Mi")
CATCH_ALL = "http_status:404"


@dataclass(frozen=True)
class Route:
    hostname: str
    service: str
    """Where cloudflared sends the hostname's traffic."""
    protected: bool = False
    """Behind Cloudflare Access."""


@dataclass
class TunnelArgs:
    cloudflare: cloudflare.Provider
    kubernetes: k8s.Provider
    account_id: str
    zone_id: str
    ingress_url: str
    """The NGINX controller's in-cluster HTTPS address."""
    hostnames: Sequence[str]
    node_address: str
    ssh_hostname: str | None = None
    kube_api_hostname: str | None = None
    access_emails: Sequence[str] = field(default_factory=list)
    replicas: int = 2


def routes(args: TunnelArgs) -> list[Route]:
    """One route per hostname, in the order the tunnel matches them; the catch-all comes after."""
    public = [Route(h, args.ingress_url) for h in args.hostnames]
    private = []
    if args.ssh_hostname:
        private.append(Route(args.ssh_hostname, f"ssh://{args.node_address}:22", protected=True))
    if args.kube_api_hostname:
        private.append(Route(args.kube_api_hostname, "tcp://kubernetes.default.svc:443", protected=True))
    return public + private


class Tunnel(pulumi.ComponentResource):
    tunnel_id: pulumi.Output[str]
    cname_target: pulumi.Output[str]
    """`<tunnel-id>.cfargotunnel.com`."""
    routes: list[Route]
    token: pulumi.Output[str]
    """The tunnel's connector token. Secret."""

    def __init__(self, name: str, args: TunnelArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(
            "spitikos:tunnel:Tunnel",
            name,
            None,
            pulumi.ResourceOptions.merge(
                with_provider(opts, args.kubernetes), pulumi.ResourceOptions(providers=[args.cloudflare])
            ),
        )
        child = pulumi.ResourceOptions(parent=self)
        self.routes = routes(args)

        secret = random.RandomBytes(f"{name}-secret", length=32, opts=child)
        tunnel = cloudflare.ZeroTrustTunnelCloudflared(
            f"{name}-tunnel",
            account_id=args.account_id,
            name="spitikos",
            config_src="cloudflare",
            tunnel_secret=pulumi.Output.secret(secret.base64),
            opts=child,
        )
        self.tunnel_id = tunnel.id
        self.cname_target = tunnel.id.apply(lambda i: f"{i}.cfargotunnel.com")

        access = self._access(name, args) if any(r.protected for r in self.routes) else {}

        cloudflare.ZeroTrustTunnelCloudflaredConfig(
            f"{name}-config",
            account_id=args.account_id,
            tunnel_id=tunnel.id,
            config=cloudflare.ZeroTrustTunnelCloudflaredConfigConfigArgs(
                ingresses=[
                    *(
                        cloudflare.ZeroTrustTunnelCloudflaredConfigConfigIngressArgs(
                            hostname=r.hostname,
                            service=r.service,
                            origin_request=None
                            if r.protected
                            else cloudflare.ZeroTrustTunnelCloudflaredConfigConfigIngressOriginRequestArgs(
                                no_tls_verify=True, http2_origin=True
                            ),
                        )
                        for r in self.routes
                    ),
                    cloudflare.ZeroTrustTunnelCloudflaredConfigConfigIngressArgs(service=CATCH_ALL),
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(access.values())),
        )

        for route in self.routes:
            label = route.hostname.replace(".", "-")
            cloudflare.DnsRecord(
                f"{name}-dns-{label}",
                zone_id=args.zone_id,
                name=route.hostname,
                type="CNAME",
                content=self.cname_target,
                proxied=True,
                ttl=1,
                comment="spitikos tunnel (managed by Pulumi)",
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[access[route.hostname]] if route.protected else None
                ),
            )

        token = cloudflare.get_zero_trust_tunnel_cloudflared_token_output(
            account_id=args.account_id,
            tunnel_id=tunnel.id,
            opts=pulumi.InvokeOutputOptions(parent=self, provider=args.cloudflare),
        )
        self.token = pulumi.Output.secret(token.token)
        self._connector(name, args.replicas)
        self.register_outputs({"tunnel_id": self.tunnel_id, "cname_target": self.cname_target})

    def _access(self, name: str, args: TunnelArgs) -> dict[str, cloudflare.ZeroTrustAccessApplication]:
        """An Access application per protected hostname, letting in only the listed emails."""
        policy = cloudflare.ZeroTrustAccessPolicy(
            f"{name}-access-policy",
            account_id=args.account_id,
            name="spitikos operators",
            decision="allow",
            includes=[
                cloudflare.ZeroTrustAccessPolicyIncludeArgs(
                    email=cloudflare.ZeroTrustAccessPolicyIncludeEmailArgs(email=email)
                )
                for email in args.access_emails
            ],
            session_duration="12h",
            opts=pulumi.ResourceOptions(parent=self),
        )
        return {
            r.hostname: cloudflare.ZeroTrustAccessApplication(
                f"{name}-access-{r.hostname.replace('.', '-')}",
                account_id=args.account_id,
                name=f"spitikos {r.hostname}",
                domain=r.hostname,
                type="self_hosted",
                session_duration="12h",
                app_launcher_visible=False,
                policies=[cloudflare.ZeroTrustAccessApplicationPolicyArgs(id=policy.id, precedence=1)],
                opts=pulumi.ResourceOptions(parent=self),
            )
            for r in self.routes
            if r.protected
        }

    def _connector(self, name: str, replicas: int) -> None:
        """cloudflared in the cluster: the token from a Secret, HTTP/2 to the edge, ready on /ready."""
        child = pulumi.ResourceOptions(parent=self)
        ns = namespace(f"{name}-namespace", NAMESPACE, self)
        labels = {"app.kubernetes.io/name": "cloudflared", **PLATFORM_LABELS}
        selector = {"app.kubernetes.io/name": "cloudflared"}
        meta = lambda n: {"name": n, "namespace": ns.metadata.name, "labels": labels}  # noqa: E731
        secret = k8s.core.v1.Secret(
            f"{name}-token",
            metadata=meta("cloudflared-token"),
            type="Opaque",
            string_data={"token": self.token},
            opts=child,
        )
        probe = {"httpGet": {"path": "/ready", "port": "metrics"}}
        k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=meta("cloudflared"),
            spec={
                "replicas": replicas,
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "automountServiceAccountToken": False,
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": NONROOT_UID,
                            "runAsGroup": NONROOT_UID,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        # Spread over nodes when there are several.
                        "topologySpreadConstraints": [
                            {
                                "maxSkew": 1,
                                "topologyKey": "kubernetes.io/hostname",
                                "whenUnsatisfiable": "ScheduleAnyway",
                                "labelSelector": {"matchLabels": selector},
                            }
                        ],
                        "containers": [
                            {
                                "name": "cloudflared",
                                "image": versions.CLOUDFLARED_IMAGE,
                                "args": [
                                    "tunnel",
                                    "--no-autoupdate",
                                    "--protocol",
                                    "http2",
                                    "--metrics",
                                    f"0.0.0.0:{METRICS_PORT}",
                                    "run",
                                ],
                                "env": [
                                    {
                                        "name": "TUNNEL_TOKEN",
                                        "valueFrom": {"secretKeyRef": {"name": "cloudflared-token", "key": "token"}},
                                    }
                                ],
                                "ports": [{"name": "metrics", "containerPort": METRICS_PORT}],
                                "readinessProbe": {**probe, "periodSeconds": 10},
                                "livenessProbe": {**probe, "initialDelaySeconds": 10, "failureThreshold": 3},
                                "resources": CLOUDFLARED.resources(),
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                            }
                        ],
                    },
                },
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[secret]),
        )
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata=meta("cloudflared"),
            spec={"minAvailable": 1, "selector": {"matchLabels": selector}},
            opts=child,
        )
