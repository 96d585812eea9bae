"""Argo CD: the GitOps operator, trimmed for one Pi, with its root Application (app of apps).

Pulumi owns Argo CD itself, its repository credentials and the root Application;
Argo CD owns the applications the root finds in Git. So that the two never manage the
same object, the root Application's project may create nothing but Applications, the
`apps` project may not deploy into the platform's namespaces or create cluster-scoped
objects, and the `default` project is emptied so no Application can slip around both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import versions
from components.kube import PLATFORM_LABELS, Size, chart, namespace, with_provider

NAMESPACE = "argocd"
IN_CLUSTER = "https://kubernetes.default.svc"
ROOT_PROJECT = "root"
APPS_PROJECT = "apps"

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


@dataclass
class ArgoCdArgs:
    provider: k8s.Provider
    hostname: str
    """Where the UI, API and GitHub webhook are served, e.g. argocd.spitikos.dev."""
    root_repository_url: str
    """The central repository whose `root_path` holds the Application manifests."""
    repositories: Sequence[RepositoryCredential] = field(default_factory=list)
    platform_namespaces: Sequence[str] = field(default_factory=list)
    """Namespaces Pulumi manages; applications may never deploy into them."""
    ingress_class: str = "nginx"
    root_path: str = "argocd/apps"
    root_revision: str = "main"


class ArgoCd(pulumi.ComponentResource):
    admin_password: pulumi.Output[str]
    """The `admin` user's password. Secret."""
    webhook_secret: pulumi.Output[str]
    """The shared secret GitHub signs webhook deliveries to `/api/webhook` with. Secret."""
    url: str
    release: k8s.helm.v3.Release
    root_application: k8s.apiextensions.CustomResource

    def __init__(self, name: str, args: ArgoCdArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spitikos:gitops:ArgoCd", name, None, with_provider(opts, args.provider))
        child = pulumi.ResourceOptions(parent=self)
        ns = namespace(f"{name}-namespace", NAMESPACE, self)

        admin = random.RandomPassword(f"{name}-admin-password", length=24, special=False, opts=child)
        self.admin_password = pulumi.Output.secret(admin.result)
        webhook = random.RandomPassword(f"{name}-webhook-secret", length=40, special=False, opts=child)
        self.webhook_secret = pulumi.Output.secret(webhook.result)

        self.release = chart(
            f"{name}-release",
            self,
            release="argocd",
            chart="argo-cd",
            version=versions.ARGO_CD_CHART,
            repo=versions.ARGO_CD_REPO,
            namespace=ns.metadata.name,
            values=argocd_values(
                args.hostname, args.ingress_class, pulumi.Output.secret(admin.bcrypt_hash), self.webhook_secret
            ),
        )

        # Repository Secrets need only the namespace, not the release: Argo CD picks them up
        # by label whenever it starts.
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
                opts=child,
            )

        # Only these need Argo CD's CRDs, so only these wait for the release.
        after_crds = pulumi.ResourceOptions(parent=self, depends_on=[self.release])
        projects = [
            k8s.apiextensions.CustomResource(
                f"{name}-project-{project['metadata']['name']}",
                api_version="argoproj.io/v1alpha1",
                kind="AppProject",
                metadata=project["metadata"],
                spec=project["spec"],
                opts=after_crds,
            )
            for project in app_projects(args.root_repository_url, args.platform_namespaces)
        ]
        root = root_application(args.root_repository_url, args.root_path, args.root_revision)
        self.root_application = k8s.apiextensions.CustomResource(
            f"{name}-root-application",
            api_version="argoproj.io/v1alpha1",
            kind="Application",
            metadata=root["metadata"],
            spec=root["spec"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release, *projects]),
        )
        self.url = f"https://{args.hostname}"
        self.register_outputs(
            {"url": self.url, "admin_password": self.admin_password, "webhook_secret": self.webhook_secret}
        )


