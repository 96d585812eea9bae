"""The identities Argo CD applies Git's content as (sync impersonation), and what each may do.

Argo CD's application controller keeps the rights its control plane needs: it lists and watches
everything (its cache), and may impersonate the deployers below, by name. Every sync, prune and
cascaded delete is made as a deployer (`application.sync.impersonation.enabled`): Argo CD picks
one identity per Application, from its project's `destinationServiceAccounts` and the
Application's destination namespace (argo-cd v3.4.4 controller/sync.go
deriveServiceAccountToImpersonate: first entry whose server and namespace globs match), and makes
every request of that sync as it, the cluster-scoped objects' and those naming another namespace
included. So Kubernetes' own RBAC judges what Git asks for, per application namespace:
- the root's deployer (`argocd-root-deployer`) manages Applications in `argocd`, nothing else;
- each application namespace (the `appNamespaces` setting) has a deployer of its own,
  `argocd-deploys-<namespace>`, whose namespaced rights (`argocd-apps-deployer`, what the
  organization's charts install) are bound by a RoleBinding in that namespace alone: an object
  its chart names in another application's namespace is forbidden, and a role or binding it makes
  can grant nothing beyond its namespace (RBAC's escalation check: a ClusterRole is created only
  by one who holds its rules in every namespace);
- a namespace listed `=cluster` adds the cluster-scoped objects its charts install (CRDs,
  ClusterRoles and bindings, admission webhooks) and what their ClusterRoles read
  (`argocd-apps-deployer-cluster`), and `bind` on the admin roles the `allowedAdminBindings`
  setting pairs with a binding; `=operator` adds, in every namespace, what its charts' operators
  hold there (`argocd-apps-deployer-operator`: kube-prometheus-stack's operator writes Secrets,
  ConfigMaps and StatefulSets wherever a Prometheus is declared, so its ClusterRole, which RBAC
  lets a deployer create only when it holds all of it, carries that).
Pulumi makes each application namespace before Argo CD does (a NamespacePatch: it creates a
missing one, takes over nothing of a live one, and never deletes one), so the RoleBinding exists
before the first sync. None holds `escalate`, `impersonate`, unrestricted `bind`,
`serviceaccounts/token`, `nodes/proxy`, `pods/exec`, `pods/attach`, `pods/portforward` or any
right on the cluster's admission policies, and none may create a namespace.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.kube import PLATFORM_LABELS

RBAC = "rbac.authorization.k8s.io"
NAMESPACE = "argocd"  # Argo CD's, where the deployers live (components/argocd.py NAMESPACE)
ROOT_DEPLOYER = "argocd-root-deployer"
# Each application namespace's deployer is `<APPS_DEPLOYER_PREFIX><namespace>` (app_deployer); the
# ClusterRoles below are what their bindings grant, by reach.
APPS_DEPLOYER_PREFIX = "argocd-deploys-"
APPS_DEPLOYER = "argocd-apps-deployer"
APPS_DEPLOYER_CLUSTER = f"{APPS_DEPLOYER}-cluster"
APPS_DEPLOYER_OPERATOR = f"{APPS_DEPLOYER}-operator"
APPS_DEPLOYER_BINDS = f"{APPS_DEPLOYER}-binds"
# New names, not the old Role's and ClusterRoleBindings' (which named one `argocd-apps-deployer`
# for every namespace): a `pulumi up` deletes what the program dropped only once everything else is
# done, so the old identity keeps its rights until the projects name the new ones
# (docs/migration/README.md, "A deployer per application namespace").
IMPERSONATOR = "argocd-impersonates-each-deployer"
# The RoleBinding, in each application namespace, of `argocd-apps-deployer` to its deployer.
APPS_DEPLOYER_BINDING = "argocd-deploys"
# The annotation on an application namespace that names whom Argo CD applies it as.
APPLIED_AS = "spitikos.dev/applied-as"
REACH_CLUSTER = "cluster"
REACH_OPERATOR = "operator"
# The chart's `controller.serviceAccount.name` (argo-cd 10.1.1).
CONTROLLER_SERVICE_ACCOUNT = "argocd-application-controller"

WRITE = ["get", "list", "watch", "create", "update", "patch", "delete"]
READ = ["get", "list", "watch"]


def username(service_account: str, namespace: str = NAMESPACE) -> str:
    """The user Kubernetes sees when Argo CD impersonates `service_account`."""
    return f"system:serviceaccount:{namespace}:{service_account}"


def app_deployer(namespace: str) -> str:
    """The ServiceAccount (in `argocd`) that applications deploying to `namespace` are applied as."""
    return f"{APPS_DEPLOYER_PREFIX}{namespace}"


def project_service_account(service_account: str, namespace: str = NAMESPACE) -> str:
    """`destinationServiceAccounts[].defaultServiceAccount`: `<namespace>:<name>`, the deployer's
    own namespace, not the destination's (argo-cd v3.4.4 controller/sync.go,
    deriveServiceAccountToImpersonate)."""
    return f"{namespace}:{service_account}"


def rule(groups: Sequence[str], resources: Sequence[str], verbs: Sequence[str], names: Sequence[str] = ()) -> dict:
    return {
        "apiGroups": list(groups),
        "resources": list(resources),
        "verbs": list(verbs),
        **({"resourceNames": list(names)} if names else {}),
    }


# The root chart (spitikos/charts charts/argocd, the seed's argocd/apps): Applications only. Argo CD
# creates, updates and prunes them, and deletes them through their finalizers.
ROOT_RULES = [rule(["argoproj.io"], ["applications"], WRITE)]

DASHBOARD_SCRAPER_PROXY = ["kubernetes-dashboard-metrics-scraper", "http:kubernetes-dashboard-metrics-scraper"]

# What the organization's charts install in their namespaces: the ClusterRole each application
# namespace's RoleBinding grants its deployer there, and there alone (charts at 7b7f06e with the patch of
# docs/migration: _common's Deployment, Service, Ingress, ConfigMap, ServiceAccount, ScaledObject;
# vault 0.30.1; kubernetes-dashboard 7.13.0 with kong 2.46.0; kube-prometheus-stack 75.18.1 with
# grafana, kube-state-metrics, prometheus-node-exporter, and its webhook's patch Jobs), the routes
# NGINX Gateway Fabric serves (gateway.networking.k8s.io), and `*` where a chart's ClusterRole
# grants `*` (the prometheus operator's: configmaps, secrets, statefulsets and its own kinds), since
# RBAC lets the deployer create that ClusterRole only if it holds `*` there itself. `*` verbs are
# never on serviceaccounts (they would include `impersonate`), and no subresource is granted but
# `pods/log` (read) and `services/finalizers` (the operator's): no `pods/exec`, `pods/attach`,
# `pods/portforward`, `pods/ephemeralcontainers`, `serviceaccounts/token`, `services/proxy`.
APPS_NAMESPACED_RULES = [
    rule([""], ["configmaps", "secrets"], ["*"]),
    rule(
        [""],
        ["services", "services/finalizers", "endpoints", "serviceaccounts", "persistentvolumeclaims", "pods"],
        WRITE,
    ),
    rule([""], ["pods/log"], ["get"]),
    # kubernetes-dashboard 7.13.0's API Role reads its metrics scraper through the service proxy,
    # by name: the deployer holds that, and no other proxy.
    rule([""], ["services/proxy"], ["get"], DASHBOARD_SCRAPER_PROXY),
    rule([""], ["events"], [*READ, "create", "patch"]),
    rule([""], ["limitranges", "resourcequotas", "replicationcontrollers"], ["list", "watch"]),
    rule(["events.k8s.io"], ["events"], [*READ, "create", "patch"]),
    rule(["apps"], ["statefulsets"], ["*"]),
    # kube-state-metrics' ClusterRole still names the retired `extensions` group (list, watch).
    rule(["extensions"], ["daemonsets", "deployments", "replicasets", "ingresses"], ["list", "watch"]),
    rule(["apps"], ["deployments", "daemonsets", "replicasets"], WRITE),
    rule(["batch"], ["jobs", "cronjobs"], WRITE),
    rule(["autoscaling"], ["horizontalpodautoscalers"], WRITE),
    rule(["policy"], ["poddisruptionbudgets"], WRITE),
    # Ingresses read only (the charts' ClusterRoles read them): no Ingress controller runs, the edge
    # is the Gateway, and no chart makes an Ingress after docs/migration/charts-7b7f06e.gateway.patch.
    rule(["networking.k8s.io"], ["networkpolicies"], WRITE),
    rule(["networking.k8s.io"], ["ingresses"], READ),
    rule(["discovery.k8s.io"], ["endpointslices"], WRITE),
    rule(["coordination.k8s.io"], ["leases"], WRITE),
    rule([RBAC], ["roles", "rolebindings"], WRITE),
    rule(["monitoring.coreos.com"], ["*"], ["*"]),
    # No `triggerauthentications`: no chart makes one, and one that names a HashiCorp Vault without
    # a credential makes KEDA's operator send its own token (Secrets listed and Jobs created in every
    # namespace) to the address it gives (keda v2.20.2 pkg/scaling/resolver/hashicorpvault_handler.go:
    # the default credential is the operator's token file; attack 93).
    rule(["keda.sh"], ["scaledobjects", "scaledjobs"], WRITE),
    # KEDA's HTTP add-on: the api's and the homepage's routes through its interceptor
    # (docs/migration/charts-7b7f06e.scale-to-zero.patch). Not `httpscaledobjects`: the platform
    # runs no add-on operator, which alone acts on them (docs/decisions/0007).
    rule(["http.keda.sh"], ["interceptorroutes"], WRITE),
    rule(["gateway.networking.k8s.io"], ["httproutes", "grpcroutes", "backendtlspolicies"], WRITE),
    # Its own Namespace object: Argo CD's `CreateNamespace=true` reads it, and an Application's
    # `managedNamespaceMetadata` patches its labels (argo-cd v3.4.4 gitops-engine sync_context.go
    # autoCreateNamespace; controller/sync_namespace.go). A request for `namespaces/<n>` carries the
    # namespace `<n>` (k8s.io/apiserver requestinfo.go), so a RoleBinding in `<n>` grants it on that
    # one namespace; never `delete`, and `create` (a request without a namespace) not at all.
    rule([""], ["namespaces"], ["get", "patch"]),
]

# Reach `cluster`: what the charts create cluster-wide (CRDs, ClusterRoles and their bindings,
# admission webhooks: kube-prometheus-stack's, vault's injector, kong's CRDs) and what the charts'
# ClusterRoles read of cluster-scoped kinds (the operator's and Prometheus' nodes, nodes/metrics
# and /metrics; kube-state-metrics' namespaces, nodes, volumes; the dashboard scraper's
# metrics.k8s.io). Namespaces are read, never made: Pulumi makes the application namespaces. No
# write on nodes, persistent volumes, storage classes, CSRs or admission policies.
APPS_CLUSTER_RULES = [
    rule([""], ["namespaces"], READ),
    rule(["apiextensions.k8s.io"], ["customresourcedefinitions"], WRITE),
    rule([RBAC], ["clusterroles", "clusterrolebindings"], WRITE),
    rule(["admissionregistration.k8s.io"], ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"], WRITE),
    rule([""], ["nodes", "nodes/metrics", "persistentvolumes"], READ),
    rule(["storage.k8s.io"], ["storageclasses", "volumeattachments"], READ),
    rule(["networking.k8s.io"], ["ingressclasses"], READ),
    rule(["certificates.k8s.io"], ["certificatesigningrequests"], ["list", "watch"]),
    rule(["metrics.k8s.io"], ["pods", "nodes"], READ),
    {"nonResourceURLs": ["/metrics", "/metrics/cadvisor"], "verbs": ["get"]},
]

# Reach `operator`: in every namespace, what the charts' operators and collectors hold there, so that
# their ClusterRoles can be created (tests/test_deployers.py REAL_CLUSTER_ROLES): kube-prometheus-
# stack 75.18.1's operator (its kinds, StatefulSets, ConfigMaps and Secrets with `*`; Services,
# Endpoints and EndpointSlices; Pods listed and deleted; Events), Prometheus' and Grafana's reads,
# and kube-state-metrics' list and watch of every kind it reports. No create of Pods, Deployments,
# Jobs or roles anywhere but the deployer's own namespace.
APPS_OPERATOR_RULES = [
    rule([""], ["configmaps", "secrets"], ["*"]),
    rule(["apps"], ["statefulsets"], ["*"]),
    rule(["monitoring.coreos.com"], ["*"], ["*"]),
    rule([""], ["pods"], [*READ, "delete"]),
    rule([""], ["services", "services/finalizers", "endpoints"], WRITE),
    rule(["discovery.k8s.io"], ["endpointslices"], WRITE),
    rule(["", "events.k8s.io"], ["events"], [*READ, "create", "patch"]),
    rule(["networking.k8s.io"], ["ingresses"], READ),
    rule(
        [""],
        ["limitranges", "persistentvolumeclaims", "replicationcontrollers", "resourcequotas"],
        ["list", "watch"],
    ),
    rule(["apps", "extensions"], ["daemonsets", "deployments", "replicasets"], ["list", "watch"]),
    rule(["extensions"], ["ingresses"], ["list", "watch"]),
    rule(["batch"], ["cronjobs", "jobs"], ["list", "watch"]),
    rule(["autoscaling"], ["horizontalpodautoscalers"], ["list", "watch"]),
    rule(["networking.k8s.io"], ["networkpolicies"], ["list", "watch"]),
    rule(["policy"], ["poddisruptionbudgets"], ["list", "watch"]),
    rule(["coordination.k8s.io"], ["leases"], ["list", "watch"]),
]

# The controller's own ClusterRole (the chart's `controller.clusterRoleRules`, argo-cd 10.1.1
# values.yaml; `*` on `*` otherwise): its cache lists and watches every kind. No `get`: on `*` it
# would include `nodes/proxy` (the kubelet's API, exec included) and `pods/exec`. Its writes in
# `argocd` are the chart's Role; everything it applies, it applies as a deployer.
CONTROLLER_CLUSTER_RULES = [rule(["*"], ["*"], ["list", "watch"])]


def binds_rules(admin_bindings: Sequence[tuple[str, str]]) -> list[dict]:
    """`bind` on each ClusterRole the setting pairs with a binding, by name, and on nothing else."""
    roles = sorted({role for _, role in admin_bindings})
    return [rule([RBAC], ["clusterroles"], ["bind"], roles)] if roles else []


def impersonator_rules(app_deployers: Sequence[str]) -> list[dict]:
    """`impersonate` on the deployers, by name, in their namespace: Kubernetes checks it on the
    ServiceAccount the impersonation names (and adds its groups without a check of its own)."""
    return [rule([""], ["serviceaccounts"], ["impersonate"], [ROOT_DEPLOYER, *app_deployers])]


@dataclass(frozen=True)
class AppNamespace:
    """An application namespace (`appNamespaces`): its name, how far its deployer reaches (``,
    `cluster`, `operator`), and the Namespace resource when the program makes it itself (`api`)."""

    name: str
    reach: str = ""
    made: pulumi.Resource | None = None


class Deployers:
    """The deployers' ServiceAccounts, roles and bindings, the application namespaces they are bound
    in, and the controller's right to impersonate them; `resources` is what a project naming them
    must wait for."""

    resources: list[pulumi.Resource]

    def __init__(
        self,
        name: str,
        parent: pulumi.Resource,
        provider: k8s.Provider,
        namespace: k8s.core.v1.Namespace,
        admin_bindings: Sequence[tuple[str, str]],
        app_namespaces: Sequence[AppNamespace] = (),
    ) -> None:
        # The namespaced ones wait for their namespace; the cluster-wide ones need nothing but the cluster.
        self._opts = pulumi.ResourceOptions(parent=parent, provider=provider)
        self._in_namespace = pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=[namespace])
        self._name = name
        self.resources = []
        for account in (ROOT_DEPLOYER, *(app_deployer(app.name) for app in app_namespaces)):
            self.resources.append(
                k8s.core.v1.ServiceAccount(
                    f"{name}-{account}",
                    metadata=self._meta(account, NAMESPACE),
                    # The deployers are impersonated, never mounted: no pod needs their token.
                    automount_service_account_token=False,
                    opts=self._in_namespace,
                )
            )
        self._role(ROOT_DEPLOYER, ROOT_RULES, ROOT_DEPLOYER)
        self._app_namespaces(app_namespaces)
        reaching = [app_deployer(a.name) for a in app_namespaces if a.reach in (REACH_CLUSTER, REACH_OPERATOR)]
        self._cluster_role(APPS_DEPLOYER_CLUSTER, APPS_CLUSTER_RULES, reaching, f"{APPS_DEPLOYER_BINDING}-cluster")
        operators = [app_deployer(a.name) for a in app_namespaces if a.reach == REACH_OPERATOR]
        self._cluster_role(APPS_DEPLOYER_OPERATOR, APPS_OPERATOR_RULES, operators, f"{APPS_DEPLOYER_BINDING}-operator")
        if admin_bindings:
            self._cluster_role(
                APPS_DEPLOYER_BINDS, binds_rules(admin_bindings), reaching, f"{APPS_DEPLOYER_BINDING}-binds"
            )
        self._role(
            IMPERSONATOR, impersonator_rules([app_deployer(a.name) for a in app_namespaces]), CONTROLLER_SERVICE_ACCOUNT
        )

    @staticmethod
    def _meta(object_name: str, namespace: str | None = None) -> dict:
        return {"name": object_name, **({"namespace": namespace} if namespace else {}), "labels": PLATFORM_LABELS}

    @staticmethod
    def _subjects(*accounts: str) -> list[dict]:
        return [{"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE} for account in accounts]

    def _role(self, role_name: str, rules: list[dict], account: str) -> None:
        """A Role in `argocd` and its RoleBinding to `account`. The binding names the role by name,
        not by its output: RBAC binds a role that does not exist yet, and the two are made at once."""
        role = k8s.rbac.v1.Role(
            f"{self._name}-{role_name}-role",
            metadata=self._meta(role_name, NAMESPACE),
            rules=rules,
            opts=self._in_namespace,
        )
        self.resources.append(role)
        self.resources.append(
            k8s.rbac.v1.RoleBinding(
                f"{self._name}-{role_name}-role-binding",
                metadata=self._meta(role_name, NAMESPACE),
                role_ref={"apiGroup": RBAC, "kind": "Role", "name": role_name},
                subjects=self._subjects(account),
                opts=self._in_namespace,
            )
        )

    def _cluster_role(self, role_name: str, rules: list[dict], accounts: Sequence[str], binding: str) -> None:
        """A ClusterRole and the ClusterRoleBinding `binding` of it to `accounts`; neither without one."""
        if not accounts:
            return
        role = k8s.rbac.v1.ClusterRole(
            f"{self._name}-{role_name}-cluster-role", metadata=self._meta(role_name), rules=rules, opts=self._opts
        )
        self.resources.append(role)
        self.resources.append(
            k8s.rbac.v1.ClusterRoleBinding(
                f"{self._name}-{binding}-cluster-role-binding",
                metadata=self._meta(binding),
                role_ref={"apiGroup": RBAC, "kind": "ClusterRole", "name": role_name},
                subjects=self._subjects(*accounts),
                opts=self._opts,
            )
        )

    def _app_namespaces(self, app_namespaces: Sequence[AppNamespace]) -> None:
        """`argocd-apps-deployer`'s rules, and in each application namespace a RoleBinding of them
        to that namespace's deployer alone. The namespace exists first: the program's own (`api`),
        or a NamespacePatch, which creates it when missing and otherwise only adds its annotation
        (server-side apply), and whose deletion leaves the namespace and its data where they are."""
        if not app_namespaces:
            return
        self.resources.append(
            k8s.rbac.v1.ClusterRole(
                f"{self._name}-{APPS_DEPLOYER}-cluster-role",
                metadata=self._meta(APPS_DEPLOYER),
                rules=APPS_NAMESPACED_RULES,
                opts=self._opts,
            )
        )
        for app in app_namespaces:
            account = app_deployer(app.name)
            ns = app.made or k8s.core.v1.NamespacePatch(
                f"{self._name}-{app.name}-namespace",
                metadata={"name": app.name, "annotations": {APPLIED_AS: username(account)}},
                opts=self._opts,
            )
            self.resources.append(ns)
            self.resources.append(
                k8s.rbac.v1.RoleBinding(
                    f"{self._name}-{account}-role-binding",
                    metadata=self._meta(APPS_DEPLOYER_BINDING, app.name),
                    role_ref={"apiGroup": RBAC, "kind": "ClusterRole", "name": APPS_DEPLOYER},
                    subjects=self._subjects(account),
                    opts=pulumi.ResourceOptions.merge(self._opts, pulumi.ResourceOptions(depends_on=[ns])),
                )
            )
