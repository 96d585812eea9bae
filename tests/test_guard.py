"""The guard inside the cluster: the pi5 stack's admission policies, evaluated offline.

The API server is absent here, but the policies are CEL, and CEL runs anywhere: each request below
goes through what the API server does with a ValidatingAdmissionPolicy in force (`Deny`): its
resource rules and match conditions pick the request, its variables are computed, and any
validation that is not true refuses it with its message. The CEL is compiled, type-checked and run
by cel-expr-python, the Python binding of CEL's C++ implementation published by CEL's own
maintainers (github.com/cel-expr/cel-python), with its strings extension; Kubernetes (cel-go)
adds libraries, which these expressions do not use.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pytest
from cel_expr_python import cel
from cel_expr_python.ext import ext_strings

from components import deployers
from components.guard import ARGOCD_CONTROLLER, BASELINE_CAPABILITIES, HOST_PODS_POLICY, NAMESPACE_NAME, REQUESTERS
from components.kube import PLATFORM_LABELS
from spitikos import chart_checks
from spitikos.chart_checks import selects

POLICY = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy"
BINDING = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding"
RBAC = "rbac.authorization.k8s.io"
OPERATOR = "system:admin"  # k3s's kubeconfig user
PLURAL = {"Role": "roles", "ClusterRole": "clusterroles", "RoleBinding": "rolebindings"}
PLURAL["ClusterRoleBinding"] = "clusterrolebindings"
GROUP = {**dict.fromkeys(PLURAL, RBAC), "Namespace": ""}
PLURAL["Namespace"] = "namespaces"
PLURAL |= {"Service": "services", "Secret": "secrets", "Deployment": "deployments"}
GROUP |= {"Service": "", "Secret": "", "Deployment": "apps"}
PLURAL |= {"Endpoints": "endpoints", "EndpointSlice": "endpointslices"}
GROUP |= {"Endpoints": "", "EndpointSlice": "discovery.k8s.io"}
PLURAL |= {"CustomResourceDefinition": "customresourcedefinitions"}
GROUP |= {"CustomResourceDefinition": "apiextensions.k8s.io"}
PLURAL |= {"ValidatingWebhookConfiguration": "validatingwebhookconfigurations", "Pod": "pods"}
PLURAL |= {"MutatingWebhookConfiguration": "mutatingwebhookconfigurations"}
PLURAL["InterceptorRoute"] = "interceptorroutes"
GROUP["InterceptorRoute"] = "http.keda.sh"
# A custom kind whose plural is `namespaces` (a CRD of another group may name its plural so).
PLURAL["Lookalike"], GROUP["Lookalike"] = "namespaces", "monitoring.coreos.com"
GROUP |= {"Pod": "", "MutatingWebhookConfiguration": "admissionregistration.k8s.io"}
GROUP |= {"ValidatingWebhookConfiguration": "admissionregistration.k8s.io"}
APPS_DEPLOYER = deployers.username(deployers.app_deployer("api"))
ROOT_DEPLOYER = deployers.username(deployers.ROOT_DEPLOYER)
# Every identity that applies Git's content on pi5: the root's deployer, each application
# namespace's (Pulumi.pi5.yaml appNamespaces) and the controller.
APP_NAMESPACES = ("api", "homepage", "vault", "kubernetes-dashboard", "monitoring")
APP_DEPLOYERS = [deployers.username(deployers.app_deployer(ns)) for ns in APP_NAMESPACES]
JUDGED = [ROOT_DEPLOYER, *APP_DEPLOYERS, ARGOCD_CONTROLLER]

# The variables a ValidatingAdmissionPolicy's expressions may read that these policies use, each
# `dyn` as the API server declares an object it has no schema for (`object`, `oldObject`), and
# `request` (admission.k8s.io/v1 AdmissionRequest) and `variables` the same way here.
_ENV = cel.NewEnv(
    variables={name: cel.Type.DYN for name in ("request", "object", "oldObject", "variables")},
    extensions=[ext_strings.ExtStrings()],
)


class CELError(Exception):
    """An expression that errs at run time (a missing key, a wrong type): the API server refuses."""


@functools.cache
def _program(expression: str) -> cel.Expression:
    return _ENV.compile(expression)  # raises on a syntax or type error, as the API server refuses the policy


def evaluate(expression: str, activation: dict):
    """The expression's value over plain JSON data (dicts, lists, strings, numbers, None)."""
    value = _program(expression).eval(data=activation)
    if value.type() == cel.Type.ERROR:
        raise CELError(f"{expression!r}: {value.value()}")
    return value.plain_value()


@dataclass
class Verdict:
    allowed: bool
    message: str = ""


def matches(spec: dict, request: dict) -> bool:
    """matchConstraints: a resource rule, and for a namespaced request the namespaceSelector, on the
    label the API server gives every Namespace (`kubernetes.io/metadata.name`; the policies select
    by it alone)."""
    resource, constraints = request["resource"], spec["matchConstraints"]
    selector = constraints.get("namespaceSelector")
    if selector and request["namespace"] and not selects(selector, {NAMESPACE_NAME: request["namespace"]}):
        return False
    return any(
        (resource["group"] in rule["apiGroups"] or "*" in rule["apiGroups"])
        and (resource["resource"] in rule["resources"] or "*" in rule["resources"])
        and request["operation"] in rule["operations"]
        for rule in constraints["resourceRules"]
    )