def argocd_values(
    hostname: str, ingress_class: str, admin_password_hash: pulumi.Input[str], webhook_secret: pulumi.Input[str]
) -> dict:
    """The chart's values: one replica of everything, no Dex, no notifications, no HA Redis."""
    return {
        "global": {"domain": hostname},
        "configs": {
            "cm": {"exec.enabled": False, "admin.enabled": True, "statusbadge.enabled": False},
            # TLS ends at Cloudflare's edge and again at NGINX; argocd-server speaks plain HTTP behind it.
            "params": {"server.insecure": True},
            "secret": {
                "argocdServerAdminPassword": admin_password_hash,
                # Fixed, so the chart does not render a new timestamp (and a diff) on every run.
                "argocdServerAdminPasswordMtime": "2026-01-01T00:00:00Z",
                "githubSecret": webhook_secret,
            },
        },
        "dex": {"enabled": False},
        "notifications": {"enabled": False},
        "redis-ha": {"enabled": False},
        "controller": {"replicas": 1, "resources": CONTROLLER.resources()},
        "server": {
            "replicas": 1,
            "resources": SERVER.resources(),
            "ingress": {
                "enabled": True,
                "ingressClassName": ingress_class,
                "annotations": {"nginx.ingress.kubernetes.io/backend-protocol": "HTTP"},
            },
        },
        "repoServer": {
            "replicas": 1,
            "resources": REPO_SERVER.resources(),
            "copyutil": {"resources": SMALL_JOB.resources()},
        },
        "applicationSet": {"replicas": 1, "resources": APPLICATION_SET.resources()},
        "redis": {"resources": REDIS.resources()},
        "redisSecretInit": {"resources": SMALL_JOB.resources()},
    }


def app_projects(root_repository_url: str, platform_namespaces: Sequence[str]) -> list[dict]:
    """`root` may only create Applications; `apps` may not touch the platform; `default` may do nothing."""
    return [
        {
            "metadata": {"name": ROOT_PROJECT, "namespace": NAMESPACE, "labels": PLATFORM_LABELS},
            "spec": {
                "description": "The root Application: it may only create Applications in argocd.",
                "sourceRepos": [root_repository_url],
                "destinations": [{"server": IN_CLUSTER, "namespace": NAMESPACE}],
                "clusterResourceWhitelist": [],
                "namespaceResourceWhitelist": [{"group": "argoproj.io", "kind": "Application"}],
            },
        },
        {
            "metadata": {"name": APPS_PROJECT, "namespace": NAMESPACE, "labels": PLATFORM_LABELS},
            "spec": {
                "description": "Applications found in Git. The platform's namespaces are Pulumi's.",
                "sourceRepos": ["*"],
                "destinations": [
                    *({"server": IN_CLUSTER, "namespace": f"!{ns}"} for ns in [NAMESPACE, *platform_namespaces]),
                    {"server": IN_CLUSTER, "namespace": "*"},
                ],
                "clusterResourceWhitelist": [],
            },
        },
        {
            # Argo CD creates `default` with every permission; take it over and empty it.
            "metadata": {
                "name": "default",
                "namespace": NAMESPACE,
                "labels": PLATFORM_LABELS,
                "annotations": {"pulumi.com/patchForce": "true"},
            },
            "spec": {"sourceRepos": [], "destinations": [], "clusterResourceWhitelist": []},
        },
    ]


def root_application(repository_url: str, path: str, revision: str) -> dict:
    return {
        "metadata": {"name": "root", "namespace": NAMESPACE, "labels": PLATFORM_LABELS},
        "spec": {
            "project": ROOT_PROJECT,
            "source": {"repoURL": repository_url, "targetRevision": revision, "path": path},
            "destination": {"server": IN_CLUSTER, "namespace": NAMESPACE},
            "syncPolicy": {
                "automated": {"prune": True, "selfHeal": True},
                "syncOptions": ["ApplyOutOfSyncOnly=true"],
            },
        },
    }
