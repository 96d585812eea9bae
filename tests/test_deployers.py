"""Who applies Git's content, and what RBAC lets each identity do (components/deployers.py), on
the pi5 stack's real objects: the Roles, ClusterRoles and bindings the program writes, the
projects that name the deployers, and the chart values that narrow Argo CD's controller.

RBAC is additive and checked by (group, resource, verb, name): `holds` below is that check, and
`covers` Kubernetes' escalation check (a role is created, or bound, only by one who holds every
rule in it), for the rules the organization's charts' ClusterRoles carry."""

from __future__ import annotations

import pytest

from components import deployers
from components.argocd import APPS_PROJECT, IN_CLUSTER, NAMESPACE, ROOT_PROJECT

RBAC = "rbac.authorization.k8s.io"
RELEASE = "kubernetes:helm.sh/v3:Release"


def subject_rules(recording, account: str, namespace: str = NAMESPACE) -> dict[str, list[dict]]:
    """The rules bound to a ServiceAccount, by where they hold: `*` (a ClusterRoleBinding) or a namespace."""
    roles = {
        ("ClusterRole", r.values["metadata"]["name"]): r.values.get("rules", [])
        for r in recording.kubernetes("ClusterRole")
    }
    roles |= {
        ("Role", r.values["metadata"]["name"], r.values["metadata"]["namespace"]): r.values.get("rules", [])
        for r in recording.kubernetes("Role")
    }
    held: dict[str, list[dict]] = {}
    for kind in ("ClusterRoleBinding", "RoleBinding"):
        for b in recording.kubernetes(kind):
            spec = b.values
            if {"kind": "ServiceAccount", "name": account, "namespace": namespace} not in spec["subjects"]:
                continue
            where = spec["metadata"].get("namespace", "*") if kind == "RoleBinding" else "*"
            ref = spec["roleRef"]
            key = (ref["kind"], ref["name"]) if ref["kind"] == "ClusterRole" else ("Role", ref["name"], where)
            held.setdefault(where, []).extend(roles[key])
    return held


def matches(allowed: list[str], wanted: str) -> bool:
    return "*" in allowed or wanted in allowed


def holds(rules: list[dict], group: str, resource: str, verb: str, name: str = "") -> bool:
    """RBAC's answer for one request (`resource` may be `pods/exec`; a rule's `*` covers subresources)."""
    for r in rules:
        if "nonResourceURLs" in r:
            continue
        names = r.get("resourceNames")
        if (
            matches(r["apiGroups"], group)
            and matches(r["resources"], resource)
            and matches(r["verbs"], verb)
            and (not names or name in names)
        ):
            return True
    return False


def covers(owner: list[dict], servant: list[dict]) -> list[str]:
    """What of `servant` the owner does not hold: Kubernetes' escalation check (rbac/validation
    ConfirmNoEscalation), for rules without `*` in the servant (none below has one but verbs)."""
    missing = []
    for r in servant:
        if "nonResourceURLs" in r:
            for url in r["nonResourceURLs"]:
                for verb in r["verbs"]:
                    if not any(url in o.get("nonResourceURLs", []) and matches(o["verbs"], verb) for o in owner):
                        missing.append(f"{verb} {url}")
            continue
        for group in r["apiGroups"]:
            for resource in r["resources"]:
                for verb in r["verbs"]:
                    for name in r.get("resourceNames") or [""]:
                        # A servant's `*` verb is covered by an owner's `*` only.
                        if verb == "*":
                            ok = any(
                                "nonResourceURLs" not in o
                                and "*" in o["verbs"]
                                and matches(o["apiGroups"], group)
                                and matches(o["resources"], resource)
                                for o in owner
                            )
                        else:
                            ok = holds(owner, group, resource, verb, name)
                        if not ok:
                            missing.append(f"{verb} {group}/{resource}{'/' + name if name else ''}")
    return missing


# pi5's application namespaces (Pulumi.pi5.yaml appNamespaces) and how far each deployer reaches.
PI5_APP_NAMESPACES = {
    "api": "",
    "homepage": "",
    "vault": "cluster",
    "kubernetes-dashboard": "cluster",
    "monitoring": "operator",
}


