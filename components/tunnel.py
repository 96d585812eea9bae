"""Public ingress with no open port: a Cloudflare Tunnel, its routes and DNS, and cloudflared.

Every public hostname routes to the Gateway's NGINX over HTTPS with HTTP/2 (`http2Origin`, which
gRPC needs; `noTLSVerify` because NGINX serves the program's self-signed certificate inside the
cluster; `matchSNItoHost`, because NGINX picks the listener by SNI and refuses a request whose Host
differs from it).
Hostnames live in several zones of one account; each zone is looked up by name, and each
hostname's record goes to its own zone. A wildcard (`*.example.com`) is one route and one
record, matched after every explicit hostname.

Protected hostnames (admin UIs, and the optional SSH and Kubernetes API hostnames) sit
behind Cloudflare Access: their routes and records are created after their Access
application, and cloudflared itself refuses a request without that application's token
(`originRequest.access`). A path that must stay reachable (GitHub's webhook to Argo CD)
gets an Access bypass and its own route ahead of the hostname's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_cloudflare as cloudflare
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import versions
from components.kube import (
    API_SERVER_EGRESS,
    DNS_EGRESS,
    PLATFORM_LABELS,
    RESTRICTED,
    Size,
    egress_policy,
    in_namespaces,
    namespace,
    network_policy,
    public_internet,
    to_host,
    to_pods,
)
from components.settings import url_host, zone_of

NAMESPACE = "cloudflared"
# The image's user is the named `nonroot` (65532); runAsNonRoot needs the number to verify it.
NONROOT_UID = 65532
METRICS_PORT = 2000
CLOUDFLARED = Size(cpu="20m", memory="32Mi", cpu_limit="200m", memory_limit="128Mi")
CATCH_ALL = "http_status:404"
KUBE_API_SERVICE = "tcp://kubernetes.default.svc:443"
CONNECTOR_LABELS = {"app.kubernetes.io/name": "cloudflared", **PLATFORM_LABELS}
CONNECTOR_SELECTOR = {"app.kubernetes.io/name": "cloudflared"}


@dataclass(frozen=True)
class Route:
    hostname: str
    service: str
    """Where cloudflared sends the hostname's traffic."""
    protected: bool = False
    """Behind Cloudflare Access, and refused by cloudflared without an Access token."""
    path: str | None = None
    """A regular expression on the URL path; the route then matches only those requests."""

    @property
    def label(self) -> str:
        """The hostname as a resource-name part: `*.a.b` -> `wildcard-a-b`."""
        return self.hostname.replace("*", "wildcard").replace(".", "-")


