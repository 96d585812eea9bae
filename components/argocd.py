"""Argo CD: the GitOps operator, trimmed for one Pi, with its root Application (app of apps).

Pulumi owns Argo CD itself, its repository credentials and the root Application;
Argo CD owns the applications the root finds in Git. So that the two never manage the
same object, the root Application's project may create nothing but Applications, and the
`default` project, which the applications name, may deploy anywhere but the platform's
namespaces and create only the cluster-scoped kinds homelab charts install, never one of
the platform's own. Argo CD refuses anything else, and shows why on the application. Each project
also names the deployer its destinations are applied as (sync impersonation): Kubernetes' RBAC then
judges what Git asks for, as an identity that holds only what the applications need
(components/deployers.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import deployers, namespaces, versions
from components.kube import (
    API_SERVER_EGRESS,
    DNS_EGRESS,
    NAMESPACE_NAME,
    PLATFORM_LABELS,
    RESTRICTED,
    Size,
    chart,
    egress_policy,
    namespace,
    network_policy,
    public_internet,
)

NAMESPACE = namespaces.ARGOCD
IN_CLUSTER = "https://kubernetes.default.svc"
ROOT_PROJECT = "root"
APPS_PROJECT = "default"
SERVER_SERVICE = "argocd-server"  # the chart's `<fullname>-server` for the release name `argocd`
SERVER_SERVICE_PORT = 80  # chart 10.1.1 server.service.servicePortHttp
# The server's pods and port (chart 10.1.1: `argo-cd.selectorLabels` with `nameOverride: argocd`,
# `server.containerPorts.server`): the Gateway's NGINX pods are their only clients.
SERVER_POD = {"app.kubernetes.io/name": "argocd-server", "app.kubernetes.io/instance": "argocd"}
SERVER_PORT = 8080

# Cluster-scoped kinds the applications may create: what homelab charts install
# (kube-prometheus-stack, vault, kubernetes-dashboard: CRDs, RBAC, admission webhooks) and
# the Namespace that `CreateNamespace=true` adds (Argo CD checks it against the project).
APP_CLUSTER_KINDS = [
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
    ("", "Namespace"),
]
# The platform's own cluster-scoped objects, by name (`name` globs: Argo CD 3.3 and later),
# which no application may create or change.
PLATFORM_CLUSTER_OBJECTS = [
    ("apiextensions.k8s.io", "CustomResourceDefinition", "*.argoproj.io"),
    ("apiextensions.k8s.io", "CustomResourceDefinition", "*.keda.sh"),
    ("rbac.authorization.k8s.io", "ClusterRole", "argocd-*"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding", "argocd-*"),
    ("rbac.authorization.k8s.io", "ClusterRole", "keda-*"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding", "keda-*"),
    ("rbac.authorization.k8s.io", "ClusterRole", "nginx-gateway*"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding", "nginx-gateway*"),
    # The Gateway API's CRDs (the program's) and NGF's (its chart's): an application replacing one
    # would redefine every route, or drop them all.
    ("apiextensions.k8s.io", "CustomResourceDefinition", "*.gateway.networking.k8s.io"),
    ("apiextensions.k8s.io", "CustomResourceDefinition", "*.gateway.nginx.org"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration", "keda-admission"),
    # VolSync (chart 0.16.0, release `volsync`): its manager holds Secrets and Jobs cluster-wide.
    ("apiextensions.k8s.io", "CustomResourceDefinition", "*.volsync.backube"),
    ("rbac.authorization.k8s.io", "ClusterRole", "volsync-*"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding", "volsync-*"),
    # The VolumeSnapshot CRDs the platform installs (components/crds/volumesnapshots.yaml).
    ("apiextensions.k8s.io", "CustomResourceDefinition", "*.snapshot.storage.k8s.io"),
    # k3s's CRDs (helm-controller's helmcharts/helmchartconfigs.helm.cattle.io; addons and
    # etcdsnapshotfiles.k3s.cattle.io): a HelmChart in kube-system installs anything as cluster-admin.
    ("apiextensions.k8s.io", "CustomResourceDefinition", "*.cattle.io"),
    # Kubernetes' own roles and bindings, and those of k3s's bundled manifests (rolebindings.yaml,
    # ccm.yaml, local-storage.yaml, coredns.yaml, metrics-server/): changing one, or its subjects,
    # hands its rights to whoever the commit names.
    *(
        ("rbac.authorization.k8s.io", kind, name)
        for kind in ("ClusterRole", "ClusterRoleBinding")
        for name in (
            "cluster-admin",
            "admin",
            "edit",
            "view",
            "system:*",
            "k3s-*",
            "local-path-provisioner-*",
            "kube-apiserver-kubelet-admin",
            "metrics-server:*",
        )
    ),
]

# The edge is the platform's: an application routes on its Gateway and never makes one of its own.
# NGF would provision NGINX for any Gateway of its class, in the application's namespace, with a
# Service an application's NginxProxy could make a NodePort; a ListenerSet adds listeners to a Gateway.
EDGE_KINDS = [
    ("gateway.networking.k8s.io", "Gateway"),
    ("gateway.networking.k8s.io", "ListenerSet"),
    ("gateway.nginx.org", "NginxProxy"),
    ("gateway.nginx.org", "SnippetsFilter"),
    ("gateway.nginx.org", "SnippetsPolicy"),
]
# Namespaced kinds no application may create (the default project's `namespaceResourceBlacklist`):
# Ingress, which no controller serves (the edge is the Gateway; an Ingress controller an app
# brought would serve any hostname, Argo CD's included, past the listeners' `allowedRoutes`);
# k3s's HelmChart and HelmChartConfig (its helm-controller, if ever on, installs them as
# cluster-admin) and Addon; hand-written Endpoints and EndpointSlices, which would route a
# Service (and so a hostname) to any address, argocd-server's or the API server's included.
APP_NAMESPACED_DENIED_KINDS = [
    *EDGE_KINDS,
    ("networking.k8s.io", "Ingress"),
    ("helm.cattle.io", "*"),
    ("k3s.cattle.io", "*"),
    ("", "Endpoints"),
    ("discovery.k8s.io", "EndpointSlice"),
]

CONTROLLER = Size(cpu="100m", memory="192Mi", cpu_limit="1", memory_limit="512Mi")
SERVER = Size(cpu="50m", memory="64Mi", cpu_limit="500m", memory_limit="256Mi")
REPO_SERVER = Size(cpu="50m", memory="96Mi", cpu_limit="1", memory_limit="512Mi")
APPLICATION_SET = Size(cpu="20m", memory="48Mi", cpu_limit="200m", memory_limit="128Mi")
REDIS = Size(cpu="20m", memory="32Mi", cpu_limit="200m", memory_limit="128Mi")
SMALL_JOB = Size(cpu="10m", memory="16Mi", cpu_limit="100m", memory_limit="64Mi")


@dataclass
class RepositoryCredential:
    """A Git repository Argo CD reads over SSH with a read-only deploy key."""

    name: str
    url: str
    private_key: pulumi.Input[str]


@dataclass(frozen=True)
class RootSource:
    """Where the root Application reads: plain manifests, or a Helm chart (a `Chart.yaml` there)."""

    repository_url: str
    path: str
    revision: str = "main"


@dataclass(frozen=True)
class GatewayRef:
    """The Gateway that serves Argo CD's hostname, and the pods that forward to the server."""

    namespace: str
    name: str
    pod: dict[str, str]
    """The labels of the Gateway's NGINX pods: the server's only clients."""
    ready: pulumi.Resource | None = None
    """The Gateway (and so its CRDs): what the route waits for."""


