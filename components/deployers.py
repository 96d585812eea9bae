"""The identities Argo CD applies Git's content as (sync impersonation), and what each may do.

Argo CD's application controller keeps the rights its control plane needs: it lists and watches
everything (its cache), and may impersonate the deployers below, by name. Every sync, prune and
cascaded delete is made as a deployer (`application.sync.impersonation.enabled`; each project's
`destinationServiceAccounts` names the deployer of each destination), so Kubernetes' own RBAC
judges what Git asks for, and its escalation check stops a Role or binding that grants more than
the deployer holds, whatever its kind or name:
- the root's deployer (`argocd-root-deployer`) manages Applications in `argocd`, nothing else;
- the applications' deployer (`argocd-apps-deployer`) manages the namespaced kinds the
  organization's charts install, and the cluster-scoped ones they need (CRDs, ClusterRoles and
  bindings, admission webhooks, the namespaces `CreateNamespace=true` makes), reads what their
  controllers' ClusterRoles read (a ClusterRole is created only by one who holds its rules), and
  may `bind` only the admin roles the `allowedAdminBindings` setting pairs with a binding.
None holds `escalate`, `impersonate`, unrestricted `bind`, `serviceaccounts/token`, `nodes/proxy`,
`pods/exec`, `pods/attach`, `pods/portforward` or any right on the cluster's admission policies.
The deployers' namespaced rights hold in every namespace (the applications' namespaces are made
by Argo CD as they come): in the platform's namespaces the projects' destinations and an admission
policy (components/guard.py) refuse them.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.kube import PLATFORM_LABELS

RBAC = "rbac.authorization.k8s.io"
NAMESPACE = "argocd"  # Argo CD's, where the deployers live (components/argocd.py NAMESPACE)
ROOT_DEPLOYER = "argocd-root-deployer"
APPS_DEPLOYER = "argocd-apps-deployer"
APPS_DEPLOYER_CLUSTER = f"{APPS_DEPLOYER}-cluster"
APPS_DEPLOYER_BINDS = f"{APPS_DEPLOYER}-binds"
IMPERSONATOR = "argocd-impersonates-deployers"
# The chart's `controller.serviceAccount.name` (argo-cd 10.1.1).
CONTROLLER_SERVICE_ACCOUNT = "argocd-application-controller"

WRITE = ["get", "list", "watch", "create", "update", "patch", "delete"]
READ = ["get", "list", "watch"]


def username(service_account: str, namespace: str = NAMESPACE) -> str:
    """The user Kubernetes sees when Argo CD impersonates `service_account`."""
    return f"system:serviceaccount:{namespace}:{service_account}"


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

# What the organization's charts install in their namespaces (charts at 7b7f06e with the patch of
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
    rule(["keda.sh"], ["scaledobjects", "scaledjobs", "triggerauthentications"], WRITE),
    # KEDA's HTTP add-on: the api's and the homepage's routes through its interceptor
    # (docs/migration/charts-7b7f06e.scale-to-zero.patch). Not `httpscaledobjects`: the platform
    # runs no add-on operator, which alone acts on them (docs/decisions/0007).
    rule(["http.keda.sh"], ["interceptorroutes"], WRITE),
    rule(["gateway.networking.k8s.io"], ["httproutes", "grpcroutes", "backendtlspolicies"], WRITE),
]

# Cluster-scoped: what the charts create (CRDs, ClusterRoles and their bindings, admission webhooks:
# kube-prometheus-stack's, vault's injector, kong's CRDs), the namespaces Argo CD makes as the
# deployer (`CreateNamespace=true` reads and creates it in the impersonated sync, v3.4.4
# gitops-engine/pkg/sync/sync_context.go `autoCreateNamespace`, and `managedNamespaceMetadata`
# applies its labels server-side: get, create, patch; never delete, so no prune of one), and what
# the charts' ClusterRoles read (the operator's and Prometheus' nodes, nodes/metrics and /metrics;
# kube-state-metrics' list of every kind; the dashboard scraper's metrics.k8s.io). No write on
# nodes, persistent volumes, storage classes, CSRs or admission policies.
APPS_CLUSTER_RULES = [
    rule([""], ["namespaces"], ["get", "list", "watch", "create", "patch"]),
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

# The controller's own ClusterRole (the chart's `controller.clusterRoleRules`, argo-cd 10.1.1
# values.yaml; `*` on `*` otherwise): its cache lists and watches every kind. No `get`: on `*` it
# would include `nodes/proxy` (the kubelet's API, exec included) and `pods/exec`. Its writes in
# `argocd` are the chart's Role; everything it applies, it applies as a deployer.
CONTROLLER_CLUSTER_RULES = [rule(["*"], ["*"], ["list", "watch"])]


def binds_rules(admin_bindings: Sequence[tuple[str, str]]) -> list[dict]:
    """`bind` on each ClusterRole the setting pairs with a binding, by name, and on nothing else."""
    roles = sorted({role for _, role in admin_bindings})
    return [rule([RBAC], ["clusterroles"], ["bind"], roles)] if roles else []


def impersonator_rules() -> list[dict]:
    """`impersonate` on the two deployers, by name, in their namespace: Kubernetes checks it on the
    ServiceAccount the impersonation names (and adds its groups without a check of its own)."""
    return [rule([""], ["serviceaccounts"], ["impersonate"], [ROOT_DEPLOYER, APPS_DEPLOYER])]


class Deployers:
    """The deployers' ServiceAccounts, roles and bindings, and the controller's right to impersonate
    them; `resources` is what a project naming them must wait for."""

    resources: list[pulumi.Resource]

    def __init__(
        self,
        name: str,
        parent: pulumi.Resource,
        provider: k8s.Provider,
        namespace: k8s.core.v1.Namespace,
        admin_bindings: Sequence[tuple[str, str]],
    ) -> None:
        # The namespaced ones wait for `argocd`; the cluster-wide ones need nothing but the cluster.
        self._opts = pulumi.ResourceOptions(parent=parent, provider=provider)
        self._in_namespace = pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=[namespace])
        self._name = name
        self.resources = []
        for account in (ROOT_DEPLOYER, APPS_DEPLOYER):
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
        self._cluster_role(APPS_DEPLOYER, APPS_NAMESPACED_RULES)
        self._cluster_role(APPS_DEPLOYER_CLUSTER, APPS_CLUSTER_RULES)
        if admin_bindings:
            self._cluster_role(APPS_DEPLOYER_BINDS, binds_rules(admin_bindings))
        self._role(IMPERSONATOR, impersonator_rules(), CONTROLLER_SERVICE_ACCOUNT)

    @staticmethod
    def _meta(object_name: str, namespace: str | None = None) -> dict:
        return {"name": object_name, **({"namespace": namespace} if namespace else {}), "labels": PLATFORM_LABELS}

    @staticmethod
    def _subject(account: str) -> list[dict]:
        return [{"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}]

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
                subjects=self._subject(account),
                opts=self._in_namespace,
            )
        )

    def _cluster_role(self, role_name: str, rules: list[dict]) -> None:
        """A ClusterRole and its ClusterRoleBinding to the applications' deployer."""
        role = k8s.rbac.v1.ClusterRole(
            f"{self._name}-{role_name}-cluster-role", metadata=self._meta(role_name), rules=rules, opts=self._opts
        )
        self.resources.append(role)
        self.resources.append(
            k8s.rbac.v1.ClusterRoleBinding(
                f"{self._name}-{role_name}-cluster-role-binding",
                metadata=self._meta(role_name),
                role_ref={"apiGroup": RBAC, "kind": "ClusterRole", "name": role_name},
                subjects=self._subject(APPS_DEPLOYER),
                opts=self._opts,
            )
        )
