"""The attack corpus: every object a commit to `charts` could apply to climb past its application,
one file each under tests/attacks/, refused by a named layer (tests/layers.py); and every object the
organization's real charts apply, admitted by all four. Adding an attack is adding a file: its
header says what it tries and which layer stops it, and this module globs the folder. A header
`then-as: <user> <OPERATION>` makes the last object that user's request (an application's pod,
with what the sync's earlier objects granted it), past Argo CD's project.

tests/attacks/open/ holds attacks that no layer stops yet: each is a finding, kept as an xfail
that fails the suite (strict) the day a layer starts refusing it, so that it moves up a folder.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from gotemplate import render
from layers import (
    LAYERS,
    Cluster,
    Rbac,
    Request,
    authorized_namespace,
    cluster,
    escalation_refusal,
    uncovered,
    verdict,
)
from test_deployers import REAL_CLUSTER_ROLES
from test_guard import APP_ROLE, PROMETHEUS_OPERATOR, VAULT_AUTH
from test_migration import (
    FIXTURES,
    REAL_APP_CLUSTER_OBJECTS,
    applications,
    applied_namespace,
    dashboard_login,
    namespace_labels,
    node_exporter,
    patched,  # noqa: F401 - the fixture, applied once here too
    read_yaml,
    webhook_configurations,
)

from components import argocd, versions

CORPUS = Path(__file__).resolve().parent / "attacks"
ATTACKS = sorted(CORPUS.glob("*.yaml"))
OPEN = sorted((CORPUS / "open").glob("*.yaml"))
RBAC = "rbac.authorization.k8s.io"
HEADER = re.compile(r"# (attack|path|project|destination|operation|then-as|stopped-by): (.*)")


@dataclass(frozen=True)
class Attack:
    name: str
    header: dict[str, str]
    requests: list[Request]


@functools.cache
def load(path: Path) -> Attack:
    """The header (`# key: value`, continued by `#   more`) and the objects, in order (a `List`'s items)."""
    header: dict[str, str] = {}
    key = ""
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        if match := HEADER.fullmatch(line):
            key, header[match[1]] = match[1], match[2]
        elif line.startswith("#   ") and key:
            header[key] += " " + line[4:]
    objects = []
    for doc in yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader):
        objects += doc["items"] if doc.get("kind") == "List" else [doc]
    namespaces = [o["metadata"]["namespace"] for o in objects if "namespace" in o["metadata"]]
    destination = header.get("destination") or (namespaces[0] if namespaces else "api")
    project, operation = header.get("project", argocd.APPS_PROJECT), header.get("operation", "CREATE")
    requests = [Request(o, project, destination) for o in objects]
    if "then-as" in header:
        # `then-as: <user> <OPERATION>`: the last object is that user's request (a pod's, with what the
        # sync's objects before it granted), after Argo CD applied the others.
        user, pod_operation = header["then-as"].split()[:2]
        requests[-1] = Request(objects[-1], project, destination, pod_operation, user)
    else:
        requests = [Request(o, project, destination, operation) for o in objects]
    return Attack(path.stem, header, requests)


@pytest.fixture(scope="module")
def pi5(stack, patched) -> Cluster:  # noqa: F811 - the fixture imported above
    """The pi5 cluster as `pulumi up` leaves it, and Argo CD's labels on the real apps' namespaces."""
    labels = {a["spec"]["destination"]["namespace"]: namespace_labels(a) for a in applications(patched["charts"])}
    return cluster(stack, labels)