@dataclass
class ArgoCdArgs:
    provider: k8s.Provider
    hostname: str
    """Where the UI, API and GitHub webhook are served, e.g. argocd.spitikos.dev."""
    root: RootSource
    owner: str
    """The GitHub owner whose repositories the applications may come from."""
    repositories: Sequence[RepositoryCredential] = field(default_factory=list)
    platform_namespaces: Sequence[str] = field(default_factory=list)
    """Namespaces Pulumi manages (globs allowed); applications may never deploy into them."""
    gateway: GatewayRef = field(default_factory=lambda: GatewayRef("nginx-gateway", "spitikos", {}))
    """The Gateway whose listener for `hostname` admits Argo CD's route."""
    app_repository_urls: Sequence[str] = ()
    """More Git URLs (patterns) the applications may come from, besides the owner's repositories."""
    admin_bindings: Sequence[tuple[str, str]] = ()
    """(binding, ClusterRole) pairs the applications may make: the deployers that reach the cluster
    get `bind` on those roles."""
    app_namespaces: Sequence[deployers.AppNamespace] = ()
    """Where the applications deploy, each applied as a deployer of its own (`appNamespaces`)."""
    admin_password_rotated_at: str = ""
    """An RFC 3339 time; changing it generates a new admin password and revokes every session
    issued before it (Argo CD's `admin.passwordMtime`)."""