def judge(spec: dict, request: dict, obj: dict | None, old: dict | None = None) -> Verdict:
    """One policy, as the API server runs it; an expression that errs is a refusal (`failurePolicy: Fail`)."""
    assert spec["failurePolicy"] == "Fail", "the model knows only a policy that refuses when it errs"
    if not matches(spec, request):
        return Verdict(True)
    activation = {"request": request, "object": obj, "oldObject": old}
    try:
        if not all(evaluate(c["expression"], activation) for c in spec.get("matchConditions", [])):
            return Verdict(True)
        variables: dict = {}
        activation["variables"] = variables
        for variable in spec.get("variables", []):
            variables[variable["name"]] = evaluate(variable["expression"], activation)
        for validation in spec["validations"]:
            if not evaluate(validation["expression"], activation):
                return Verdict(False, str(evaluate(validation["messageExpression"], activation)))
    except CELError as error:
        return Verdict(False, f"the policy erred, and fails closed: {error}")
    return Verdict(True)


@pytest.fixture(scope="module")
def policies(stack):
    return denying_policies(stack)


def denying_policies(recording) -> list[dict]:
    """The stack's policies that a `Deny` binding puts in force."""
    denying = {
        b.values["spec"]["policyName"]
        for b in recording.of_type(BINDING)
        if b.values["spec"]["validationActions"] == ["Deny"]
    }
    specs = {p.values["metadata"]["name"]: p.values["spec"] for p in recording.of_type(POLICY)}
    assert specs and set(specs) == denying, "every policy is bound with Deny, and every binding names a policy"
    return list(specs.values())


def groups_of(user: str) -> list[str]:
    """The groups the API server gives a ServiceAccount's token (`system:serviceaccounts` and
    `system:serviceaccounts:<namespace>`); a person's here: k3s's admin, `system:masters`."""
    parts = user.split(":")
    if parts[:2] == ["system", "serviceaccount"]:
        return ["system:serviceaccounts", f"system:serviceaccounts:{parts[2]}", "system:authenticated"]
    return ["system:masters", "system:authenticated"]


def admit(policies, obj: dict, user: str | None = None, operation: str = "CREATE") -> Verdict:
    """As Argo CD sends it for an application: by default as the deployer of the object's namespace
    (the api's for a cluster-scoped object)."""
    kind = obj["kind"]
    namespace = obj["metadata"].get("namespace", "")
    user = user or deployers.username(deployers.app_deployer(namespace or "api"))
    request = {
        "kind": {"group": GROUP[kind], "version": "v1", "kind": kind},
        "resource": {"group": GROUP[kind], "version": "v1", "resource": PLURAL[kind]},
        "namespace": namespace,
        "name": obj["metadata"]["name"],
        "operation": operation,
        "userInfo": {"username": user, "groups": groups_of(user)},
    }
    for spec in policies:
        # A DELETE carries no object (`object` is null): a policy that read it would err, and refuse.
        # The stored object is `oldObject` on an UPDATE or DELETE (here: the same), null on a CREATE.
        verdict = judge(spec, request, None if operation == "DELETE" else obj, None if operation == "CREATE" else obj)
        if not verdict.allowed:
            return verdict
    return Verdict(True)


def binding(
    kind: str,
    name: str,
    role: str,
    namespace: str = "",
    role_kind: str = "ClusterRole",
    subject: tuple[str, str] = ("kubernetes-dashboard", "admin-user"),
) -> dict:
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": kind,
        "metadata": metadata,
        "roleRef": {"apiGroup": RBAC, "kind": role_kind, "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": subject[1], "namespace": subject[0]}],
    }


def role(kind: str, name: str, *rules: dict, namespace: str = "", **extra) -> dict:
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": f"{RBAC}/v1", "kind": kind, "metadata": metadata, "rules": list(rules), **extra}


def rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


# What the real apps install (charts at 7b7f06e, patched): kubernetes-dashboard's admin-user login
# (`view`, docs/migration/charts-7b7f06e.guard.patch), Vault's Kubernetes auth (chart 0.30.1), and
# kube-prometheus-stack's operator (`*` verbs on its own kinds).
DASHBOARD_ADMIN = binding("ClusterRoleBinding", "admin-user-view", "view")
VAULT_AUTH = binding("ClusterRoleBinding", "vault-server-binding", "system:auth-delegator", subject=("vault", "vault"))
PROMETHEUS_OPERATOR = role(
    "ClusterRole",
    "kube-prometheus-stack-operator",
    rule(["monitoring.coreos.com"], ["prometheuses", "prometheuses/status", "servicemonitors"], ["*"]),
    rule(["apps"], ["statefulsets"], ["*"]),
    rule([""], ["configmaps", "secrets"], ["*"]),
    rule([""], ["pods"], ["list", "delete"]),
)
APP_ROLE = role("Role", "api-reader", rule([""], ["pods", "configmaps"], ["get", "list", "watch"]), namespace="api")