def test_the_corpus_holds_every_path_of_the_issue_and_each_file_says_what_stops_it():
    assert len(ATTACKS + OPEN) >= 30
    for path in ATTACKS + OPEN:
        attack = load(path)
        assert re.fullmatch(r"\d\d-[a-z0-9-]+", attack.name), path.name
        assert {"attack", "path", "stopped-by"} <= set(attack.header), f"{path.name}: header incomplete"
        assert attack.requests, f"{path.name}: no object"
    assert {load(p).header["stopped-by"] for p in ATTACKS} <= set(LAYERS)
    numbers = [p.name[:2] for p in ATTACKS + OPEN]
    assert len(numbers) == len(set(numbers)), "each attack has a number of its own"
    corpus = [load(p) for p in ATTACKS + OPEN]
    kinds = {(r.obj["kind"], r.obj.get("roleRef", {}).get("name")) for a in corpus for r in a.requests}
    # Issue 24's "Why": each way around the old guard is in the corpus.
    for needed in [
        ("HelmChart", None),
        ("ClusterRoleBinding", "edit"),
        ("ClusterRoleBinding", "volsync-manager"),
        ("EndpointSlice", None),
        ("Endpoints", None),
        ("Addon", None),
        ("ApplicationSet", None),
    ]:
        assert needed in kinds, needed
    granted = {
        (verb, resource)
        for a in corpus
        for r in a.requests
        for rule in r.obj.get("rules") or []
        for verb in rule.get("verbs", [])
        for resource in rule.get("resources", [])
    }
    for needed in [
        ("create", "serviceaccounts/token"),
        ("get", "nodes/proxy"),
        ("create", "pods/exec"),
        ("delete", "validatingadmissionpolicybindings"),
    ]:
        assert needed in granted, needed
    types = {r.obj.get("spec", {}).get("type") for a in corpus for r in a.requests if r.obj["kind"] == "Service"}
    assert {"NodePort", "LoadBalancer"} <= types


def test_each_attack_is_an_object_kubernetes_would_take():
    """Valid for the cluster's Kubernetes (custom resources aside): a refusal is the layer's, not a typo's."""
    from spitikos.render import schema_problem

    minor = versions.kubernetes_minor(versions.K3S_VERSION)
    for path in ATTACKS + OPEN:
        for request in load(path).requests:
            if request.operation == "DELETE":  # names an object, sends none
                continue
            problem = schema_problem(request.obj, minor)
            assert not problem or problem[0] == "no schema", f"{path.name}: {problem}"


@pytest.mark.parametrize("path", ATTACKS, ids=[p.stem for p in ATTACKS])
def test_each_attack_is_refused_by_the_layer_its_file_names(pi5, path):
    attack = load(path)
    refusal = verdict(pi5, attack.requests)
    assert refusal is not None, f"{attack.name}: every layer admits it ({attack.header['attack']})"
    assert refusal.layer == attack.header["stopped-by"], f"{attack.name}: {refusal}"


@pytest.mark.parametrize("path", OPEN, ids=[p.stem for p in OPEN])
@pytest.mark.xfail(strict=True, reason="an open finding: no layer refuses it yet (docs/security.md)")
def test_an_open_attack_is_refused(pi5, path):
    assert verdict(pi5, load(path).requests) is not None


# --- the inverse: what the organization's real charts apply is admitted ----------------------


def workload(app: dict, charts: Path) -> dict:
    """The Deployment charts/_common/templates/_deployment.tpl makes of an app's `deployment` values
    (the fields Pod Security reads: the template sets no securityContext, host access or volume)."""
    values = read_yaml(charts, f"{app['spec']['source']['path']}/values.yaml")["deployment"]
    name, namespace = app["metadata"]["name"], app["spec"]["destination"]["namespace"]
    container = {"name": name, "image": f"{values['image']['repository']}:{values['image']['tag']}"}
    container |= {k: values[k] for k in ("env", "resources") if k in values}
    labels = {"app.kubernetes.io/name": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"{name}-deployment", "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }


def cluster_object(group: str, kind: str, name: str) -> dict:
    api_version = f"{group}/v1" if group else "v1"
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}}


def root_sync(charts: Path) -> list[Request]:
    """The root Application's sync: the Applications its chart renders."""
    return [Request(a, argocd.ROOT_PROJECT, argocd.NAMESPACE) for a in applications(charts)]


# The RBAC tests/test_guard.py holds against the policies, by the app that makes it (the
# dashboard's login binding is read from its chart: app_objects).
REAL_RBAC = {
    "vault": [VAULT_AUTH],
    "kube-prometheus-stack": [PROMETHEUS_OPERATOR],
    "api": [APP_ROLE],
}


def ingress(app: dict, values: dict) -> dict:
    """The Ingress charts/_common/templates/_ingress.tpl makes of an app's `ingress` values."""
    name, namespace, spec = app["metadata"]["name"], app["spec"]["destination"]["namespace"], values["ingress"]
    backend = {"service": {"name": spec.get("serviceName", name), "port": {"number": spec.get("servicePort", 80)}}}
    rules = [
        {"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}
        for host in spec["hosts"]
    ]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": f"{name}-ingress", "namespace": namespace, "annotations": spec.get("annotations", {})},
        "spec": {"ingressClassName": spec.get("className", "nginx"), "rules": rules},
    }