class ArgoCd(pulumi.ComponentResource):
    admin_password: pulumi.Output[str]
    """The `admin` user's password. Secret."""
    webhook_secret: pulumi.Output[str]
    """The shared secret GitHub signs webhook deliveries to `/api/webhook` with. Secret."""
    url: str
    release: k8s.helm.v3.Release
    root_application: k8s.apiextensions.CustomResource

    def __init__(self, name: str, args: ArgoCdArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        # Not `providers=[...]`: the component would then register only once the cluster exists,
        # and with it its webhook secret, which GitHub's charts webhook must not wait for.
        super().__init__("spitikos:gitops:ArgoCd", name, None, opts)
        ns = namespace(f"{name}-namespace", NAMESPACE, self, RESTRICTED, provider=args.provider)
        admin_password_hash = self._admin_password(name, args)
        webhook = random.RandomPassword(
            f"{name}-webhook-secret", length=40, special=False, opts=pulumi.ResourceOptions(parent=self)
        )
        self.webhook_secret = pulumi.Output.secret(webhook.result)
        self.deployers = deployers.Deployers(
            f"{name}-deployers", self, args.provider, ns, args.admin_bindings, args.app_namespaces
        )
        self.release = self._release(name, args, ns, admin_password_hash)
        self._route(name, args, ns)
        self._egress_policy(name, args, ns)
        self._network_policies(name, args, ns)
        self._repository_secrets(name, args, ns)
        self.root_application = self._root(name, args)
        self.url = f"https://{args.hostname}"
        self.register_outputs(
            {"url": self.url, "admin_password": self.admin_password, "webhook_secret": self.webhook_secret}
        )

    def _admin_password(self, name: str, args: ArgoCdArgs) -> pulumi.Output[str]:
        """The `admin` password (`self.admin_password`), new whenever `admin_password_rotated_at`
        changes; returns the bcrypt hash Argo CD keeps."""
        admin = random.RandomPassword(
            f"{name}-admin-password",
            length=24,
            special=False,
            keepers={"rotatedAt": args.admin_password_rotated_at} if args.admin_password_rotated_at else None,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.admin_password = pulumi.Output.secret(admin.result)
        return pulumi.Output.secret(admin.bcrypt_hash)

    def _release(
        self, name: str, args: ArgoCdArgs, ns: k8s.core.v1.Namespace, admin_password_hash: pulumi.Output[str]
    ) -> k8s.helm.v3.Release:
        rotated_at = args.admin_password_rotated_at or FIRST_ADMIN_PASSWORD_MTIME
        values = argocd_values(
            args.hostname, admin_password_hash, rotated_at, self.webhook_secret, self._unused_webhook_secrets(name)
        )
        return chart(
            f"{name}-release",
            self,
            release="argocd",
            chart="argo-cd",
            version=versions.ARGO_CD_CHART,
            namespace=ns.metadata.name,
            values=with_pinned_images(values),
            provider=args.provider,
            # The release turns sync impersonation on: the deployers and their rights exist first, so
            # no sync is made as a ServiceAccount that does not exist yet (they take seconds).
            depends_on=self.deployers.resources,
        )

    def _repository_secrets(self, name: str, args: ArgoCdArgs, ns: k8s.core.v1.Namespace) -> None:
        """One Secret per repository Argo CD reads over SSH. They need only the namespace, not the
        release: Argo CD picks them up by label whenever it starts."""
        for repo in args.repositories:
            k8s.core.v1.Secret(
                f"{name}-repo-{repo.name}",
                metadata={
                    "name": f"repo-{repo.name}",
                    "namespace": ns.metadata.name,
                    "labels": {"argocd.argoproj.io/secret-type": "repository", **PLATFORM_LABELS},
                },
                type="Opaque",
                string_data={
                    "type": "git",
                    "name": repo.name,
                    "url": repo.url,
                    "sshPrivateKey": pulumi.Output.secret(repo.private_key),
                },
                opts=pulumi.ResourceOptions(parent=self, provider=args.provider),
            )

    def _root(self, name: str, args: ArgoCdArgs) -> k8s.apiextensions.CustomResource:
        """The projects and the root Application: only these need Argo CD's CRDs, so only these
        wait for the release."""
        # A project names its deployers: they and their rights exist before it does, so no sync
        # is ever made as a ServiceAccount that cannot apply it.
        after_crds = pulumi.ResourceOptions(
            parent=self, provider=args.provider, depends_on=[self.release, *self.deployers.resources]
        )
        projects = [
            app_project(f"{name}-project-{project['metadata']['name']}", project, after_crds)
            for project in app_projects(
                args.root.repository_url,
                args.owner,
                args.platform_namespaces,
                args.app_repository_urls,
                [app.name for app in args.app_namespaces],
            )
        ]
        root = root_application(args.root)
        return k8s.apiextensions.CustomResource(
            f"{name}-root-application",
            api_version="argoproj.io/v1alpha1",
            kind="Application",
            metadata=root["metadata"],
            spec=root["spec"],
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[self.release, *projects]),
        )

    def _egress_policy(self, name: str, args: ArgoCdArgs, ns: k8s.core.v1.Namespace) -> None:
        """DNS, the API server (the controller applies every application), its own pods (server,
        repo-server, Redis), and GitHub over SSH and HTTPS (the repositories; Helm charts and OCI
        registries an application's chart depends on are HTTPS too) on the public internet only."""
        egress_policy(
            f"{name}-egress-policy",
            self,
            ns.metadata.name,
            [DNS_EGRESS, *API_SERVER_EGRESS, {"to": [{"podSelector": {}}]}, public_internet(22, 443)],
            provider=args.provider,
        )

    def _unused_webhook_secrets(self, name: str) -> dict[str, Any]:
        """Random secrets for the webhook providers this platform does not use: Argo CD checks a
        provider's signature only when its secret is set, and would otherwise take any unsigned
        GitLab, Bitbucket, Gogs or Azure DevOps event from anyone."""
        child = pulumi.ResourceOptions(parent=self)
        secrets = {
            key: pulumi.Output.secret(
                random.RandomPassword(f"{name}-{label}-webhook-secret", length=40, special=False, opts=child).result
            )
            for key, label in UNUSED_WEBHOOK_SECRETS.items()
        }
        uuid = random.RandomUuid(f"{name}-bitbucket-webhook-uuid", opts=child)
        return {**secrets, "bitbucketUUID": pulumi.Output.secret(uuid.result), "azureDevops": self._azure_devops(name)}

    def _azure_devops(self, name: str) -> dict[str, pulumi.Output[str]]:
        """Azure DevOps signs nothing: Argo CD checks its events' basic-auth user and password, and
        only when both are set (the chart writes the two keys only then)."""
        child = pulumi.ResourceOptions(parent=self)
        parts = {
            part: random.RandomPassword(f"{name}-azure-devops-webhook-{part}", length=40, special=False, opts=child)
            for part in ("username", "password")
        }
        return {part: pulumi.Output.secret(secret.result) for part, secret in parts.items()}

    def _network_policies(self, name: str, args: ArgoCdArgs, ns: k8s.core.v1.Namespace) -> None:
        """Every pod of the namespace refuses what no policy admits, and the server admits the
        Gateway's NGINX alone. The chart cannot say so: its server policy admits everyone, and comes with
        its default deny (`global.networkPolicy`), so both are ours. They need only the namespace,
        and do not share a name with the chart's, which the release removes on the same run."""
        network_policy(
            f"{name}-default-deny",
            self,
            ns.metadata.name,
            "default-deny-ingress",
            {"podSelector": {}},
            provider=args.provider,
        )
        nginx = {
            "namespaceSelector": {"matchLabels": {NAMESPACE_NAME: args.gateway.namespace}},
            "podSelector": {"matchLabels": args.gateway.pod},
        }
        network_policy(
            f"{name}-server-network-policy",
            self,
            ns.metadata.name,
            "argocd-server-from-gateway",
            {
                "podSelector": {"matchLabels": SERVER_POD},
                "ingress": [{"from": [nginx], "ports": [{"protocol": "TCP", "port": SERVER_PORT}]}],
            },
            provider=args.provider,
        )

    def _route(self, name: str, args: ArgoCdArgs, ns: k8s.core.v1.Namespace) -> k8s.apiextensions.CustomResource:
        """The UI, API and `/api/webhook` at `hostname`: an HTTPRoute to argocd-server's plain HTTP
        (`server.insecure`; its gRPC-Web, which the UI and `argocd --grpc-web` speak, is HTTP too).
        Apart from the release, which waits for nothing but the cluster: the route waits for the
        Gateway, whose listener for the hostname admits routes from this namespace only."""
        return k8s.apiextensions.CustomResource(
            f"{name}-route",
            api_version="gateway.networking.k8s.io/v1",
            kind="HTTPRoute",
            metadata={"name": SERVER_SERVICE, "namespace": ns.metadata.name, "labels": PLATFORM_LABELS},
            spec={
                "parentRefs": [{"name": args.gateway.name, "namespace": args.gateway.namespace}],
                "hostnames": [args.hostname],
                "rules": [{"backendRefs": [{"name": SERVER_SERVICE, "port": SERVER_SERVICE_PORT}]}],
            },
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=[args.gateway.ready] if args.gateway.ready else None,
            ),
        )