@pytest.fixture(scope="module")
def each(stack) -> dict[str, dict[str, list[dict]]]:
    """Each application namespace's deployer's rules, by where they hold."""
    return {ns: subject_rules(stack, deployers.app_deployer(ns)) for ns in PI5_APP_NAMESPACES}


@pytest.fixture(scope="module")
def apps(each):
    """Every application deployer's rules, by deployer and where they hold."""
    return {f"{ns}@{where}": rules for ns, held in each.items() for where, rules in held.items()}


@pytest.fixture(scope="module")
def root(stack):
    return subject_rules(stack, deployers.ROOT_DEPLOYER)


def test_the_roots_deployer_manages_applications_in_argocd_and_nothing_else(root):
    assert set(root) == {NAMESPACE}, "a Role in argocd, nothing cluster-wide"
    assert root[NAMESPACE] == [
        {
            "apiGroups": ["argoproj.io"],
            "resources": ["applications"],
            "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
        }
    ]


# Requests that hand the requester another identity, the node, a container, or the guard itself.
ESCALATIONS = [
    (RBAC, "clusterroles", "escalate", ""),
    (RBAC, "roles", "escalate", ""),
    (RBAC, "clusterroles", "bind", "edit"),
    (RBAC, "clusterroles", "bind", "admin"),
    (RBAC, "roles", "bind", "x"),
    ("", "serviceaccounts", "impersonate", "argocd-application-controller"),
    ("", "users", "impersonate", "system:admin"),
    ("", "groups", "impersonate", "system:masters"),
    ("", "serviceaccounts/token", "create", "argocd-application-controller"),
    ("", "nodes/proxy", "get", "pi"),
    ("", "nodes/proxy", "create", "pi"),
    ("", "pods/exec", "create", "argocd-server-0"),
    ("", "pods/exec", "get", "argocd-server-0"),
    ("", "pods/attach", "create", ""),
    ("", "pods/portforward", "create", ""),
    ("", "pods/ephemeralcontainers", "patch", ""),
    ("", "services/proxy", "get", "argocd-server"),
    ("", "nodes", "patch", "pi"),
    ("", "namespaces", "delete", "argocd"),
    ("admissionregistration.k8s.io", "validatingadmissionpolicies", "delete", "argocd-binds-no-admin-role"),
    ("admissionregistration.k8s.io", "validatingadmissionpolicybindings", "delete", "argocd-binds-no-admin-role"),
    ("certificates.k8s.io", "certificatesigningrequests/approval", "update", ""),
    ("certificates.k8s.io", "signers", "approve", "kubernetes.io/kube-apiserver-client"),
    ("helm.cattle.io", "helmcharts", "create", ""),
    ("k3s.cattle.io", "addons", "create", ""),
    ("argoproj.io", "applications", "create", ""),
    ("argoproj.io", "appprojects", "update", "default"),
]


@pytest.mark.parametrize("request_", ESCALATIONS, ids=lambda r: f"{r[2]}-{r[1]}-{r[3] or 'any'}")
def test_the_apps_deployer_cannot_escalate_become_another_identity_or_reach_a_node(apps, request_):
    for where, rules in apps.items():
        assert not holds(rules, *request_), f"{where}: {request_}"


@pytest.mark.parametrize("request_", ESCALATIONS, ids=lambda r: f"{r[2]}-{r[1]}-{r[3] or 'any'}")
def test_the_roots_deployer_cannot_either(root, request_):
    group, resource = request_[:2]
    if (group, resource) == ("argoproj.io", "applications"):
        return  # its whole job, in argocd alone
    for where, rules in root.items():
        assert not holds(rules, *request_), f"{where}: {request_}"


def test_only_the_deployers_that_reach_the_cluster_bind_and_only_the_roles_the_setting_pairs(each):
    """`bind` by name (resourceNames) on the roles allowedAdminBindings pairs: the dashboard's
    `view` and Vault's system:auth-delegator (Pulumi.pi5.yaml), and on nothing else; the api's and
    the homepage's deployers bind nothing. No pair names cluster-admin, so no identity that applies
    Git's content can make a binding to it."""
    for ns, held in each.items():
        binds = [r for rules in held.values() for r in rules if {"bind", "*"} & set(r.get("verbs", []))]
        binds = [r for r in binds if {RBAC, "*"} & set(r.get("apiGroups", []))]
        expected = [
            {
                "apiGroups": [RBAC],
                "resources": ["clusterroles"],
                "verbs": ["bind"],
                "resourceNames": ["system:auth-delegator", "view"],
            }
        ]
        assert binds == (expected if PI5_APP_NAMESPACES[ns] else []), ns
        assert not any(holds(rules, RBAC, "clusterroles", "bind", "cluster-admin") for rules in held.values())