@dataclass
class TunnelArgs:
    cloudflare: cloudflare.Provider
    kubernetes: k8s.Provider
    account_id: str
    zones: Sequence[str]
    """The account's zones (domain names) the hostnames belong to; each is looked up by name."""
    ingress_url: str
    """The Gateway's in-cluster HTTPS address (its NGINX Service)."""
    hostnames: Sequence[str]
    node_address: str
    node_ssh_port: int = 22
    protected_hostnames: Sequence[str] = field(default_factory=list)
    public_paths: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Per protected hostname, the exact paths that bypass Access (e.g. a webhook receiver)."""
    ssh_hostname: str | None = None
    kube_api_hostname: str | None = None
    access_emails: Sequence[str] = field(default_factory=list)
    replicas: int = 2
    ingress_namespace: str = "nginx-gateway"
    """Where the Gateway's NGINX pods run (the namespace of `ingress_url`'s Service)."""


def routes(args: TunnelArgs) -> list[Route]:
    """The routes in the order the tunnel matches them: explicit hostnames (a bypassed path ahead
    of its hostname), then the private ones, then wildcards. The catch-all comes after."""
    # DNS names compare without case: `API.example.com` is `api.example.com`.
    hostnames = [h.lower() for h in args.hostnames]
    protected = {h.lower() for h in args.protected_hostnames}
    public_paths = {h.lower(): paths for h, paths in args.public_paths.items()}
    explicit: list[Route] = []
    for hostname in (h for h in hostnames if not h.startswith("*.")):
        for path in public_paths.get(hostname, ()) if hostname in protected else ():
            explicit.append(Route(hostname, args.ingress_url, path=f"^{path}$"))
        explicit.append(Route(hostname, args.ingress_url, protected=hostname in protected))
    if args.ssh_hostname:
        service = f"ssh://{url_host(args.node_address)}:{args.node_ssh_port}"
        explicit.append(Route(args.ssh_hostname, service, protected=True))
    if args.kube_api_hostname:
        explicit.append(Route(args.kube_api_hostname, KUBE_API_SERVICE, protected=True))
    wildcards = [Route(h, args.ingress_url, protected=h in protected) for h in hostnames if h.startswith("*.")]
    return explicit + wildcards


def team_name(auth_domain: str | None) -> str:
    """`team` of `team.cloudflareaccess.com`; an account without Zero Trust has none, and
    cloudflared could then check no token: stop with what to do instead."""
    team = (auth_domain or "").split(".")[0]
    if not team:
        raise ValueError(
            "the Cloudflare account has no Zero Trust organization, which protected hostnames need: "
            "open the dashboard > Zero Trust once and choose a team name (the free plan will do)"
        )
    return team


class Tunnel(pulumi.ComponentResource):
    tunnel_id: pulumi.Output[str]
    cname_target: pulumi.Output[str]
    """`<tunnel-id>.cfargotunnel.com`."""
    routes: list[Route]
    token: pulumi.Output[str]
    """The tunnel's connector token. Secret."""

    def __init__(self, name: str, args: TunnelArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        # Only Cloudflare through `providers`: with the Kubernetes provider there too, the component,
        # and so the tunnel, its routes and DNS, would register only once the cluster exists.
        super().__init__(
            "spitikos:tunnel:Tunnel",
            name,
            None,
            pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(providers=[args.cloudflare])),
        )
        self.routes = routes(args)
        secret = random.RandomBytes(f"{name}-secret", length=32, opts=pulumi.ResourceOptions(parent=self))
        tunnel = cloudflare.ZeroTrustTunnelCloudflared(
            f"{name}-tunnel",
            account_id=args.account_id,
            name="spitikos",
            config_src="cloudflare",
            tunnel_secret=pulumi.Output.secret(secret.base64),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.tunnel_id = tunnel.id
        self.cname_target = tunnel.id.apply(lambda i: f"{i}.cfargotunnel.com")

        access = self._access(name, args) if any(r.protected for r in self.routes) else {}
        self._config(name, args, tunnel, access)
        self._dns(name, args, access)

        token = cloudflare.get_zero_trust_tunnel_cloudflared_token_output(
            account_id=args.account_id,
            tunnel_id=tunnel.id,
            opts=pulumi.InvokeOutputOptions(parent=self, provider=args.cloudflare),
        )
        self.token = pulumi.Output.secret(token.token)
        connector_namespace = self._connector(name, args.replicas, args.kubernetes)
        egress_policy(
            f"{name}-egress-policy", self, connector_namespace, connector_egress(args), provider=args.kubernetes
        )
        self.register_outputs({"tunnel_id": self.tunnel_id, "cname_target": self.cname_target})

    def _config(
        self,
        name: str,
        args: TunnelArgs,
        tunnel: cloudflare.ZeroTrustTunnelCloudflared,
        access: Mapping[str, cloudflare.ZeroTrustAccessApplication],
    ) -> None:
        """The tunnel's routes; a protected one carries its Access application's audience tag."""
        team = self._team_name(args) if access else None

        def origin(route: Route) -> cloudflare.ZeroTrustTunnelCloudflaredConfigConfigIngressOriginRequestArgs:
            checks = (
                cloudflare.ZeroTrustTunnelCloudflaredConfigConfigIngressOriginRequestAccessArgs(
                    required=True, team_name=team, aud_tags=[access[route.hostname].aud]
                )
                if route.protected and team is not None
                else None
            )
            if route.service != args.ingress_url:
                return cloudflare.ZeroTrustTunnelCloudflaredConfigConfigIngressOriginRequestArgs(access=checks)
            return cloudflare.ZeroTrustTunnelCloudflaredConfigConfigIngressOriginRequestArgs(
                no_tls_verify=True, http2_origin=True, match_sn_ito_host=True, access=checks
            )

        cloudflare.ZeroTrustTunnelCloudflaredConfig(
            f"{name}-config",
            account_id=args.account_id,
            tunnel_id=tunnel.id,
            config=cloudflare.ZeroTrustTunnelCloudflaredConfigConfigArgs(
                ingresses=[
                    *(
                        cloudflare.ZeroTrustTunnelCloudflaredConfigConfigIngressArgs(
                            hostname=r.hostname, path=r.path, service=r.service, origin_request=origin(r)
                        )
                        for r in self.routes
                    ),
                    cloudflare.ZeroTrustTunnelCloudflaredConfigConfigIngressArgs(service=CATCH_ALL),
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(access.values())),
        )

    def _team_name(self, args: TunnelArgs) -> pulumi.Output[str]:
        """The Zero Trust team, `<team>` of `<team>.cloudflareaccess.com`, which issues the Access tokens."""
        organization = cloudflare.get_zero_trust_organization_output(
            account_id=args.account_id,
            opts=pulumi.InvokeOutputOptions(parent=self, provider=args.cloudflare),
        )
        return organization.auth_domain.apply(team_name)

    def _dns(self, name: str, args: TunnelArgs, access: Mapping[str, cloudflare.ZeroTrustAccessApplication]) -> None:
        """One proxied CNAME per hostname, in the hostname's own zone, looked up by name."""
        zone_ids = {
            zone: cloudflare.get_zone_output(
                filter=cloudflare.GetZoneFilterArgs(
                    name=zone, match="all", account=cloudflare.GetZoneFilterAccountArgs(id=args.account_id)
                ),
                opts=pulumi.InvokeOutputOptions(parent=self, provider=args.cloudflare),
            ).id
            for zone in args.zones
        }
        hostnames = {r.hostname: r for r in self.routes if r.path is None}
        for hostname, route in hostnames.items():
            zone = zone_of(hostname, tuple(args.zones))
            if zone is None:  # settings refuse this; a direct caller gets the same message
                raise ValueError(f"{hostname!r} is in none of the zones {list(args.zones)}")
            cloudflare.DnsRecord(
                f"{name}-dns-{route.label}",
                zone_id=zone_ids[zone],
                name=hostname,
                type="CNAME",
                content=self.cname_target,
                proxied=True,
                ttl=1,
                comment="spitikos tunnel (managed by Pulumi)",
                opts=pulumi.ResourceOptions(parent=self, depends_on=[access[hostname]] if route.protected else None),
            )

    def _access(self, name: str, args: TunnelArgs) -> dict[str, cloudflare.ZeroTrustAccessApplication]:
        """An Access application per protected hostname, letting in only the listed emails; and a
        bypass for each public path under one (Access applies the most specific path)."""
        child = pulumi.ResourceOptions(parent=self)
        operators = cloudflare.ZeroTrustAccessPolicy(
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
            opts=child,
        )
        applications = {
            r.hostname: cloudflare.ZeroTrustAccessApplication(
                f"{name}-access-{r.label}",
                account_id=args.account_id,
                name=f"spitikos {r.hostname}",
                domain=r.hostname,
                type="self_hosted",
                session_duration="12h",
                app_launcher_visible=False,
                policies=[cloudflare.ZeroTrustAccessApplicationPolicyArgs(id=operators.id, precedence=1)],
                opts=child,
            )
            for r in self.routes
            if r.protected
        }
        bypassed = [r for r in self.routes if r.path is not None]
        if bypassed:
            everyone = cloudflare.ZeroTrustAccessPolicy(
                f"{name}-access-bypass-policy",
                account_id=args.account_id,
                name="spitikos public paths",
                decision="bypass",
                includes=[cloudflare.ZeroTrustAccessPolicyIncludeArgs(everyone={})],
                opts=child,
            )
            for r in bypassed:
                path = r.path.strip("^$") if r.path else ""
                cloudflare.ZeroTrustAccessApplication(
                    f"{name}-access-{r.label}{path.replace('/', '-')}",
                    account_id=args.account_id,
                    name=f"spitikos {r.hostname}{path} (public)",
                    domain=f"{r.hostname}{path}",
                    type="self_hosted",
                    app_launcher_visible=False,
                    policies=[cloudflare.ZeroTrustAccessApplicationPolicyArgs(id=everyone.id, precedence=1)],
                    opts=child,
                )
        return applications

    def _connector(self, name: str, replicas: int, kubernetes: k8s.Provider) -> pulumi.Output[str]:
        """cloudflared in the cluster: the token from a Secret, HTTP/2 to the edge, ready on /ready.
        Returns its namespace's name."""
        child = pulumi.ResourceOptions(parent=self, provider=kubernetes)
        ns = namespace(f"{name}-namespace", NAMESPACE, self, RESTRICTED, provider=kubernetes)
        meta = lambda n: {"name": n, "namespace": ns.metadata.name, "labels": CONNECTOR_LABELS}  # noqa: E731
        secret = k8s.core.v1.Secret(
            f"{name}-token",
            metadata=meta("cloudflared-token"),
            type="Opaque",
            string_data={"token": self.token},
            opts=child,
        )
        k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=meta("cloudflared"),
            spec={
                "replicas": replicas,
                "selector": {"matchLabels": CONNECTOR_SELECTOR},
                "template": {"metadata": {"labels": CONNECTOR_LABELS}, "spec": connector_pod_spec()},
            },
            opts=pulumi.ResourceOptions(parent=self, provider=kubernetes, depends_on=[secret]),
        )
        # cloudflared only dials out; nothing in the cluster has reason to reach it.
        network_policy(
            f"{name}-network-policy", self, ns.metadata.name, "deny-ingress", {"podSelector": {}}, provider=kubernetes
        )
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata=meta("cloudflared"),
            spec={"minAvailable": 1, "selector": {"matchLabels": CONNECTOR_SELECTOR}},
            opts=child,
        )
        return ns.metadata.name


