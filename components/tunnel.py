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

With both the SSH and the Kubernetes API hostnames, CI gets in too (docs/decisions/0005): two
Access service tokens (`main` for the deploy and drift jobs, `preview` for pull requests'
previews), admitted by one `non_identity` policy on exactly those two applications. A job on
a GitHub-hosted runner forwards each hostname to the node's own address on its loopback
(spitikos/ci_tunnel.py), so the SSH connections and the kubeconfig the state records stay as
they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pulumi
import pulumi_cloudflare as cloudflare
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import namespaces, versions
from components.k3s import API_PORT
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

NAMESPACE = namespaces.CLOUDFLARED
# The image's user is the named `nonroot` (65532); runAsNonRoot needs the number to verify it.
NONROOT_UID = 65532
METRICS_PORT = 2000
CLOUDFLARED = Size(cpu="20m", memory="32Mi", cpu_limit="200m", memory_limit="128Mi")
CATCH_ALL = "http_status:404"
KUBE_API_SERVICE = "tcp://kubernetes.default.svc:443"
CONNECTOR_LABELS = {"app.kubernetes.io/name": "cloudflared", **PLATFORM_LABELS}
CONNECTOR_SELECTOR = {"app.kubernetes.io/name": "cloudflared"}
# CI's Access service tokens: `main` for the jobs only main reaches (deploy, drift), `preview`
# for pull requests' previews. Two, so that neither environment holds the other's.
CI_TOKENS = ("main", "preview")
# The names cloudflared reads a service token from (`access tcp`'s --service-token-id and
# --service-token-secret, cloudflared 2026.6.1 cmd/cloudflared/access/cmd.go); CI's secrets carry them.
CI_TOKEN_ID = "TUNNEL_SERVICE_TOKEN_ID"  # noqa: S105 - a name, not a secret
CI_TOKEN_SECRET = "TUNNEL_SERVICE_TOKEN_SECRET"  # noqa: S105 - a name, not a secret
# After a rotation (`ciTokenRotatedAt`), how long the previous secret is still accepted: the
# deploy that rotates it keeps connecting with it, and a deploy may wait days for its approval.
CI_TOKEN_GRACE = timedelta(days=3)


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
    ci_token_rotated_at: str = ""
    """A UTC time (`2026-12-01T09:30:00Z`); a later one gives CI's tokens new secrets. "" never rotated."""
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


@dataclass(frozen=True)
class Forward:
    """A hostname CI forwards to `address:port` on its runner: the address and port the stack
    itself connects to (an SSH connection's host, the kubeconfig's server)."""

    kind: str
    """`ssh` or `kubeApi`: what answers at the far end."""
    hostname: str
    address: str
    port: int


def ci_forwards(args: TunnelArgs) -> list[Forward]:
    """What a CI job forwards, through Access, to reach the node as the state records it: SSH at
    the node's address and port, the API server at the kubeconfig's `https://<node>:6443`.
    None unless both hostnames exist."""
    if not (args.ssh_hostname and args.kube_api_hostname):
        return []
    return [
        Forward("ssh", args.ssh_hostname, args.node_address, args.node_ssh_port),
        Forward("kubeApi", args.kube_api_hostname, args.node_address, API_PORT),
    ]


def ci_token_rotation(rotated_at: str) -> dict[str, object]:
    """The service tokens' rotation inputs for `ciTokenRotatedAt`: the secret's version is the time
    in seconds (so a later time is a higher version, which Cloudflare takes as a rotation), and the
    previous secret stays accepted until CI_TOKEN_GRACE after it. Nothing when never rotated."""
    if not rotated_at:
        return {}
    when = datetime.strptime(rotated_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return {
        "client_secret_version": int(when.timestamp()),
        "previous_client_secret_expires_at": (when + CI_TOKEN_GRACE).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def ci_environments(stack: str) -> dict[str, str]:
    """CI's environments (named after the stack, as the workflows name them) and the token each holds:
    the deploy's and the drift check's, which only main reaches, hold `main`; the previews' `preview`."""
    return {stack: "main", f"{stack}-drift": "main", f"{stack}-preview": "preview"}


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
    ci_forwards: list[Forward]
    """What CI forwards to reach the node (empty without both the SSH and the API hostnames)."""
    ci_tokens: dict[str, tuple[pulumi.Output[str], pulumi.Output[str]]]
    """Per CI token (`main`, `preview`): its client id and client secret, both secret, as
    cloudflared reads them (TUNNEL_SERVICE_TOKEN_ID, TUNNEL_SERVICE_TOKEN_SECRET)."""

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
        self.ci_forwards = ci_forwards(args)
        self.ci_tokens = {}
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
        """An Access application per protected hostname, letting in only the listed emails (and, on
        the SSH and API hostnames, CI's service tokens); and a bypass for each public path under
        one (Access applies the most specific path)."""
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
        ci = self._ci_access(name, args) if self.ci_forwards else None
        ci_hostnames = {f.hostname for f in self.ci_forwards}
        applications = {
            r.hostname: cloudflare.ZeroTrustAccessApplication(
                f"{name}-access-{r.label}",
                account_id=args.account_id,
                name=f"spitikos {r.hostname}",
                domain=r.hostname,
                type="self_hosted",
                session_duration="12h",
                app_launcher_visible=False,
                policies=[
                    cloudflare.ZeroTrustAccessApplicationPolicyArgs(id=operators.id, precedence=1),
                    *(
                        [cloudflare.ZeroTrustAccessApplicationPolicyArgs(id=ci.id, precedence=2)]
                        if ci is not None and r.hostname in ci_hostnames
                        else []
                    ),
                ],
                opts=child,
            )
            for r in self.routes
            if r.protected
        }
        self._public_paths(name, args)
        return applications

    def _public_paths(self, name: str, args: TunnelArgs) -> None:
        """A bypass application for each public path under a protected hostname."""
        child = pulumi.ResourceOptions(parent=self)
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

    def _ci_access(self, name: str, args: TunnelArgs) -> cloudflare.ZeroTrustAccessPolicy:
        """CI's service tokens, and the policy that admits them (and nothing else): `non_identity`,
        Access's decision for a service token, which carries no user. Fills `ci_tokens`."""
        child = pulumi.ResourceOptions(parent=self)
        tokens = {
            role: cloudflare.ZeroTrustAccessServiceToken(
                f"{name}-ci-token-{role}",
                account_id=args.account_id,
                name=f"spitikos ci ({role})",
                # No expiry of its own: an expired token would stop CI without a word. It is
                # rotated by `ciTokenRotatedAt` instead, and cut off by the same setting.
                duration="forever",
                **ci_token_rotation(args.ci_token_rotated_at),
                opts=child,
            )
            for role in CI_TOKENS
        }
        # The SDK lists clientSecret in additionalSecretOutputs; the id is marked secret here too,
        # since both only ever travel together into CI's environments.
        self.ci_tokens = {
            role: (pulumi.Output.secret(token.client_id), pulumi.Output.secret(token.client_secret))
            for role, token in tokens.items()
        }
        return cloudflare.ZeroTrustAccessPolicy(
            f"{name}-access-ci-policy",
            account_id=args.account_id,
            name="spitikos ci",
            decision="non_identity",
            includes=[
                cloudflare.ZeroTrustAccessPolicyIncludeArgs(
                    service_token=cloudflare.ZeroTrustAccessPolicyIncludeServiceTokenArgs(token_id=token.id)
                )
                for token in tokens.values()
            ],
            opts=child,
        )

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