def test_without_admin_bindings_the_apps_deployer_binds_nothing(fresh):
    held = subject_rules(fresh, deployers.app_deployer("api"))
    assert held, "the example stack's api namespace has its deployer"
    for rules in held.values():
        assert not holds(rules, RBAC, "clusterroles", "bind", "cluster-admin")
        assert not holds(rules, RBAC, "clusterroles", "bind", "system:auth-delegator")


def test_the_apps_deployer_grants_only_verbs_that_cannot_escalate_on_service_accounts_and_rbac(apps):
    """`*` verbs include `impersonate`, `bind` and `escalate`: never on the kinds they act on."""
    for rules in apps.values():
        for r in rules:
            if "*" in r.get("verbs", []):
                assert not {"", RBAC, "*", "authentication.k8s.io"} & set(r["apiGroups"]) or not {
                    "serviceaccounts",
                    "users",
                    "groups",
                    "roles",
                    "clusterroles",
                    "*",
                } & set(r["resources"]), r


# The ClusterRoles and Roles the organization's charts create (charts at 7b7f06e with the patch of
# docs/migration), as their upstream templates render them with the charts' values: Kubernetes
# refuses each unless the deployer holds every rule in it. Read from prometheus-community's and
# kubernetes/dashboard's templates (the stored versions nearest the pinned kube-prometheus-stack
# 75.18.1 and kubernetes-dashboard 7.13.0); only a live sync proves the exact versions.
def rule(groups, resources, verbs, names=()):
    return {"apiGroups": groups, "resources": resources, "verbs": verbs, **({"resourceNames": names} if names else {})}