# `configs.secret` keys of the argo-cd chart 10.1.1 (templates/argocd-configs/argocd-secret.yaml)
# for the webhook providers this platform does not use, and a resource-name label for each; and
# `azureDevops` (`username` and `password`), ArgoCd._azure_devops.
UNUSED_WEBHOOK_SECRETS = {"gitlabSecret": "gitlab", "bitbucketServerSecret": "bitbucket-server", "gogsSecret": "gogs"}


# A component's own policy from the chart (`<component>.networkPolicy.create`), now that
# `global.networkPolicy.create` is off.
OWN_NETWORK_POLICY = {"networkPolicy": {"create": True}}


# Fixed, so the chart does not render a new timestamp (and a diff) on every run; the
# `argocdAdminPasswordRotatedAt` setting replaces it when the password is rotated.
FIRST_ADMIN_PASSWORD_MTIME = "2026-01-01T00:00:00Z"  # noqa: S105 - a time, not a password


def argocd_values(
    hostname: str,
    admin_password_hash: pulumi.Input[str],
    admin_password_mtime: str,
    webhook_secret: pulumi.Input[str],
    unused_webhook_secrets: dict[str, Any],
) -> dict:
    """The chart's values: one replica of everything, no Dex, no notifications, no HA Redis."""
    return {
        # The chart's own NetworkPolicies for each component but the server (10.x: each admits
        # only its peers, and metrics); the server's and the default deny are ArgoCd._network_policies.
        "global": {"domain": hostname, "networkPolicy": {"create": False}},
        "configs": {
            "cm": {
                "exec.enabled": False,
                "admin.enabled": True,
                "statusbadge.enabled": False,
                # Every sync as the deployer its project names for the destination (components/deployers.py);
                # argo-cd 10.1.1 values.yaml `configs.cm`, Argo CD's app-sync-using-impersonation.md.
                "application.sync.impersonation.enabled": True,
            },
            # TLS ends at Cloudflare's edge and again at NGINX; argocd-server speaks plain HTTP behind it.
            "params": {"server.insecure": True},
            "secret": {
                "argocdServerAdminPassword": admin_password_hash,
                "argocdServerAdminPasswordMtime": admin_password_mtime,
                "githubSecret": webhook_secret,
                **unused_webhook_secrets,
            },
        },
        "dex": {"enabled": False},
        "notifications": {"enabled": False},
        "redis-ha": {"enabled": False},
        "controller": {
            "replicas": 1,
            "resources": CONTROLLER.resources(),
            # Its ClusterRole: list and watch, not `*` on `*` (components/deployers.py).
            "clusterRoleRules": {"enabled": True, "rules": deployers.CONTROLLER_CLUSTER_RULES},
            **OWN_NETWORK_POLICY,
        },
        "server": {
            "replicas": 1,
            "resources": SERVER.resources(),
            # The route is a resource of its own (ArgoCd._route), made once the Gateway exists.
            "ingress": {"enabled": False},
        },
        "repoServer": {
            "replicas": 1,
            "resources": REPO_SERVER.resources(),
            "copyutil": {"resources": SMALL_JOB.resources()},
            **OWN_NETWORK_POLICY,
        },
        "applicationSet": {"replicas": 1, "resources": APPLICATION_SET.resources(), **OWN_NETWORK_POLICY},
        "redis": {"resources": REDIS.resources(), **OWN_NETWORK_POLICY},
        "redisSecretInit": {"resources": SMALL_JOB.resources()},
    }