# Cloudflare's edge: port 7844 on addresses that vary (region1/region2.v2.argotunnel.com), so any
# public address. TCP only: cloudflared runs `--protocol http2`, never QUIC (UDP). 443 for
# api.cloudflare.com, which cloudflared calls outside the tunnel (Cloudflare's "tunnel with
# firewall" page lists it; updates are off with --no-autoupdate).
EDGE_PORT = 7844


def connector_egress(args: TunnelArgs) -> list[dict]:
    """What cloudflared dials: DNS, the edge, NGINX, and the origins of the SSH and API routes."""
    rules = [DNS_EGRESS, public_internet(EDGE_PORT, 443), to_pods(in_namespaces(args.ingress_namespace), [443])]
    if args.ssh_hostname:
        rules.append(to_host(args.node_address, args.node_ssh_port))
    if args.kube_api_hostname:
        rules += API_SERVER_EGRESS
    return rules


def connector_pod_spec() -> dict:
    """cloudflared: non-root, read-only, no capabilities, no service account token; the tunnel token
    from its Secret; spread over nodes when there are several."""
    probe = {"httpGet": {"path": "/ready", "port": "metrics"}}
    return {
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": NONROOT_UID,
            "runAsGroup": NONROOT_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": CONNECTOR_SELECTOR},
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
    }