READ = ["get", "list", "watch"]
REAL_CLUSTER_ROLES = {
    "kube-prometheus-stack-operator": [
        rule(
            ["monitoring.coreos.com"],
            [
                "alertmanagers",
                "alertmanagers/finalizers",
                "alertmanagers/status",
                "alertmanagerconfigs",
                "prometheuses",
                "prometheuses/finalizers",
                "prometheuses/status",
                "prometheusagents",
                "prometheusagents/finalizers",
                "prometheusagents/status",
                "thanosrulers",
                "thanosrulers/finalizers",
                "thanosrulers/status",
                "scrapeconfigs",
                "scrapeconfigs/status",
                "servicemonitors",
                "servicemonitors/status",
                "podmonitors",
                "podmonitors/status",
                "probes",
                "probes/status",
                "prometheusrules",
            ],
            ["*"],
        ),
        rule(["apps"], ["statefulsets"], ["*"]),
        rule([""], ["configmaps", "secrets"], ["*"]),
        rule([""], ["pods"], ["list", "delete"]),
        rule([""], ["services", "services/finalizers"], ["get", "create", "update", "delete"]),
        rule([""], ["endpoints"], ["get", "create", "update", "delete"]),
        rule(["discovery.k8s.io"], ["endpointslices"], ["get", "create", "list", "update", "delete"]),
        rule([""], ["nodes"], ["list", "watch"]),
        rule([""], ["namespaces"], READ),
        rule(["", "events.k8s.io"], ["events"], ["create", "patch"]),
        rule(["networking.k8s.io"], ["ingresses"], READ),
        rule(["storage.k8s.io"], ["storageclasses"], ["get"]),
    ],
    "kube-prometheus-stack-prometheus": [
        rule([""], ["nodes", "nodes/metrics", "services", "endpoints", "pods"], READ),
        rule(["discovery.k8s.io"], ["endpointslices"], READ),
        rule(["networking.k8s.io"], ["ingresses"], READ),
        {"nonResourceURLs": ["/metrics", "/metrics/cadvisor"], "verbs": ["get"]},
    ],
    "kube-prometheus-stack-admission": [
        rule(
            ["admissionregistration.k8s.io"],
            ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"],
            ["get", "update", "patch"],
        )
    ],
    # kube-state-metrics' default collectors.
    "kube-prometheus-stack-kube-state-metrics": [
        rule(["certificates.k8s.io"], ["certificatesigningrequests"], ["list", "watch"]),
        rule(
            [""],
            [
                "configmaps",
                "endpoints",
                "limitranges",
                "namespaces",
                "nodes",
                "persistentvolumeclaims",
                "persistentvolumes",
                "pods",
                "replicationcontrollers",
                "resourcequotas",
                "secrets",
                "services",
            ],
            ["list", "watch"],
        ),
        rule(["batch"], ["cronjobs", "jobs"], ["list", "watch"]),
        rule(["extensions", "apps"], ["daemonsets", "deployments", "replicasets"], ["list", "watch"]),
        rule(["apps"], ["statefulsets"], ["list", "watch"]),
        rule(["autoscaling"], ["horizontalpodautoscalers"], ["list", "watch"]),
        rule(["extensions", "networking.k8s.io"], ["ingresses"], ["list", "watch"]),
        rule(
            ["admissionregistration.k8s.io"],
            ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"],
            ["list", "watch"],
        ),
        rule(["networking.k8s.io"], ["networkpolicies", "ingressclasses"], ["list", "watch"]),
        rule(["policy"], ["poddisruptionbudgets"], ["list", "watch"]),
        rule(["storage.k8s.io"], ["storageclasses", "volumeattachments"], ["list", "watch"]),
        rule(["discovery.k8s.io"], ["endpointslices"], ["list", "watch"]),
        rule(["coordination.k8s.io"], ["leases"], ["list", "watch"]),
    ],
    "kube-prometheus-stack-grafana-clusterrole": [rule([""], ["configmaps", "secrets"], ["get", "watch", "list"])],
    "kubernetes-dashboard-metrics-scraper": [rule(["metrics.k8s.io"], ["pods", "nodes"], READ)],
    # Namespaced (kubernetes-dashboard): its API reads the scraper through the service proxy.
    "kubernetes-dashboard-api (Role)": [
        rule(
            [""],
            ["secrets"],
            ["get", "update", "delete"],
            ["kubernetes-dashboard-key-holder", "kubernetes-dashboard-csrf"],
        ),
        rule([""], ["configmaps"], ["get", "update"], ["kubernetes-dashboard-settings"]),
        rule([""], ["services/proxy"], ["get"], deployers.DASHBOARD_SCRAPER_PROXY),
    ],
    # vault 0.30.1: the injector's ClusterRole, the server's discovery Role.
    "vault-agent-injector-clusterrole": [
        rule(["admissionregistration.k8s.io"], ["mutatingwebhookconfigurations"], ["get", "list", "watch", "patch"])
    ],
    "vault-discovery-role (Role)": [rule([""], ["pods"], ["get", "watch", "list", "update", "patch"])],
}


# The namespace each real role's chart installs it from (charts/argocd values.yaml at 7b7f06e).
ROLE_NAMESPACE = {
    "kube-prometheus-stack": "monitoring",
    "kubernetes-dashboard": "kubernetes-dashboard",
    "vault": "vault",
}


def app_of(role: str) -> str:
    return next(ns for prefix, ns in ROLE_NAMESPACE.items() if role.startswith(prefix))


@pytest.mark.parametrize("role", REAL_CLUSTER_ROLES, ids=str)
def test_the_deployer_of_each_real_app_holds_every_rule_of_its_charts_roles(each, role):
    """Else Kubernetes' escalation check refuses the role, and the sync fails: a ClusterRole needs
    its rules held in every namespace (a ClusterRoleBinding), a Role in its own namespace."""
    ns = app_of(role)
    held = each[ns].get("*", []) + (each[ns][ns] if "(Role)" in role else [])
    assert covers(held, REAL_CLUSTER_ROLES[role]) == []