def test_a_policy_that_errs_refuses_and_one_that_does_not_type_check_is_no_policy():
    """What the model does when CEL fails is what the API server does under `failurePolicy: Fail`;
    and an expression the type checker refuses never reaches a request (the API server refuses the
    policy itself), so a test cannot pass on a policy that would not be admitted."""
    rules = [{"apiGroups": [RBAC], "resources": ["clusterroles"], "operations": ["CREATE"]}]
    spec = {"failurePolicy": "Fail", "matchConstraints": {"resourceRules": rules}}
    spec["validations"] = [{"expression": "object.metadata.labels['x'] == 'y'", "messageExpression": "'not x'"}]
    request = {"resource": {"group": RBAC, "resource": "clusterroles"}, "operation": "CREATE", "name": "r"}
    unlabelled = role("ClusterRole", "r")
    verdict = judge(spec, request, unlabelled)
    assert not verdict.allowed and "erred" in verdict.message and "labels" in verdict.message
    assert judge(spec, request, {**unlabelled, "metadata": {"name": "r", "labels": {"x": "y"}}}).allowed
    assert judge(spec, request, {**unlabelled, "metadata": {"name": "r", "labels": {"x": "z"}}}).message == "not x"
    with pytest.raises(RuntimeError, match="undeclared reference to 'noSuchFunction'"):
        evaluate("object.metadata.name.noSuchFunction()", {"object": unlabelled})


@pytest.mark.parametrize(
    "obj",
    [DASHBOARD_ADMIN, VAULT_AUTH, PROMETHEUS_OPERATOR, APP_ROLE],
    ids=["dashboard-admin-user", "vault-auth-delegator", "prometheus-operator", "app-role"],
)
def test_argocd_may_create_what_the_real_apps_install(policies, obj):
    """As the deployer of the application that installs it (a binding's: its subject's namespace)."""
    ns = (obj.get("subjects") or [{}])[0].get("namespace") or obj["metadata"].get("namespace") or "api"
    user = deployers.username(deployers.app_deployer(ns))
    assert admit(policies, obj, user=user).allowed
    assert admit(policies, obj, user=user, operation="UPDATE").allowed


def test_a_listed_binding_grants_its_role_to_its_applications_service_accounts_alone(policies):
    """The pair pins the role; the subjects are the deploying namespace's ServiceAccounts (attack 79)."""
    dashboard = deployers.username(deployers.app_deployer("kubernetes-dashboard"))
    assert admit(policies, DASHBOARD_ADMIN, user=dashboard).allowed
    for subject in (
        {"kind": "Group", "apiGroup": RBAC, "name": "system:serviceaccounts"},
        {"kind": "User", "apiGroup": RBAC, "name": "system:anonymous"},
        {"kind": "ServiceAccount", "name": "default", "namespace": "homepage"},
    ):
        widened = {**DASHBOARD_ADMIN, "subjects": [*DASHBOARD_ADMIN["subjects"], subject]}
        verdict = admit(policies, widened, user=dashboard)
        assert not verdict.allowed and "beyond" in verdict.message, subject
    # Another application's deployer may not apply it for the dashboard either.
    assert not admit(policies, DASHBOARD_ADMIN, user=deployers.username(deployers.app_deployer("vault"))).allowed


def test_the_policies_judge_the_deployers_argocd_impersonates_and_its_controller(policies):
    """With sync impersonation the API server sees the deployer, not the controller: a guard that
    judged the controller alone would judge nothing."""
    assert set(REQUESTERS) == {"system:serviceaccount:argocd:argocd-deploys-*", ROOT_DEPLOYER, ARGOCD_CONTROLLER}
    backdoor = binding("ClusterRoleBinding", "backdoor", "cluster-admin")
    for user in JUDGED:
        assert not admit(policies, backdoor, user=user).allowed, user
    # The prefix is the deployers' in `argocd`, where only Pulumi makes ServiceAccounts: the same
    # name in an application namespace is no deployer, nor is argocd-server.
    for user in ("system:serviceaccount:api:argocd-deploys-api", "system:serviceaccount:argocd:argocd-server"):
        assert admit(policies, backdoor, user=user).allowed, user


def test_a_listed_binding_re_pointed_at_another_admin_role_is_refused(policies):
    """The setting pairs each binding with its role: Vault's auth-delegator binding may not become
    cluster-admin (issue 24, walk-around 5)."""
    verdict = admit(policies, binding("ClusterRoleBinding", "vault-server-binding", "cluster-admin"))
    assert not verdict.allowed and "pairs that binding with that role" in verdict.message
    assert not admit(policies, binding("ClusterRoleBinding", "admin-user-view", "system:auth-delegator")).allowed
    # A role a pair names is pinned to its binding too: `view` under another name is refused.
    assert not admit(policies, binding("ClusterRoleBinding", "api-reads-everything", "view")).allowed


def test_a_stack_that_lists_no_admin_binding_gets_none(fresh):
    policies = denying_policies(fresh)
    for obj in (binding("ClusterRoleBinding", "admin-user-binding", "cluster-admin"), VAULT_AUTH):
        assert not admit(policies, obj).allowed, obj["metadata"]["name"]
    assert admit(policies, APP_ROLE).allowed


REFUSED_BINDINGS = [
    binding("ClusterRoleBinding", "backdoor", "cluster-admin"),
    binding("RoleBinding", "ns-admin", "admin", namespace="api"),
    binding("RoleBinding", "admin-user-view", "cluster-admin", namespace="api"),  # not the listed one
    binding("ClusterRoleBinding", "nodes", "system:node"),
    binding("ClusterRoleBinding", "be-argocd", "argocd-application-controller"),
    binding("ClusterRoleBinding", "be-local-path", "local-path-provisioner-role"),
    binding("ClusterRoleBinding", "editor", "edit"),
    binding("ClusterRoleBinding", "backups", "volsync-manager"),
]


