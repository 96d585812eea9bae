"""The whole platform, composed from its parts and wired together by Outputs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pulumi
import pulumi_cloudflare as cloudflare
import pulumi_github as github
import pulumi_random as random

from components import argocd, gateway, keda_http, namespaces, r2, redis, tunnel
from components import settings as s
from components.apps import AppNamespace, AppNamespaceArgs
from components.argocd import ArgoCd, ArgoCdArgs, RepositoryCredential, RootSource
from components.backup import VolumeBackups, VolumeBackupsArgs
from components.deployers import AppNamespace as AppDeployerNamespace
from components.existing_cluster import ExistingCluster, ExistingClusterArgs
from components.gateway import Edge, EdgeArgs
from components.github import DOCS_SYNC_TOKEN, CiSecretsArgs, DocsSyncArgs, GitHub, GitHubArgs, WebhookArgs
from components.guard import ClusterGuard, ClusterGuardArgs
from components.k3s import EtcdSnapshotArgs, K3sCluster, K3sClusterArgs, NodeArgs
from components.keda import Keda, KedaArgs
from components.keda_http import KedaHttp, KedaHttpArgs
from components.r2 import BackupBucket, BackupBucketArgs
from components.redis import Redis, RedisArgs
from components.tunnel import Tunnel, TunnelArgs

# The api's Connect RPC that recaches docs (spitikos/api proto/docs/docs.proto: docs.DocsService).
DOCS_SYNC_PATH = "/docs.DocsService/Sync"
ARGOCD_WEBHOOK_PATH = "/api/webhook"
API_NAMESPACE = namespaces.API
K3S_NAMESPACES = list(namespaces.K3S)


@dataclass
class PlatformArgs:
    settings: s.Settings


class Platform(pulumi.ComponentResource):
    """k3s and everything on and around it, from one validated `Settings`."""

    kubeconfig: pulumi.Output[str]
    """Secret."""
    node_address: str
    github: GitHub | None
    """None when the stack builds no GitHub part (`github: false`)."""
    tunnel: Tunnel | None
    """None when the stack builds no Cloudflare part (`cloudflare: false`)."""
    ci_tunnel: dict | None
    """What a CI job forwards to reach the node, and the nodes it cannot reach (spitikos/ci_tunnel.py);
    None without both the SSH and the API hostnames."""
    ci_access_tokens: pulumi.Output[dict] | None
    """CI's service tokens, `{role: {id, secret}}`. Secret."""

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spitikos:platform:Platform", name, None, opts)
        cfg = args.settings
        child = pulumi.ResourceOptions(parent=self)

        # etcd snapshots go to the backup bucket, whose keys exist only once Cloudflare is set up below.
        snapshots, resolve_snapshot_keys = etcd_snapshots(cfg)
        self.cluster = self._cluster(name, cfg, snapshots)
        kube = self.cluster.provider

        # In-cluster: each waits for the cluster only, not for the others.
        self._in_cluster(name, cfg, kube)

        # Outside: GitHub and Cloudflare do not wait for the node; each only when the stack builds
        # it (`github`, `cloudflare`).
        cloudflare_provider = (
            cloudflare.Provider(f"{name}-cloudflare", api_token=cfg.cloudflare.api_token, opts=child)
            if cfg.parts.cloudflare
            else None
        )
        self.backup_bucket = self._backup_bucket(name, cfg, cloudflare_provider, resolve_snapshot_keys)
        self.volume_backups = self._volume_backups(name, cfg, kube)
        self.docs_sync_token = self._docs_sync_token(name)
        # Argo CD generates the charts webhook's secret, but needs GitHub's deploy keys first:
        # a deferred Output lets GitHub take the secret before Argo CD exists in this program,
        # with no cycle among the resources themselves.
        charts_webhook_secret, resolve_charts_webhook_secret = pulumi.deferred_output()
        # CI's service tokens go to this repository's environments, but the tunnel makes them later.
        ci_secrets, resolve_ci_secrets = ci_environment_secrets(cfg)
        self.github = self._github(name, cfg, charts_webhook_secret, ci_secrets) if cfg.parts.github else None
        # Before Argo CD: its deployer's RoleBinding in `api` waits for the namespace.
        self.api = AppNamespace(
            f"{name}-api",
            AppNamespaceArgs(
                provider=kube,
                namespace=API_NAMESPACE,
                env=app_env(self.redis, {DOCS_SYNC_TOKEN: self.docs_sync_token}),
            ),
            opts=child,
        )
        self.argocd = ArgoCd(f"{name}-argocd", self._argocd_args(cfg, kube), opts=child)
        resolve_charts_webhook_secret(self.argocd.webhook_secret)

        self.tunnel = self._tunnel(name, cfg, cloudflare_provider, kube) if cloudflare_provider else None
        resolve_ci_secrets(self.tunnel)
        self.ci_tunnel = ci_tunnel(cfg, self.tunnel)
        self.ci_access_tokens = (
            pulumi.Output.secret({r: {"id": i, "secret": v} for r, (i, v) in self.tunnel.ci_tokens.items()})
            if self.ci_tunnel is not None and self.tunnel is not None
            else None
        )

        self.kubeconfig = self.cluster.kubeconfig
        self.node_address = cfg.server.host
        self.register_outputs({"kubeconfig": self.kubeconfig, "node_address": self.node_address})

    def _in_cluster(self, name: str, cfg: s.Settings, kube: pulumi.ProviderResource) -> None:
        """The edge (Gateway API on NGINX), Redis, KEDA and its HTTP add-on, and the admission guard:
        each waits for the cluster only."""
        child = pulumi.ResourceOptions(parent=self)
        self.edge = Edge(f"{name}-edge", edge_args(cfg, kube), opts=child)
        self.redis = Redis(
            f"{name}-redis",
            RedisArgs(
                provider=kube,
                platform_namespaces=[n for n in self.owned_namespaces() if n != redis.NAMESPACE],
                # On a cluster the stack is given, its default StorageClass (kind's is `standard`).
                **({"storage_class": None} if cfg.parts.existing_cluster else {}),
            ),
            opts=child,
        )
        self.keda = Keda(f"{name}-keda", KedaArgs(provider=kube, http_scaler_namespace=keda_http.NAMESPACE), opts=child)
        # The routes that reach the interceptor are the Gateway's (docs/decisions/0007): the edge's
        # NGINX sends it traffic, and the ReferenceGrants that let the apps' routes name its Service
        # wait for the Gateway API's CRDs.
        self.keda_http = KedaHttp(
            f"{name}-keda-http",
            KedaHttpArgs(
                provider=kube,
                edge_namespace=gateway.NAMESPACE,
                gateway_api=self.edge.crds,
                app_namespaces=cfg.scale_from_zero_namespaces,
                keda_release=self.keda.release,
            ),
            opts=child,
        )
        self.guard = ClusterGuard(
            f"{name}-guard",
            ClusterGuardArgs(
                kube,
                cfg.allowed_admin_bindings,
                cfg.privileged_namespaces,
                platform_namespaces=self.platform_namespaces(),
                route_namespaces=dict(cfg.route_namespaces),
            ),
            opts=child,
        )

    def _cluster(self, name: str, cfg: s.Settings, snapshots: EtcdSnapshotArgs | None) -> K3sCluster | ExistingCluster:
        """Your own cluster (`kubeconfig`), or k3s installed on the node(s) over SSH."""
        child = pulumi.ResourceOptions(parent=self)
        if cfg.parts.kubeconfig is not None:
            return ExistingCluster(f"{name}-cluster", ExistingClusterArgs(cfg.parts.kubeconfig), opts=child)
        return K3sCluster(f"{name}-k3s", cluster_args(cfg, snapshots), opts=child)

    def _github(
        self, name: str, cfg: s.Settings, charts_webhook_secret: pulumi.Input[str], ci: CiSecretsArgs | None
    ) -> GitHub:
        child = pulumi.ResourceOptions(parent=self)
        provider = github.Provider(f"{name}-github", owner=cfg.github.owner, token=cfg.github.token, opts=child)
        args = github_args(cfg, provider, charts_webhook_secret, self.docs_sync_token)
        args.ci = ci
        return GitHub(f"{name}-github", args, opts=child)

    def _tunnel(
        self, name: str, cfg: s.Settings, provider: cloudflare.Provider, kube: pulumi.ProviderResource
    ) -> Tunnel:
        return Tunnel(
            f"{name}-tunnel",
            tunnel_args(cfg, provider, kube, self.edge.service_url),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _docs_sync_token(self, name: str) -> pulumi.Output[str]:
        """The token docs' sync workflow sends the api. Renamed from the docs webhook's secret: the
        alias keeps the value, so nothing is replaced."""
        token = random.RandomPassword(
            f"{name}-docs-sync-token",
            length=40,
            special=False,
            opts=pulumi.ResourceOptions(parent=self, aliases=[pulumi.Alias(name=f"{name}-docs-webhook-secret")]),
        )
        return pulumi.Output.secret(token.result)

    def _argocd_args(self, cfg: s.Settings, kube: pulumi.ProviderResource) -> ArgoCdArgs:
        """Argo CD behind NGINX, reading the seed, charts and the root's repository with GitHub's
        deploy keys (or, without GitHub, the root's public URL)."""
        return ArgoCdArgs(
            provider=kube,
            hostname=cfg.argocd_hostname,
            root=RootSource(self._root_url(cfg), cfg.root.path, cfg.root.revision),
            owner=cfg.github.owner,
            gateway=argocd.GatewayRef(
                namespace=gateway.NAMESPACE, name=gateway.GATEWAY, pod=gateway.DATA_PLANE_POD, ready=self.edge.gateway
            ),
            repositories=self._deploy_keys(argocd_repositories(cfg)),
            app_repository_urls=self._app_sources(cfg),
            platform_namespaces=self.platform_namespaces(),
            admin_bindings=cfg.allowed_admin_bindings,
            app_namespaces=[
                AppDeployerNamespace(ns, reach, self.api.namespace if ns == API_NAMESPACE else None)
                for ns, reach in cfg.app_namespaces
            ],
            admin_password_rotated_at=cfg.argocd_admin_password_rotated_at,
        )

    def _root_url(self, cfg: s.Settings) -> str:
        """The root's repository over SSH (read with its deploy key), or, without GitHub, the URL given."""
        if self.github is None:
            return cfg.parts.root_repository_url or ""
        return self.github.ssh_urls[cfg.root.repository]

    def _deploy_keys(self, repositories: list[str]) -> list[RepositoryCredential]:
        """Argo CD's read-only deploy keys; none without GitHub (the root's URL is public)."""
        if self.github is None:
            return []
        return [RepositoryCredential(r, self.github.ssh_urls[r], self.github.deploy_keys[r]) for r in repositories]

    @staticmethod
    def _app_sources(cfg: s.Settings) -> list[str]:
        """What the applications may come from besides the owner's repositories: without GitHub,
        the root's own repository."""
        own = [] if cfg.parts.github else [cfg.parts.root_repository_url or ""]
        return [*own, *cfg.parts.app_repository_urls]

    def _backup_bucket(
        self,
        name: str,
        cfg: s.Settings,
        provider: cloudflare.Provider | None,
        resolve_snapshot_keys: Callable[[BackupBucket], None],
    ) -> BackupBucket | None:
        """The R2 bucket and its object-only credentials, when the stack backs anything up."""
        if not cfg.backup.bucket or provider is None:
            return None
        bucket = BackupBucket(
            f"{name}-backups",
            BackupBucketArgs(provider=provider, account_id=cfg.cloudflare.account_id, bucket=cfg.backup.bucket),
            opts=pulumi.ResourceOptions(parent=self),
        )
        resolve_snapshot_keys(bucket)
        return bucket

    def _volume_backups(self, name: str, cfg: s.Settings, kube: pulumi.ProviderResource) -> VolumeBackups | None:
        """VolSync and a restic backup of each listed claim, to the bucket."""
        if self.backup_bucket is None or not cfg.backup.volumes:
            return None
        return VolumeBackups(
            f"{name}-volume-backups",
            VolumeBackupsArgs(provider=kube, bucket=self.backup_bucket, volumes=cfg.backup.volumes),
            opts=pulumi.ResourceOptions(parent=self),
        )

    @staticmethod
    def owned_namespaces() -> list[str]:
        """`platform_namespaces` spelled out: k3s's own by name, for selectors that take no globs."""
        return [n for n in Platform.platform_namespaces() if "*" not in n] + K3S_NAMESPACES

    @staticmethod
    def platform_namespaces() -> list[str]:
        """Namespaces Pulumi owns (and k3s's own, `kube-*`), which Argo CD's applications may never
        deploy into. Application namespaces Pulumi prepares (`api`) are the applications' to use."""
        return list(namespaces.PLATFORM)


def etcd_snapshots(cfg: s.Settings) -> tuple[EtcdSnapshotArgs | None, Callable[[BackupBucket], None]]:
    """etcd snapshots to the backup bucket, under its etcd prefix (used with datastore etcd alone), and
    what hands them the bucket's keys once it exists (deferred Outputs: no cycle among resources)."""
    if not cfg.backup.bucket:
        return None, lambda _bucket: None
    access_key_id, resolve_access_key_id = pulumi.deferred_output()
    secret_access_key, resolve_secret_access_key = pulumi.deferred_output()

    def resolve(bucket: BackupBucket) -> None:
        resolve_access_key_id(bucket.access_key_id)
        resolve_secret_access_key(bucket.secret_access_key)

    snapshots = EtcdSnapshotArgs(
        endpoint=r2.endpoint(cfg.cloudflare.account_id),
        bucket=cfg.backup.bucket,
        folder=r2.ETCD_PREFIX,
        region=r2.REGION,
        access_key_id=pulumi.Output.secret(access_key_id),
        secret_access_key=pulumi.Output.secret(secret_access_key),
    )
    return snapshots, resolve


def ci_environment_secrets(cfg: s.Settings) -> tuple[CiSecretsArgs | None, Callable[[Tunnel | None], None]]:
    """With `ciRepository`: each CI environment's service token (id and secret, as cloudflared reads
    them), deferred until the tunnel makes the tokens; and what hands them over then."""
    if not (cfg.ci.enabled and cfg.ci.repository):
        return None, lambda _tunnel: None
    deferred = {role: (pulumi.deferred_output(), pulumi.deferred_output()) for role in tunnel.CI_TOKENS}
    environments = {
        environment: {tunnel.CI_TOKEN_ID: deferred[role][0][0], tunnel.CI_TOKEN_SECRET: deferred[role][1][0]}
        for environment, role in tunnel.ci_environments(pulumi.get_stack()).items()
    }

    def resolve(made: Tunnel | None) -> None:
        for role, ((_, resolve_id), (_, resolve_secret)) in deferred.items():
            token_id, token_secret = made.ci_tokens[role] if made else ("", "")
            resolve_id(pulumi.Output.from_input(token_id))
            resolve_secret(pulumi.Output.from_input(token_secret))

    return CiSecretsArgs(cfg.ci.repository, environments), resolve


def ci_tunnel(cfg: s.Settings, made: Tunnel | None) -> dict | None:
    """The `ciTunnel` output: each forward, and the hosts the stack reaches over SSH that no
    hostname publishes (agents, more servers), which a CI job therefore cannot reach."""
    if made is None or not made.ci_forwards:
        return None
    return {
        "forwards": [
            {"kind": f.kind, "hostname": f.hostname, "address": f.address, "port": f.port} for f in made.ci_forwards
        ],
        "unreachable": [n.host for n in (*cfg.agents, *cfg.backup.servers)],
    }


def app_env(cache: Redis, extra: dict[str, pulumi.Input[str]]) -> dict[str, pulumi.Input[str]]:
    """The `platform-env` Secret: what the platform hands an application (docs/platform.md's contract
    table, held to this by tests/test_stack.py), plus what that application alone needs."""
    return {"REDIS_ADDRESS": cache.address, "REDIS_PASSWORD": cache.password, "REDIS_URL": cache.url, **extra}


def edge_args(cfg: s.Settings, kube: pulumi.ProviderResource) -> EdgeArgs:
    """The Gateway for the tunnel's cloudflared, a listener per hostname; NGINX reaches no platform
    namespace but Argo CD's and the HTTP interceptor's, and no route from a platform namespace attaches to a hostname no
    namespace owns."""
    return EdgeArgs(
        provider=kube,
        hostnames=cfg.hostnames,
        route_namespaces=dict(cfg.route_namespaces),
        platform_namespaces=Platform.owned_namespaces(),
        client_namespace=tunnel.NAMESPACE,
        unreachable_namespaces=[
            n
            for n in Platform.owned_namespaces()
            if n not in (argocd.NAMESPACE, gateway.NAMESPACE, keda_http.NAMESPACE)
        ],
    )


def argocd_repositories(cfg: s.Settings) -> list[str]:
    """What Argo CD reads over SSH with read-only deploy keys: the seed's, the charts', the root's."""
    return list(dict.fromkeys([s.CENTRAL_REPOSITORY, s.CHARTS_REPOSITORY, cfg.root.repository]))


def cluster_args(cfg: s.Settings, snapshots: EtcdSnapshotArgs | None = None) -> K3sClusterArgs:
    """The servers and agents, reached over SSH with the stack's key; with etcd, its snapshots."""

    def node(n: s.NodeSettings) -> NodeArgs:
        return NodeArgs(
            host=n.host, user=n.user, port=n.port, private_key=cfg.ssh_private_key, host_key=n.host_key, key=n.key
        )

    return K3sClusterArgs(
        server=node(cfg.server),
        agents=[node(a) for a in cfg.agents],
        version=cfg.k3s_version,
        tls_sans=[h for h in (cfg.kube_api_hostname,) if h],
        uninstall_on_destroy=cfg.uninstall_on_destroy,
        kubeconfig_renewal=cfg.kubeconfig_renewal,
        etcd=cfg.backup.etcd,
        etcd_snapshots=snapshots,
        servers=[node(n) for n in cfg.backup.servers],
    )


def github_args(
    cfg: s.Settings,
    provider: github.Provider,
    charts_webhook_secret: pulumi.Input[str],
    docs_sync_token: pulumi.Input[str],
) -> GitHubArgs:
    """The repositories, Argo CD's deploy keys, the charts webhook (its secret shared with Argo CD)
    and the token docs' sync workflow sends the api."""
    return GitHubArgs(
        provider=provider,
        owner=cfg.github.owner,
        repositories=cfg.github.repositories,
        central_repository=s.CENTRAL_REPOSITORY,
        charts_repository=s.CHARTS_REPOSITORY,
        deploy_key_repositories=argocd_repositories(cfg),
        application_repositories=cfg.github.application_repositories,
        webhooks=[
            WebhookArgs(
                s.CHARTS_REPOSITORY, f"https://{cfg.argocd_hostname}{ARGOCD_WEBHOOK_PATH}", charts_webhook_secret
            ),
        ],
        release_token=cfg.github.release_token,
        visibility=cfg.github.visibility,
        required_reviews=cfg.github.required_reviews,
        adopt_existing=cfg.github.adopt_existing,
        docs_sync=DocsSyncArgs(s.DOCS_REPOSITORY, f"https://{cfg.api_hostname}{DOCS_SYNC_PATH}", docs_sync_token),
    )


def tunnel_args(
    cfg: s.Settings, provider: cloudflare.Provider, kube: pulumi.ProviderResource, ingress_url: str
) -> TunnelArgs:
    return TunnelArgs(
        cloudflare=provider,
        kubernetes=kube,
        account_id=cfg.cloudflare.account_id,
        zones=cfg.zones,
        ingress_url=ingress_url,
        ingress_namespace=gateway.NAMESPACE,
        hostnames=cfg.hostnames,
        protected_hostnames=cfg.protected_hostnames,
        # GitHub must reach Argo CD's webhook even when the UI is behind Access.
        public_paths={cfg.argocd_hostname: [ARGOCD_WEBHOOK_PATH]},
        node_address=cfg.server.host,
        node_ssh_port=cfg.server.port,
        ssh_hostname=cfg.ssh_hostname,
        kube_api_hostname=cfg.kube_api_hostname,
        access_emails=cfg.access_emails,
        ci_token_rotated_at=cfg.ci.token_rotated_at,
    )