@pytest.mark.parametrize("role", [r for r in REAL_CLUSTER_ROLES if "(Role)" not in r], ids=str)
def test_no_other_apps_deployer_could_create_a_real_cluster_role(each, role):
    """The boundary: the api's and the homepage's deployers create none of the charts' ClusterRoles."""
    for ns in ("api", "homepage"):
        assert covers(each[ns].get("*", []), REAL_CLUSTER_ROLES[role]), (ns, role)


NAMESPACED_KINDS = [
    ("apps", "deployments"),
    ("", "services"),
    ("", "configmaps"),
    ("", "secrets"),
    ("", "serviceaccounts"),
    ("", "pods"),
    ("gateway.networking.k8s.io", "httproutes"),
    ("gateway.networking.k8s.io", "grpcroutes"),
    ("keda.sh", "scaledobjects"),
    ("http.keda.sh", "interceptorroutes"),
    ("monitoring.coreos.com", "servicemonitors"),
    (RBAC, "rolebindings"),
]
CLUSTER_KINDS = [
    ("apiextensions.k8s.io", "customresourcedefinitions"),
    ("admissionregistration.k8s.io", "mutatingwebhookconfigurations"),
    (RBAC, "clusterroles"),
    (RBAC, "clusterrolebindings"),
]


@pytest.mark.parametrize("ns", PI5_APP_NAMESPACES)
def test_each_deployer_applies_what_the_charts_render_in_its_own_namespace_and_nowhere_else(each, ns):
    held = each[ns]
    assert set(held) <= {ns, "*"}, "a RoleBinding in its own namespace, and ClusterRoleBindings"
    for group, resource in NAMESPACED_KINDS:
        for verb in ("get", "create", "patch", "delete"):
            assert holds(held[ns], group, resource, verb), (group, resource, verb)
    # No Ingress: no controller serves one, and an app's would be a second edge (attack 62).
    assert holds(held[ns], "networking.k8s.io", "ingresses", "list")
    for verb in ("create", "patch"):
        assert not any(holds(rules, "networking.k8s.io", "ingresses", verb) for rules in held.values()), verb
    # Argo CD's CreateNamespace=true reads the namespace (Pulumi made it) and managedNamespaceMetadata
    # patches it: a RoleBinding grants that on its own Namespace object alone. None creates one.
    assert holds(held[ns], "", "namespaces", "get") and holds(held[ns], "", "namespaces", "patch")
    for rules in held.values():
        assert not holds(rules, "", "namespaces", "create") and not holds(rules, "", "namespaces", "delete")
    # Elsewhere (the cluster-wide bindings): no Deployment, Pod, Role or RoleBinding in another
    # namespace, whatever the reach; cluster-scoped kinds only for the apps that reach the cluster.
    cluster = held.get("*", [])
    for group, resource in [("apps", "deployments"), ("", "pods"), (RBAC, "rolebindings"), (RBAC, "roles")]:
        assert not holds(cluster, group, resource, "create"), (group, resource)
    assert not holds(cluster, "", "namespaces", "patch")
    for group, resource in CLUSTER_KINDS:
        assert holds(cluster, group, resource, "create") == bool(PI5_APP_NAMESPACES[ns]), (group, resource)
    # The operator reach (kube-prometheus-stack's operator's Secrets and StatefulSets everywhere) is
    # the monitoring deployer's alone.
    assert holds(cluster, "", "secrets", "get") == (PI5_APP_NAMESPACES[ns] == "operator")
    assert holds(cluster, "apps", "statefulsets", "create") == (PI5_APP_NAMESPACES[ns] == "operator")


def test_argocds_controller_lists_and_watches_and_impersonates_only_the_deployers(stack):
    values = stack.one(RELEASE, "spitikos-argocd-release").values["values"]
    controller_rules = values["controller"]["clusterRoleRules"]
    assert controller_rules["enabled"] is True
    assert controller_rules["rules"] == [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["list", "watch"]}]
    assert values["configs"]["cm"]["application.sync.impersonation.enabled"] is True
    held = subject_rules(stack, deployers.CONTROLLER_SERVICE_ACCOUNT)
    assert held == {
        NAMESPACE: [
            {
                "apiGroups": [""],
                "resources": ["serviceaccounts"],
                "verbs": ["impersonate"],
                "resourceNames": [
                    deployers.ROOT_DEPLOYER,
                    *(f"argocd-deploys-{ns}" for ns in PI5_APP_NAMESPACES),
                ],
            }
        ]
    }
    for rules in (controller_rules["rules"], held[NAMESPACE]):
        assert not holds(rules, "", "nodes/proxy", "get", "pi")
        assert not holds(rules, "", "secrets", "get", "x")
        assert not holds(rules, "", "serviceaccounts", "impersonate", "admin-user")