@pytest.mark.parametrize("obj", REFUSED_BINDINGS, ids=lambda o: f"{o['metadata']['name']}-to-{o['roleRef']['name']}")
def test_argocd_may_not_bind_an_admin_role_the_setting_does_not_list(policies, obj):
    verdict = admit(policies, obj)
    assert not verdict.allowed
    assert obj["roleRef"]["name"] in verdict.message and "allowedAdminBindings" in verdict.message
    assert not admit(policies, obj, operation="UPDATE").allowed, "changing the subjects is a binding too"
    assert not admit(policies, obj, user=ARGOCD_CONTROLLER).allowed, "should impersonation ever be off"
    # The operator (or any requester but Argo CD) is not judged: the guard is about what Git reaches.
    assert admit(policies, obj, user=OPERATOR).allowed


def test_a_namespaced_role_of_the_same_name_is_the_apps_own(policies):
    assert admit(policies, binding("RoleBinding", "api", "admin", namespace="api", role_kind="Role")).allowed
    assert admit(policies, binding("ClusterRoleBinding", "scraper", "kubernetes-dashboard-metrics-scraper")).allowed


REFUSED_ROLES = [
    ("wildcard", role("ClusterRole", "all", rule(["*"], ["*"], ["*"]))),
    ("every-resource", role("Role", "all-here", rule([""], ["*"], ["get"]), namespace="api")),
    ("escalate", role("ClusterRole", "escalate", rule([RBAC], ["clusterroles"], ["escalate"]))),
    ("bind", role("Role", "bind", rule([RBAC], ["roles"], ["bind"]), namespace="api")),
    ("impersonate", role("ClusterRole", "impersonate", rule([""], ["serviceaccounts"], ["impersonate"]))),
    ("star-on-rbac", role("ClusterRole", "rbac-star", rule([RBAC], ["clusterroles"], ["*"]))),
    ("star-on-any-group", role("ClusterRole", "any-group", rule(["*"], ["deployments"], ["*"]))),
    ("star-on-users", role("ClusterRole", "users", rule([""], ["users"], ["*"]))),
    ("star-on-uids", role("ClusterRole", "uids", rule(["authentication.k8s.io"], ["uids"], ["*"]))),
    ("token", role("ClusterRole", "tokens", rule([""], ["serviceaccounts/token"], ["create"]))),
    ("node-proxy", role("ClusterRole", "kubelet", rule([""], ["nodes/proxy"], ["get"]))),
    ("exec", role("Role", "exec", rule([""], ["pods/exec"], ["create"]), namespace="api")),
    (
        "policy-bindings",
        role(
            "ClusterRole",
            "unguard",
            rule(["admissionregistration.k8s.io"], ["validatingadmissionpolicybindings"], ["delete"]),
        ),
    ),
    (
        "second-rule",
        role("ClusterRole", "mixed", rule([""], ["pods"], ["get"]), rule([""], ["serviceaccounts"], ["*"])),
    ),
]


@pytest.mark.parametrize("obj", [o for _, o in REFUSED_ROLES], ids=[i for i, _ in REFUSED_ROLES])
def test_argocd_may_not_create_a_role_that_grants_wholesale_or_escalates(policies, obj):
    verdict = admit(policies, obj)
    assert not verdict.allowed
    assert verdict.message.startswith(f"{obj['kind']} {obj['metadata']['name']} grants")
    assert admit(policies, obj, user=OPERATOR).allowed


def test_argocd_may_not_create_a_cluster_role_that_aggregates_others(policies):
    """cluster-admin carries `kubernetes.io/bootstrapping: rbac-defaults`: an aggregating ClusterRole
    selecting it would be given `*` on `*` by the controller-manager, which no policy judges."""
    selector = {"matchLabels": {"kubernetes.io/bootstrapping": "rbac-defaults"}}
    obj = role("ClusterRole", "gatherer", aggregationRule={"clusterRoleSelectors": [selector]})
    verdict = admit(policies, obj)
    assert not verdict.allowed and "aggregates" in verdict.message
    # Nor one labelled to be folded into another: view's holders (the dashboard's login) would gain
    # what the creator holds, writes included (attack 98). kube-prometheus-stack makes such roles
    # only with `global.rbac.createAggregateClusterRoles`, false by default and unset in the charts.
    labelled = role("ClusterRole", "monitoring-edit", rule(["monitoring.coreos.com"], ["prometheuses"], ["*"]))
    for target in ("view", "edit", "admin"):
        labelled["metadata"]["labels"] = {f"rbac.authorization.k8s.io/aggregate-to-{target}": "true"}
        assert not admit(policies, labelled).allowed, target
    labelled["metadata"]["labels"] = {"app.kubernetes.io/name": "kube-prometheus-stack"}
    assert admit(policies, labelled).allowed


def test_the_requester_is_argocds_application_controller_of_the_chart():
    # argo-cd chart 10.1.1: controller.serviceAccount.name, in the release's namespace.
    assert ARGOCD_CONTROLLER == "system:serviceaccount:argocd:argocd-application-controller"