def real_roles(app: dict) -> list[dict]:
    """The roles of the upstream charts an app installs (tests/test_deployers.py reads their rules from
    the templates), each with a binding of its name to a ServiceAccount of the app's namespace, as
    the charts bind them: Roles in the app's namespace, ClusterRoles cluster-wide."""
    name, namespace = app["metadata"]["name"], app["spec"]["destination"]["namespace"]
    found = []
    for key, rules in REAL_CLUSTER_ROLES.items():
        role_name, _, scope = key.partition(" ")
        if not role_name.startswith(name):
            continue
        kind = "Role" if scope == "(Role)" else "ClusterRole"
        where = {"namespace": namespace} if kind == "Role" else {}
        subject = {"kind": "ServiceAccount", "name": role_name, "namespace": namespace}
        found.append(
            {"apiVersion": f"{RBAC}/v1", "kind": kind, "metadata": {"name": role_name, **where}, "rules": rules}
        )
        found.append(
            {
                "apiVersion": f"{RBAC}/v1",
                "kind": f"{kind}Binding",
                "metadata": {"name": role_name, **where},
                "roleRef": {"apiGroup": RBAC, "kind": kind, "name": role_name},
                "subjects": [subject],
            }
        )
    return found


def app_objects(app: dict, charts: Path) -> list[dict]:
    """What one app's sync applies, as far as the vendored files show it."""
    name, namespace = app["metadata"]["name"], app["spec"]["destination"]["namespace"]
    values = read_yaml(charts, f"{app['spec']['source']['path']}/values.yaml") or {}
    # The namespace exists (Pulumi makes every application namespace, components/deployers.py):
    # `CreateNamespace=true` only reads it, and `managedNamespaceMetadata` patches its labels.
    objects = [applied_namespace(app)] if "managedNamespaceMetadata" in app["spec"]["syncPolicy"] else []
    objects += [
        cluster_object(group, kind, object_name)
        for group, kind, object_name in REAL_APP_CLUSTER_OBJECTS[name]
        if kind == "CustomResourceDefinition"
    ]
    webhooks = webhook_configurations(charts)
    objects += [webhooks[(k, n)] for _, k, n in REAL_APP_CLUSTER_OBJECTS[name] if k.endswith("Configuration")]
    objects += REAL_RBAC.get(name, []) + real_roles(app)
    if name == "kubernetes-dashboard":
        objects += dashboard_login(charts)
    if name == "kube-prometheus-stack":
        objects.append(node_exporter(charts))
    if "deployment" in values:
        objects.append(workload(app, charts))
    if "ingress" in values:
        objects.append(ingress(app, values))
    # The _common chart's routes (docs/migration/charts-7b7f06e.gateway.patch, _route.tpl): each a
    # route of its kind, with a BackendTLSPolicy for an HTTPS backend.
    for i, route in enumerate(values.get("routes", [])):
        meta = {"name": f"{name}-route-{i}", "namespace": namespace}
        gateway_api = "gateway.networking.k8s.io/v1"
        objects.append({"apiVersion": gateway_api, "kind": route.get("kind", "HTTPRoute"), "metadata": meta})
        if "backendTLS" in route:
            objects.append({"apiVersion": gateway_api, "kind": "BackendTLSPolicy", "metadata": meta})
    if "scaledobject" in values:  # the _common chart's KEDA ScaledObject (keda.sh/v1alpha1)
        meta = {"name": f"{name}-scaledobject", "namespace": namespace}
        objects.append({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": meta})
    if "scaleToZero" in values:  # charts-7b7f06e.scale-to-zero.patch: templates/scale-to-zero.yaml
        meta = {"name": name, "namespace": namespace}
        hosts = [host for route in values.get("routes", []) for host in route.get("hostnames", [])]
        spec = {"target": {"service": name, "port": values["service"]["port"]}, "rules": [{"hosts": hosts}]}
        route = {"apiVersion": "http.keda.sh/v1beta1", "kind": "InterceptorRoute", "metadata": meta, "spec": spec}
        objects.append(route)
        objects.append({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": meta})
    templates = charts / app["spec"]["source"]["path"] / "templates"
    for template in sorted([*templates.glob("*servicemonitor.yaml"), *templates.glob("*podmonitor.yaml")]):
        release = {"Name": app["spec"]["source"].get("helm", {}).get("releaseName", name), "Namespace": namespace}
        objects.append(yaml.safe_load(render(template.read_text(), {}, Release=release)))
    return objects


def real_syncs(charts: Path) -> dict[str, list[Request]]:
    """What each real Application's sync applies: the root's Applications; each app's Namespace
    (with Argo CD's managedNamespaceMetadata), its cluster-wide objects but its roles and bindings
    (test_migration.REAL_APP_CLUSTER_OBJECTS names them without their rules), the RBAC test_guard
    holds, and what the _common chart and the apps' own templates make of their values."""
    syncs = {"root": root_sync(charts)}
    for app in applications(charts):
        namespace = app["spec"]["destination"]["namespace"]
        syncs[app["metadata"]["name"]] = [
            Request(o, app["spec"]["project"], namespace, "UPDATE" if o["kind"] == "Namespace" else "CREATE")
            for o in app_objects(app, charts)
        ]
    return syncs


def test_every_object_the_real_charts_apply_is_admitted(pi5, patched):  # noqa: F811
    syncs = real_syncs(patched["charts"])
    assert set(syncs) == {"root", "api", "homepage", "vault", "kubernetes-dashboard", "kube-prometheus-stack"}
    kinds = {r.obj["kind"] for sync in syncs.values() for r in sync}
    assert {"Application", "Namespace", "Deployment", "DaemonSet", "ClusterRoleBinding"} <= kinds
    # What the Gateway's and scale to zero's patches make of the apps' values.
    assert {"HTTPRoute", "GRPCRoute", "BackendTLSPolicy", "PodMonitor", "InterceptorRoute", "ScaledObject"} <= kinds
    assert sum(len(s) for s in syncs.values()) >= 30
    for name, requests in syncs.items():
        assert verdict(pi5, requests) is None, f"{name}: {verdict(pi5, requests)}"
    # Without the org's patch, the node exporter may gain privileges, and Vault's injector sees
    # every namespace's pods: the guard refuses both.
    exporter = Request(node_exporter(FIXTURES / "charts"), argocd.APPS_PROJECT, "monitoring")
    injector = webhook_configurations(FIXTURES / "charts")[("MutatingWebhookConfiguration", "vault-agent-injector-cfg")]
    for unpatched in (exporter, Request(injector, argocd.APPS_PROJECT, "vault")):
        assert verdict(pi5, [unpatched]).layer == "admission", unpatched.obj["kind"]
    # Unpatched, the root applied what Pulumi owns now: the same layers refuse it.
    refusal = verdict(pi5, root_sync(FIXTURES / "charts"))
    assert refusal is not None and refusal.layer == "project", refusal


def test_each_real_application_is_applied_as_the_deployer_of_its_own_namespace(pi5, patched):  # noqa: F811
    """pi5's `appNamespaces` are the real root chart's destinations, no more; each Application is
    applied as its namespace's deployer (Argo CD: the first destinationServiceAccounts entry
    matching the Application's destination), which reaches the cluster exactly when its charts
    install cluster-scoped objects besides their Namespace."""
    apps = applications(patched["charts"])
    listed = yaml.safe_load((CORPUS.parent.parent / "Pulumi.pi5.yaml").read_text())["config"]["spitikos:appNamespaces"]
    reach = dict(entry.partition("=")[::2] for entry in listed)
    assert set(reach) == {a["spec"]["destination"]["namespace"] for a in apps}
    for app in apps:
        namespace = app["spec"]["destination"]["namespace"]
        assert (
            pi5.identity(app["spec"]["project"], namespace)
            == f"system:serviceaccount:argocd:argocd-deploys-{namespace}"
        )
        cluster_wide = [k for _, k, _ in REAL_APP_CLUSTER_OBJECTS[app["metadata"]["name"]] if k != "Namespace"]
        assert bool(reach[namespace]) == bool(cluster_wide), namespace
    assert pi5.identity(argocd.APPS_PROJECT, "newapp") is None, "an unlisted destination has no identity"


# --- the model's own semantics, on small cases ------------------------------------------------


def _binding(kind: str, name: str, role: str, namespace: str = "") -> dict:
    meta = {"name": name} | ({"namespace": namespace} if namespace else {})
    ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role}
    return {"kind": kind, "metadata": meta, "roleRef": ref, "subjects": [{"kind": "User", "name": "deployer"}]}


def _role(name: str, *rules: dict, **extra) -> dict:
    return {"kind": "ClusterRole", "metadata": {"name": name}, "rules": list(rules), **extra}


def _rule(group: str, resource: str, verbs: str, names: str = "") -> dict:
    rule = {"apiGroups": [group], "resources": [resource], "verbs": verbs.split(",")}
    return rule | ({"resourceNames": names.split(",")} if names else {})


def test_rbac_escalation_check_follows_kubernetes():
    """pkg/registry/rbac/validation: a role only with what its creator holds (or `escalate`), an
    aggregationRule only with everything, a binding only to what its creator holds (or `bind` on
    that role by name); resourceNames narrow an owner's rule, `*/sub` covers a subresource."""
    rbac = Rbac()
    rbac.add(
        _role("holds", _rule("", "pods", "get,list"), _rule("", "*/status", "get"), _rule("", "secrets", "get", "one"))
    )
    rbac.add(_role("target", _rule("", "nodes", "get")))
    rbac.add(_binding("ClusterRoleBinding", "deployer", "holds"))
    assert not escalation_refusal(
        rbac, "deployer", _role("ok", _rule("", "pods", "get"), _rule("", "pods/status", "get")), ""
    )
    assert escalation_refusal(rbac, "deployer", _role("more", _rule("", "pods", "delete")), "")
    assert not escalation_refusal(rbac, "deployer", _role("named", _rule("", "secrets", "get", "one")), "")
    assert escalation_refusal(rbac, "deployer", _role("all-secrets", _rule("", "secrets", "get")), "")
    assert escalation_refusal(rbac, "deployer", _role("agg", aggregationRule={"clusterRoleSelectors": []}), "")
    assert escalation_refusal(rbac, "deployer", _binding("ClusterRoleBinding", "b", "target"), "")
    rbac.add(_role("binder", _rule("rbac.authorization.k8s.io", "clusterroles", "bind", "target")))
    rbac.add(_binding("ClusterRoleBinding", "deployer-binds", "binder"))
    assert not escalation_refusal(rbac, "deployer", _binding("ClusterRoleBinding", "b", "target"), "")
    rbac.add(_role("other", _rule("", "nodes", "delete")))
    assert escalation_refusal(rbac, "deployer", _binding("ClusterRoleBinding", "b", "other"), "")
    assert uncovered([_rule("*", "*", "*")], [_rule("x.io", "things/scale", "patch")]) == []


def test_a_role_binding_holds_in_its_namespace_and_on_that_namespace_object_alone():
    """RBAC's rule resolver: a RoleBinding's rules hold for requests in its namespace only; a request
    for `namespaces/<n>` (any verb but create) carries the namespace `<n>` (k8s.io/apiserver
    requestinfo.go), so a RoleBinding in `<n>` covers that Namespace object and no other, and a
    ClusterRole made from such rights fails the escalation check (it needs them in every namespace)."""
    rbac = Rbac()
    rbac.add(_role("deployer", _rule("apps", "deployments", "create"), _rule("", "namespaces", "get,patch")))
    rbac.add(_binding("RoleBinding", "deploys", "deployer", "api"))
    assert rbac.allows("deployer", "create", "apps", "deployments", "api")
    assert not rbac.allows("deployer", "create", "apps", "deployments", "homepage")
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "api"}}
    other = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "homepage"}}
    assert authorized_namespace(Request(namespace, destination="api", operation="UPDATE")) == "api"
    assert authorized_namespace(Request(other, destination="api", operation="UPDATE")) == "homepage"
    assert authorized_namespace(Request(namespace, destination="api")) == "", "a create posts to the collection"
    made_here = _role("everywhere", _rule("apps", "deployments", "create"))
    assert escalation_refusal(rbac, "deployer", made_here, "")
    assert not escalation_refusal(rbac, "deployer", {**made_here, "kind": "Role"}, "api")