def with_pinned_images(values: dict) -> dict:
    """`values` with Argo CD's and its Redis's images by digest (components/versions.py): every
    Argo CD component takes `global.image`, the Redis `redis.image` (argo-helm 10.1.1 values.yaml)."""
    argocd_repository, argocd_tag = versions.repository_and_tag(versions.ARGO_CD_IMAGE)
    redis_repository, redis_tag = versions.repository_and_tag(versions.ARGO_CD_REDIS_IMAGE)
    pinned = dict(values)
    pinned["global"] = {**values.get("global", {}), "image": {"repository": argocd_repository, "tag": argocd_tag}}
    pinned["redis"] = {**values.get("redis", {}), "image": {"repository": redis_repository, "tag": redis_tag}}
    return pinned


def app_projects(
    root_repository_url: str,
    owner: str,
    platform_namespaces: Sequence[str],
    more_sources: Sequence[str] = (),
    app_namespaces: Sequence[str] = (),
) -> list[dict]:
    """`root` may only create Applications in argocd; `default`, which the applications name,
    may deploy anywhere but the platform's namespaces, from the owner's repositories (none without
    GitHub) and `more_sources`, and is applied in each of `app_namespaces` as that namespace's
    deployer: an Application whose destination is none of them has no identity, and Argo CD
    refuses to sync it ("failed to find a matching service account to impersonate")."""
    denied = [NAMESPACE, *(ns for ns in platform_namespaces if ns != NAMESPACE)]
    return [
        {
            "metadata": {"name": ROOT_PROJECT, "namespace": NAMESPACE, "labels": PLATFORM_LABELS},
            "spec": {
                "description": "The root Application: it may only create Applications in argocd.",
                "sourceRepos": [root_repository_url],
                "destinations": [{"server": IN_CLUSTER, "namespace": NAMESPACE}],
                "clusterResourceWhitelist": [],
                "namespaceResourceWhitelist": [{"group": "argoproj.io", "kind": "Application"}],
                "destinationServiceAccounts": [applied_as(NAMESPACE, deployers.ROOT_DEPLOYER)],
            },
        },
        {
            # Argo CD creates `default` with every permission; take it over and narrow it
            # (`app_project` patches it, forced, rather than creating it).
            "metadata": {
                "name": APPS_PROJECT,
                "namespace": NAMESPACE,
                "labels": PLATFORM_LABELS,
                "annotations": {"pulumi.com/patchForce": "true"},
            },
            "spec": {
                "description": "Applications found in Git. The platform's namespaces and objects are Pulumi's.",
                "sourceRepos": [
                    *([f"https://github.com/{owner}/*", f"git@github.com:{owner}/*"] if owner else []),
                    *more_sources,
                ],
                # A `!` entry refuses whatever the allow entries admit, in any order.
                "destinations": [
                    *({"server": IN_CLUSTER, "namespace": f"!{ns}"} for ns in denied),
                    {"server": IN_CLUSTER, "namespace": "*"},
                ],
                "clusterResourceWhitelist": [{"group": g, "kind": k} for g, k in APP_CLUSTER_KINDS],
                "clusterResourceBlacklist": [
                    *({"group": "", "kind": "Namespace", "name": ns} for ns in denied),
                    *({"group": g, "kind": k, "name": n} for g, k, n in PLATFORM_CLUSTER_OBJECTS),
                ],
                "namespaceResourceBlacklist": [{"group": g, "kind": k} for g, k in APP_NAMESPACED_DENIED_KINDS],
                # Each application namespace as its own deployer, by exact name (Argo CD takes the
                # first entry whose glob matches the Application's destination namespace).
                "destinationServiceAccounts": [applied_as(ns, deployers.app_deployer(ns)) for ns in app_namespaces],
            },
        },
    ]