def test_the_policies_judge_creates_and_updates_of_every_rbac_kind_and_namespaces_and_fail_closed(policies):
    judged = set()
    for spec in policies:
        assert spec["failurePolicy"] == "Fail"
        for rule_ in spec["matchConstraints"]["resourceRules"]:
            # A Pod's security context exists from its creation; it gains a container only through
            # `pods/ephemeralcontainers` (the host-pods policy judges those two).
            pods = {"pods": {"CREATE"}, "pods/ephemeralcontainers": {"UPDATE"}}.get(rule_["resources"][0])
            assert rule_["apiVersions"] == ["*"] and (pods or {"CREATE", "UPDATE"}) <= set(rule_["operations"])
            judged |= {(group, resource) for group in rule_["apiGroups"] for resource in rule_["resources"]}
    rbac_and_namespaces = {(GROUP[k], PLURAL[k]) for k in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")}
    assert rbac_and_namespaces | {("", "namespaces"), ("", "services"), ("*", "*"), ("*", "*/*")} <= judged
    assert {("", "endpoints"), ("discovery.k8s.io", "endpointslices")} <= judged
    # The platform's cluster-scoped objects, by kind.
    assert {
        ("apiextensions.k8s.io", "customresourcedefinitions"),
        ("admissionregistration.k8s.io", "validatingwebhookconfigurations"),
    } <= judged


def namespace(name: str, level: str | None) -> dict:
    labels = {"pod-security.kubernetes.io/enforce": level} if level else {}
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, **({"labels": labels} if level else {})},
    }


def test_argocd_may_label_privileged_only_the_namespaces_the_setting_lists(policies, fresh):
    """A Namespace in Git, or an Application's managedNamespaceMetadata, could otherwise undo the
    cluster's `baseline` default with one label."""
    verdict = admit(policies, namespace("evil", "privileged"))
    assert not verdict.allowed and "privilegedNamespaces" in verdict.message
    assert not admit(policies, namespace("api", "privileged"), operation="UPDATE").allowed
    for allowed in (namespace("evil", None), namespace("evil", "baseline"), namespace("evil", "restricted")):
        assert admit(policies, allowed).allowed, allowed
    other = namespace("evil", None)
    other["metadata"]["labels"] = {"team": "x"}
    assert admit(policies, other).allowed
    # pi5 lists monitoring: kube-prometheus-stack's node exporter reads the host.
    assert admit(policies, namespace("monitoring", "privileged")).allowed
    assert not admit(denying_policies(fresh), namespace("monitoring", "privileged")).allowed
    assert admit(policies, namespace("evil", "privileged"), user=OPERATOR).allowed


def deployment(namespace: str) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x", "namespace": namespace}}


@pytest.mark.parametrize("ns", ["argocd", "kube-system", "volsync-system"])
def test_the_apps_deployer_writes_nothing_in_a_platform_namespace(policies, ns):
    """Its namespaced rights hold in every namespace (RBAC cannot leave one out): the policy does."""
    for operation in ("CREATE", "UPDATE", "DELETE"):
        verdict = admit(policies, deployment(ns), operation=operation)
        assert not verdict.allowed and "Pulumi-owned" in verdict.message, (ns, operation)
    # Nor the Namespace object itself: no relabel, no delete.
    assert not admit(policies, namespace(ns, None), operation="UPDATE").allowed
    assert not admit(policies, namespace(ns, None), operation="DELETE").allowed
    assert admit(policies, deployment(ns), user=OPERATOR).allowed


def test_an_applications_pod_changes_no_platform_object_no_pulumi_object_and_no_namespaces_level(policies):
    """What a deployer may not do, a pod it hands the right to may not either (attacks 92, 94, 95):
    a Role or ClusterRole of what the deployer holds passes RBAC's escalation check."""
    pod = "system:serviceaccount:vault:vault"
    crd = cluster_object("CustomResourceDefinition", "applications.argoproj.io")
    for operation in ("UPDATE", "DELETE"):
        assert not admit(policies, crd, user=pod, operation=operation).allowed, operation
    assert not admit(policies, namespace("vault", "privileged"), user=pod, operation="UPDATE").allowed
    assert not admit(policies, namespace("kube-system", None), user=pod, operation="UPDATE").allowed
    env = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "platform-env", "namespace": "api"}}
    env["metadata"]["labels"] = dict(PLATFORM_LABELS)
    assert not admit(policies, env, user="system:serviceaccount:api:default", operation="UPDATE").allowed
    # kube-prometheus-stack's operator keeps the kubelet's Service in kube-system, by its chart's
    # ClusterRole: a pod's write in a platform namespace is RBAC's to judge.
    meta = {"name": "kube-prometheus-stack-kubelet", "namespace": "kube-system"}
    kubelet = {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": {"clusterIP": "None"}}
    operator = "system:serviceaccount:monitoring:kube-prometheus-stack-operator"
    assert admit(policies, kubelet, user=operator, operation="UPDATE").allowed
    assert not admit(policies, kubelet, operation="UPDATE").allowed  # the deployer's
    endpoints = {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta}
    assert admit(policies, endpoints, user=operator, operation="UPDATE").allowed
    slice_meta = {"name": "kube-prometheus-stack-kubelet-x7k2p", "namespace": "kube-system"}
    kubelet_slice = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": slice_meta}
    kubelet_slice["metadata"]["labels"] = {"kubernetes.io/service-name": "kube-prometheus-stack-kubelet"}
    for operation in ("CREATE", "UPDATE", "DELETE"):
        assert admit(policies, kubelet_slice, user=operator, operation=operation).allowed, operation
    # and nothing else in a platform namespace, whatever its ClusterRole holds (attacks 85, 87):
    # not kube-dns' endpoints, whatever the name says.
    dns_slice = {**kubelet_slice, "metadata": {**slice_meta, "labels": {"kubernetes.io/service-name": "kube-dns"}}}
    assert not admit(policies, dns_slice, user=operator).allowed
    dns = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kube-dns", "namespace": "kube-system"}}
    assert not admit(policies, {**dns, "spec": {}}, user=operator, operation="UPDATE").allowed
    assert not admit(policies, deployment("argocd"), user=operator).allowed
    assert not admit(policies, {**kubelet, "metadata": {**meta, "namespace": "argocd"}}, user=operator).allowed
    # Elsewhere, the policies on what a deployer may publish judge its pods too (attacks 88, 89, 99).
    mirror = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "argocd-mirror", "namespace": "api"}}
    assert not admit(policies, mirror, user="system:serviceaccount:api:default").allowed
    assert not admit(policies, service("NodePort"), user="system:serviceaccount:monitoring:publisher").allowed