def test_every_project_names_the_deployer_of_each_destination(stack):
    projects = {r.values["metadata"]["name"]: r.values["spec"] for r in stack.kubernetes("AppProject")}
    assert projects[ROOT_PROJECT]["destinationServiceAccounts"] == [
        {"server": IN_CLUSTER, "namespace": NAMESPACE, "defaultServiceAccount": f"argocd:{deployers.ROOT_DEPLOYER}"}
    ]
    # One entry per application namespace, by exact name and no `*`: an Application deploying
    # anywhere else has no identity, and Argo CD refuses to sync it.
    assert projects[APPS_PROJECT]["destinationServiceAccounts"] == [
        {"server": IN_CLUSTER, "namespace": ns, "defaultServiceAccount": f"argocd:argocd-deploys-{ns}"}
        for ns in PI5_APP_NAMESPACES
    ]
    # Argo CD impersonates `system:serviceaccount:<defaultServiceAccount>` (a `:` names the namespace:
    # the deployers live in argocd, where no application writes, never in the app's namespace).
    assert deployers.username(deployers.app_deployer("api")) == "system:serviceaccount:argocd:argocd-deploys-api"


def test_pulumi_makes_each_application_namespace_before_its_deployers_binding_and_never_deletes_one(stack):
    """The RoleBinding needs its namespace; Argo CD would make it only at the first sync, as a
    deployer that then holds nothing there. A NamespacePatch creates a missing one, takes over
    nothing of a live one (homepage, vault, ... exist on pi5) and leaves it when deleted."""
    patches = {
        r.values["metadata"]["name"]: r
        for r in stack.of_type("kubernetes:core/v1:NamespacePatch")
        if r.name.startswith("spitikos-argocd-deployers-")
    }
    assert set(patches) == set(PI5_APP_NAMESPACES) - {"api"}, "api is the program's own namespace"
    for ns, patch in patches.items():
        assert patch.values["metadata"]["annotations"] == {
            deployers.APPLIED_AS: f"system:serviceaccount:argocd:argocd-deploys-{ns}"
        }
        assert "labels" not in patch.values["metadata"], "its labels are Argo CD's (managedNamespaceMetadata)"
    bindings = {
        r.values["metadata"]["namespace"]: r
        for r in stack.kubernetes("RoleBinding")
        if r.values["metadata"]["name"] == deployers.APPS_DEPLOYER_BINDING
    }
    api = stack.one("kubernetes:core/v1:Namespace", "spitikos-api-namespace")
    for ns in PI5_APP_NAMESPACES:
        binding = bindings[ns]
        assert binding.values["roleRef"]["name"] == deployers.APPS_DEPLOYER
        assert binding.values["subjects"] == [
            {"kind": "ServiceAccount", "name": f"argocd-deploys-{ns}", "namespace": NAMESPACE}
        ]
        assert (patches[ns] if ns in patches else api).urn in binding.dependencies, ns


def test_the_deployers_and_their_rights_exist_before_the_flag_is_on_or_a_project_names_them(stack):
    rbac = [
        r
        for kind in ("ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
        for r in stack.kubernetes(kind)
        if r.name.startswith("spitikos-argocd-deployers-")
    ]
    # The root's ServiceAccount, Role and binding; each app namespace's ServiceAccount and RoleBinding;
    # the namespaced, cluster, operator and binds ClusterRoles and three ClusterRoleBindings; the
    # impersonation Role and its binding.
    assert len(rbac) == 3 + 2 * len(PI5_APP_NAMESPACES) + 4 + 3 + 2
    release = stack.one(RELEASE, "spitikos-argocd-release")
    for waiting in (release, *stack.kubernetes("AppProject")):
        assert {r.urn for r in rbac} <= waiting.dependencies, waiting.name