def applied_as(destination_namespace: str, deployer: str) -> dict:
    """A `destinationServiceAccounts` entry: what reaches `destination_namespace` (a glob) is applied
    as `deployer` (argo-cd 10.1.1 crd-appproject.yaml: `server`, `namespace`, `defaultServiceAccount`)."""
    return {
        "server": IN_CLUSTER,
        "namespace": destination_namespace,
        "defaultServiceAccount": deployers.project_service_account(deployer),
    }


def app_project(resource_name: str, project: dict, opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
    """An AppProject the program creates, or, for `default`, the one argocd-server made: Argo CD
    creates `default` when its server starts (argo-cd v3.4.4 `server/server.go`,
    `initializeDefaultProject`, before the server listens), so it exists once the atomic release is
    ready, and a plain create would fail with AlreadyExists. A server-side-apply patch, forced
    (`pulumi.com/patchForce`), takes over the fields argocd-server set and narrows them; see
    docs/decisions/0002-default-project.md."""
    taken_over = project["metadata"]["name"] == APPS_PROJECT
    resource = k8s.apiextensions.CustomResourcePatch if taken_over else k8s.apiextensions.CustomResource
    return resource(
        resource_name,
        api_version="argoproj.io/v1alpha1",
        kind="AppProject",
        metadata=project["metadata"],
        spec=project["spec"],
        opts=opts,
    )


def root_application(root: RootSource) -> dict:
    return {
        "metadata": {"name": "root", "namespace": NAMESPACE, "labels": PLATFORM_LABELS},
        "spec": {
            "project": ROOT_PROJECT,
            "source": {"repoURL": root.repository_url, "targetRevision": root.revision, "path": root.path},
            "destination": {"server": IN_CLUSTER, "namespace": NAMESPACE},
            "syncPolicy": {
                "automated": {"prune": True, "selfHeal": True},
                "syncOptions": ["ApplyOutOfSyncOnly=true"],
            },
        },
    }