def test_the_apps_deployer_writes_in_application_namespaces_and_the_root_in_argocd(policies):
    for ns in ("api", "vault", "monitoring", "kube-prometheus"):  # `kube-*` is a glob: kube-prometheus is not k3s's
        if ns.startswith("kube-"):
            assert not admit(policies, deployment(ns)).allowed
        else:
            assert admit(policies, deployment(ns)).allowed, ns
    # Each in its own: the api's deployer writes nothing in vault's namespace, whatever RBAC holds.
    refused = admit(policies, deployment("vault"), user=APPS_DEPLOYER)
    assert refused.message == (
        f"Deployment vault/x: {APPS_DEPLOYER} deploys one application namespace and writes only there"
    )
    application = {"kind": "Deployment", "metadata": {"name": "api", "namespace": "argocd"}}
    assert admit(policies, application, user=ROOT_DEPLOYER).allowed
    # Namespace objects are exempt by their group and resource, not by a plural any CRD may take.
    lookalike = {"kind": "Lookalike", "metadata": {"name": "x", "namespace": "homepage"}}
    assert not admit(policies, lookalike, user=deployers.username(deployers.app_deployer("monitoring"))).allowed


def service(service_type: str | None) -> dict:
    spec = {"type": service_type} if service_type else {}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "prom", "namespace": "monitoring"},
        "spec": spec,
    }


@pytest.mark.parametrize("service_type", ["NodePort", "LoadBalancer"])
def test_no_application_publishes_a_node_port(policies, service_type):
    """Prometheus on the Pi's LAN address would bypass Access (issue 24, walk-around 8)."""
    verdict = admit(policies, service(service_type))
    assert not verdict.allowed and service_type in verdict.message
    assert not admit(policies, service(service_type), operation="UPDATE").allowed
    for allowed in (None, "ClusterIP"):
        assert admit(policies, service(allowed)).allowed


def test_no_application_takes_an_address_with_external_ips(policies):
    """kube-proxy routes a Service's externalIPs, whatever its type, to its pods (CVE-2020-8554)."""
    taken = service("ClusterIP")
    taken["spec"]["externalIPs"] = ["10.0.0.200"]
    verdict = admit(policies, taken)
    assert not verdict.allowed and "externalIPs" in verdict.message
    assert not admit(policies, taken, operation="UPDATE").allowed
    taken["spec"]["externalIPs"] = []
    assert admit(policies, taken).allowed


def cluster_object(kind: str, name: str) -> dict:
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": name}}


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("CustomResourceDefinition", "applications.argoproj.io"),
        ("CustomResourceDefinition", "helmcharts.helm.cattle.io"),
        ("CustomResourceDefinition", "replicationsources.volsync.backube"),
        ("ClusterRole", "argocd-server"),
        ("ClusterRole", "argocd-apps-deployer"),
        ("ClusterRole", "edit"),
        ("ClusterRoleBinding", "volsync-manager"),
        ("ClusterRoleBinding", "system:node-proxier"),
        ("ValidatingWebhookConfiguration", "keda-admission"),
        ("CustomResourceDefinition", "httproutes.gateway.networking.k8s.io"),
        ("ClusterRole", "nginx-gateway"),
    ],
)
def test_the_apps_deployer_writes_no_platform_object_by_name(policies, kind, name):
    """It writes CRDs, ClusterRoles, bindings and webhook configurations by any name (the charts'
    are not all known in advance): not the platform's, Kubernetes' or k3s's, nor deletes one
    (deleting applications.argoproj.io deletes every Application)."""
    obj = cluster_object(kind, name)
    if kind == "ClusterRoleBinding":
        obj = binding(kind, name, "api-reader")
    for operation in ("CREATE", "DELETE"):  # an UPDATE goes the same way as a CREATE
        verdict = admit(policies, obj, operation=operation)
        assert not verdict.allowed and "own it" in verdict.message, (name, operation)


def test_the_apps_deployer_writes_the_charts_own_cluster_objects(policies):
    for kind, name in [
        ("CustomResourceDefinition", "prometheuses.monitoring.coreos.com"),
        ("CustomResourceDefinition", "kongplugins.configuration.konghq.com"),
        ("ValidatingWebhookConfiguration", "kube-prometheus-stack-admission"),
    ]:
        for operation in ("CREATE", "DELETE"):
            assert admit(policies, cluster_object(kind, name), operation=operation).allowed, (name, operation)


def test_the_apps_deployer_changes_nothing_pulumi_made_in_an_application_namespace(policies):
    """The `api` namespace and its `platform-env` Secret are Pulumi's (PLATFORM_LABELS): a chart
    with a Secret of that name, or the Application's managedNamespaceMetadata, would overwrite them."""
    env = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "platform-env", "namespace": "api", "labels": {"app.kubernetes.io/managed-by": "pulumi"}},
    }
    api = namespace("api", "baseline")
    api["metadata"]["labels"]["app.kubernetes.io/managed-by"] = "pulumi"
    for obj in (env, api):
        for operation in ("UPDATE", "DELETE"):
            verdict = admit(policies, obj, operation=operation)
            assert not verdict.allowed and "Pulumi-owned" in verdict.message, (obj["kind"], operation)
    # The app's own objects there, and a label it sets on its own object, are its own.
    own = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "api-config", "namespace": "api"}}
    for operation in ("CREATE", "UPDATE", "DELETE"):
        assert admit(policies, own, operation=operation).allowed


@pytest.mark.parametrize("kind", ["Endpoints", "EndpointSlice"])
def test_no_application_writes_endpoints_by_hand(policies, kind):
    """A selector-less Service plus an EndpointSlice listing argocd-server's pod address, under the
    Access-free wildcard hostname, would publish Argo CD (issue 24, walk-around 6)."""
    for user in JUDGED:
        # An application's deployer in its own namespace, where nothing else refuses it.
        own = dict(zip(APP_DEPLOYERS, APP_NAMESPACES, strict=True)).get(user, "homepage")
        obj = {"apiVersion": "v1", "kind": kind, "metadata": {"name": "shortcut", "namespace": own}}
        verdict = admit(policies, obj, user=user)
        assert not verdict.allowed and "endpoints" in verdict.message, user
        assert admit(policies, obj, user=OPERATOR).allowed


def test_no_application_writes_a_long_lived_service_account_token(policies):
    """A token Secret names any ServiceAccount of its namespace (a listed pair's subject, a chart's
    webhook patcher): the token controller fills it with a token that never expires (attacks 61, 68)."""
    token = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "forever",
            "namespace": "kubernetes-dashboard",
            "annotations": {"kubernetes.io/service-account.name": "admin-user"},
        },
        "type": "kubernetes.io/service-account-token",
    }
    verdict = admit(policies, token)
    assert not verdict.allowed and "service-account-token" in verdict.message
    assert admit(policies, token, user=OPERATOR).allowed
    for other in ("Opaque", "kubernetes.io/tls", None):
        secret = {k: v for k, v in token.items() if k != "type"} | ({"type": other} if other else {})
        assert admit(policies, secret).allowed, other


DAEMON_SETS = "system:serviceaccount:kube-system:daemon-set-controller"


def host_reader(namespace: str = "monitoring", **container_context) -> dict:
    """A pod shaped like prometheus-node-exporter 4.47.3's with the org's patched values: the host's
    network and PIDs, `/` read-only, as nobody, no privilege escalation."""
    context = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True} | container_context
    mount = {"name": "root", "mountPath": "/host/root", "readOnly": True}
    container = {"name": "exporter", "image": "exporter", "securityContext": context, "volumeMounts": [mount]}
    spec = {
        "hostNetwork": True,
        "hostPID": True,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65534},
        "containers": [container],
        "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
    }
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "exporter", "namespace": namespace}, "spec": spec}


def test_a_listed_privileged_namespace_runs_host_readers_and_nothing_more(policies, stack, fresh):
    """Pod Security enforces nothing in `monitoring` (the node exporter's): the guard judges every
    Pod made there, by whoever (the DaemonSet controller here), and admits host access only read-only,
    as a user other than root that cannot gain privileges, with nothing privileged (attacks 53, 69)."""
    assert admit(policies, host_reader(), user=DAEMON_SETS).allowed
    refused = {
        "root": host_reader(runAsUser=0),
        "may escalate": host_reader(allowPrivilegeEscalation=True),
        "privileged": host_reader(privileged=True),
        "SYS_ADMIN": host_reader(capabilities={"add": ["SYS_ADMIN"]}),
    }
    writable = host_reader()
    writable["spec"]["containers"][0]["volumeMounts"][0]["readOnly"] = False
    refused["writable /"] = writable
    # A host port without the host network is the node's port forwarded to the pod (attack 97);
    # with it (the node exporter's 9100), the port is the node's own.
    forwarded = host_reader()
    del forwarded["spec"]["hostNetwork"]
    forwarded["spec"]["containers"][0]["ports"] = [{"containerPort": 6443, "hostPort": 6443}]
    refused["host port"] = forwarded
    exporter = host_reader()
    exporter["spec"]["containers"][0]["ports"] = [{"containerPort": 9100, "hostPort": 9100}]
    assert admit(policies, exporter, user=DAEMON_SETS).allowed
    for why, pod in refused.items():
        verdict = admit(policies, pod, user=DAEMON_SETS)
        assert not verdict.allowed and "monitoring" in verdict.message, why
    # Without host access, Pod Security's baseline rules on privilege alone: its own user is the pod's.
    plain = host_reader(allowPrivilegeEscalation=True, runAsUser=0)
    plain["spec"] = {"containers": plain["spec"]["containers"]}
    del plain["spec"]["containers"][0]["volumeMounts"]
    assert admit(policies, plain, user=DAEMON_SETS).allowed
    # Elsewhere Pod Security judges (baseline refuses host access whoever runs it); a stack that
    # lists no privileged namespace has no such policy.
    assert admit(policies, host_reader("api", runAsUser=0), user=DAEMON_SETS).allowed
    assert HOST_PODS_POLICY not in {p.values["metadata"]["name"] for p in fresh.of_type(POLICY)}
    assert HOST_PODS_POLICY in {p.values["metadata"]["name"] for p in stack.of_type(POLICY)}


def test_the_guard_knows_pod_securitys_baseline_capabilities():
    assert set(BASELINE_CAPABILITIES) == chart_checks.BASELINE_CAPABILITIES


def injector_webhook(**changes) -> dict:
    """Vault 0.30.1's injector webhook with the org's patched values: Pods of `api` alone."""
    selector = {"matchExpressions": [{"key": NAMESPACE_NAME, "operator": "In", "values": ["api"]}]}
    webhook = {
        "name": "vault.hashicorp.com",
        "clientConfig": {"service": {"name": "vault-agent-injector-svc", "namespace": "vault", "path": "/mutate"}},
        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
        "namespaceSelector": selector,
    } | changes
    kind = "MutatingWebhookConfiguration"
    meta = {"name": "vault-agent-injector-cfg"}
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind, "metadata": meta, "webhooks": [webhook]}


def test_an_applications_webhook_sees_only_its_kinds_and_pods_of_the_namespaces_it_lists(policies):
    """RBAC cannot narrow `create` by name, and a webhook sees every object it matches: an app's
    webhook calls a Service, on Pods or PrometheusRules by name, Pods only of the namespaces an `In`
    list names, none of the platform's (attacks 26, 70, 71). Judged for the deployer and for the
    charts' own webhook patchers (Vault's injector patches its caBundle, and may patch any)."""
    assert admit(policies, injector_webhook()).allowed
    rule = {"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"]}
    refused = {
        "a URL": injector_webhook(clientConfig={"url": "https://example.org/mutate"}),
        "Secrets": injector_webhook(rules=[rule | {"resources": ["secrets"]}]),
        "every kind": injector_webhook(rules=[rule | {"apiGroups": ["*"], "resources": ["*"]}]),
        "a subresource": injector_webhook(rules=[rule | {"resources": ["pods/ephemeralcontainers"]}]),
        "every namespace": injector_webhook(namespaceSelector={}),
        "argocd": injector_webhook(
            namespaceSelector={
                "matchExpressions": [{"key": NAMESPACE_NAME, "operator": "In", "values": ["api", "argocd"]}]
            }
        ),
        "kube-system": injector_webhook(
            namespaceSelector={
                "matchExpressions": [{"key": NAMESPACE_NAME, "operator": "In", "values": ["kube-system"]}]
            }
        ),
    }
    injector = "system:serviceaccount:vault:vault-agent-injector"
    for why, obj in refused.items():
        verdict = admit(policies, obj, operation="UPDATE")
        assert not verdict.allowed and "none of the platform" in verdict.message, why
    assert not admit(policies, refused["every namespace"], user=injector, operation="UPDATE").allowed
    assert admit(policies, injector_webhook(), user=injector, operation="UPDATE").allowed
    # The platform's own controllers and the operators are not judged.
    for user in ("system:serviceaccount:keda:keda-operator", OPERATOR):
        assert admit(policies, refused["every namespace"], user=user).allowed, user


def interceptor_route(namespace: str, *hosts: str) -> dict:
    spec = {"target": {"service": namespace, "port": 80}, "rules": [{"hosts": list(hosts)}]}
    return {"kind": "InterceptorRoute", "metadata": {"name": namespace, "namespace": namespace}, "spec": spec}


def test_an_interceptor_route_serves_only_hosts_no_other_namespace_is_given(policies):
    """KEDA's interceptor routes by host and the longest path across every namespace's routes: the
    api's hostnames are the api's (pi5's routeNamespaces), whoever routes through it (attack 91)."""
    assert admit(policies, interceptor_route("api", "api.taehoonlee.cloud", "api.spitikos.dev")).allowed
    assert admit(policies, interceptor_route("homepage", "taehoonlee.cloud", "new.taehoonlee.cloud")).allowed
    for host in ("api.spitikos.dev", "API.spitikos.dev", "api.spitikos.dev.", "api.spitikos.dev:443"):
        verdict = admit(policies, interceptor_route("homepage", "spitikos.dev", host))
        assert not verdict.allowed and "routeNamespaces" in verdict.message, host
    # A pod the homepage's deployer handed the right to is judged the same.
    pod = "system:serviceaccount:homepage:default"
    assert not admit(policies, interceptor_route("homepage", "api.spitikos.dev"), user=pod).allowed
