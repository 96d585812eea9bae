"""The four layers an object from Git meets on its way into the cluster, evaluated offline on the
stack's recorded objects, in the order the requests meet them:

1. `project`: Argo CD's AppProject rules (destinations, kinds, names, source repositories; for an
   Application, its own project's rules), before Argo CD sends anything;
2. `rbac`: Kubernetes' RBAC authorizer for the identity that applies the object (the deployer
   ServiceAccount the project's `destinationServiceAccounts` names when sync impersonation is on,
   else Argo CD's application controller), with RBAC's escalation check on roles and bindings;
3. `admission`: the stack's ValidatingAdmissionPolicies (CEL, as tests/test_guard.py runs them);
4. `pod-security`: Pod Security admission at the namespace's level (spitikos/chart_checks.py).

`verdict()` returns the first layer that refuses an object and why, or None when all admit it.
What only a live API server shows (CEL cost limits, the policies' type checks, webhooks of
other parties, controllers acting later) is outside this model: docs/security.md says what.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

import yaml
from test_guard import denying_policies, judge, matches
from test_stack import permits_namespace, projects

from components import argocd, k3s
from components.charts import chart_name
from components.guard import ARGOCD_CONTROLLER, ENFORCE_LABEL
from spitikos import chart_checks

LAYERS = ("project", "rbac", "admission", "pod-security")
RBAC = "rbac.authorization.k8s.io"
VENDOR = Path(__file__).resolve().parent.parent / "charts" / "vendor"

# --- kinds -----------------------------------------------------------------------------------

# Cluster-scoped kinds (Kubernetes 1.35's API, and the CRDs the platform serves); every other kind
# is namespaced. Plurals that are not the lower-cased kind plus "s".
CLUSTER_SCOPED = {
    ("", "Namespace"),
    ("", "Node"),
    ("", "PersistentVolume"),
    (RBAC, "ClusterRole"),
    (RBAC, "ClusterRoleBinding"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("apiregistration.k8s.io", "APIService"),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("storage.k8s.io", "StorageClass"),
    ("networking.k8s.io", "IngressClass"),
    ("node.k8s.io", "RuntimeClass"),
}
PLURALS = {"Endpoints": "endpoints", "Ingress": "ingresses", "NetworkPolicy": "networkpolicies"}
PLURALS |= {"PriorityClass": "priorityclasses", "StorageClass": "storageclasses", "IngressClass": "ingressclasses"}
PLURALS |= {"BackendTLSPolicy": "backendtlspolicies"}
PLURALS |= {"ValidatingAdmissionPolicy": "validatingadmissionpolicies", "RuntimeClass": "runtimeclasses"}


def group_of(obj: Mapping) -> str:
    api_version = obj["apiVersion"]
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def resource_of(obj: Mapping) -> str:
    return PLURALS.get(obj["kind"], obj["kind"].lower() + "s")


def namespaced(obj: Mapping) -> bool:
    return (group_of(obj), obj["kind"]) not in CLUSTER_SCOPED


# --- Kubernetes' own roles -------------------------------------------------------------------


def _rules(*lines: str) -> list[dict]:
    """`group,group|resource,resource|verb,verb[|name,name]` per rule; `url:` rules for paths."""
    found = []
    for line in lines:
        if line.startswith("url:"):
            urls, verbs = line[4:].split("|")
            found.append({"nonResourceURLs": urls.split(","), "verbs": verbs.split(",")})
            continue
        groups, resources, verbs, *names = line.split("|")
        rule = {"apiGroups": groups.split(","), "resources": resources.split(","), "verbs": verbs.split(",")}
        found.append(rule | ({"resourceNames": names[0].split(",")} if names else {}))
    return found


WRITE = "create,delete,deletecollection,patch,update"
READ = "get,list,watch"
# Kubernetes 1.35's bootstrap ClusterRoles (plugin/pkg/auth/authorizer/rbac/bootstrappolicy/
# policy.go; testdata/cluster-roles.yaml): `view`, `edit` and `admin` as aggregation fills them
# (system:aggregate-to-view, -edit, -admin).
VIEW = _rules(
    "|configmaps,endpoints,persistentvolumeclaims,persistentvolumeclaims/status,pods,replicationcontrollers,"
    f"replicationcontrollers/scale,serviceaccounts,services,services/status|{READ}",
    "|bindings,events,limitranges,namespaces/status,pods/log,pods/status,replicationcontrollers/status,"
    f"resourcequotas,resourcequotas/status|{READ}",
    f"|namespaces|{READ}",
    f"discovery.k8s.io|endpointslices|{READ}",
    "apps|controllerrevisions,daemonsets,daemonsets/status,deployments,deployments/scale,deployments/status,"
    f"replicasets,replicasets/scale,replicasets/status,statefulsets,statefulsets/scale,statefulsets/status|{READ}",
    f"autoscaling|horizontalpodautoscalers,horizontalpodautoscalers/status|{READ}",
    f"batch|cronjobs,cronjobs/status,jobs,jobs/status|{READ}",
    f"policy|poddisruptionbudgets,poddisruptionbudgets/status|{READ}",
    f"networking.k8s.io|ingresses,ingresses/status,networkpolicies|{READ}",
)
EDIT = VIEW + _rules(
    f"|pods/attach,pods/exec,pods/portforward,pods/proxy,secrets,services/proxy|{READ}",
    "|serviceaccounts|impersonate",
    f"|pods,pods/attach,pods/exec,pods/portforward,pods/proxy|{WRITE}",
    "|pods/eviction|create",
    "|configmaps,events,persistentvolumeclaims,replicationcontrollers,replicationcontrollers/scale,secrets,"
    f"serviceaccounts,services,services/proxy|{WRITE}",
    "|serviceaccounts/token|create",
    "apps|daemonsets,deployments,deployments/rollback,deployments/scale,replicasets,replicasets/scale,"
    f"statefulsets,statefulsets/scale|{WRITE}",
    f"autoscaling|horizontalpodautoscalers|{WRITE}",
    f"batch|cronjobs,jobs|{WRITE}",
    f"policy|poddisruptionbudgets|{WRITE}",
    f"networking.k8s.io|ingresses,networkpolicies|{WRITE}",
    f"coordination.k8s.io|leases|{WRITE},get,list,watch",
)  # and the legacy `extensions` group's rules, left out: a subset of a role's rules refuses no less
ADMIN = EDIT + _rules(
    "authorization.k8s.io|localsubjectaccessreviews|create", f"{RBAC}|rolebindings,roles|{WRITE},get,list,watch"
)
FULL_AUTHORITY = _rules("*|*|*", "url:*|*")
KUBERNETES_ROLES = {
    "cluster-admin": FULL_AUTHORITY,
    "admin": ADMIN,
    "edit": EDIT,
    "view": VIEW,
    "system:auth-delegator": _rules(
        "authentication.k8s.io|tokenreviews|create", "authorization.k8s.io|subjectaccessreviews|create"
    ),
}


def vendored_cluster_role(template: str) -> list[dict]:
    """The `rules:` of a vendored chart's ClusterRole template, where they are plain YAML."""
    text = (VENDOR / template).read_text().split("\nrules:\n", 1)[1]
    if "{{" in text:
        raise ValueError(f"{template}: its rules are templated; render them")
    return yaml.safe_load(text)


# The platform's charts' ClusterRoles that the corpus binds, as the vendored charts define them.
PLATFORM_ROLES = {"volsync-manager": "volsync-0.16.0/templates/clusterrole-manager.yaml"}

# --- the stack's identities and rights -------------------------------------------------------


def service_account(username: str) -> tuple[str, str] | None:
    match = re.fullmatch(r"system:serviceaccount:([^:]+):([^:]+)", username)
    return (match[1], match[2]) if match else None


def groups_of(username: str) -> list[str]:
    sa = service_account(username)
    extra = ["system:serviceaccounts", f"system:serviceaccounts:{sa[0]}"] if sa else []
    return [*extra, "system:authenticated"]


def rule_allows(rule: Mapping, verb: str, group: str, resource: str, name: str = "") -> bool:
    """RBAC's RuleAllows (plugin/pkg/auth/authorizer/rbac/rbac.go) for a resource request."""
    if "nonResourceURLs" in rule and not rule.get("resources"):
        return False
    verbs, groups, resources = rule.get("verbs") or [], rule.get("apiGroups") or [], rule.get("resources") or []
    names = rule.get("resourceNames") or []
    sub = resource.split("/", 1)[1] if "/" in resource else None
    resource_ok = "*" in resources or resource in resources or (sub is not None and f"*/{sub}" in resources)
    return (
        ("*" in verbs or verb in verbs)
        and ("*" in groups or group in groups)
        and resource_ok
        and (not names or name in names)
    )


def _covers(owner: Mapping, verb: str, group: str, resource: str, name: str | None, url: str | None) -> bool:
    """validation.ruleCovers (pkg/registry/rbac/validation/policy_compact.go / rule.go) for one
    broken-down rule of the servant."""
    verbs = owner.get("verbs") or []
    if not ("*" in verbs or verb in verbs):
        return False
    if url is not None:
        return any(
            u == "*" or u == url or (u.endswith("*") and url.startswith(u[:-1]))
            for u in owner.get("nonResourceURLs") or []
        )
    groups, resources = owner.get("apiGroups") or [], owner.get("resources") or []
    sub = resource.split("/", 1)[1] if "/" in resource else None
    if not ("*" in groups or group in groups):
        return False
    if not ("*" in resources or resource in resources or (sub is not None and f"*/{sub}" in resources)):
        return False
    names = owner.get("resourceNames") or []
    return not names or (name is not None and name in names)


def breakdown(rule: Mapping) -> Iterable[tuple[str, str, str, str | None, str | None]]:
    """validation.BreakdownRule: one (verb, group, resource, name, url) per combination."""
    for verb in rule.get("verbs") or []:
        for url in rule.get("nonResourceURLs") or []:
            yield verb, "", "", None, url
        for group in rule.get("apiGroups") or []:
            for resource in rule.get("resources") or []:
                for name in rule.get("resourceNames") or [None]:
                    yield verb, group, resource, name, None


def uncovered(owner_rules: Sequence[Mapping], servant_rules: Sequence[Mapping]) -> list[str]:
    """validation.Covers: the servant's broken-down rules no owner rule covers."""
    return [
        f"{verb} {url or (group or 'core') + '/' + resource}{'/' + name if name else ''}"
        for rule in servant_rules
        for verb, group, resource, name, url in breakdown(rule)
        if not any(_covers(o, verb, group, resource, name, url) for o in owner_rules)
    ]


@dataclass
class Rbac:
    """The cluster's roles and bindings, as RBAC's rule resolver sees them."""

    cluster_roles: dict[str, dict] = field(default_factory=dict)
    roles: dict[tuple[str, str], dict] = field(default_factory=dict)
    cluster_bindings: list[dict] = field(default_factory=list)
    bindings: list[dict] = field(default_factory=list)

    def add(self, obj: Mapping) -> None:
        kind, meta = obj["kind"], obj["metadata"]
        if kind == "ClusterRole":
            self.cluster_roles[meta["name"]] = dict(obj)
        elif kind == "Role":
            self.roles[(meta["namespace"], meta["name"])] = dict(obj)
        elif kind == "ClusterRoleBinding":
            self.cluster_bindings.append(dict(obj))
        elif kind == "RoleBinding":
            self.bindings.append(dict(obj))

    def copy(self) -> Rbac:
        return Rbac(dict(self.cluster_roles), dict(self.roles), list(self.cluster_bindings), list(self.bindings))

    def cluster_role_rules(self, name: str) -> list[dict] | None:
        role = self.cluster_roles.get(name)
        if role is None:
            return None
        if not role.get("aggregationRule"):
            return role.get("rules") or []
        # The controller-manager fills an aggregated ClusterRole with the rules of those it selects.
        selectors = role["aggregationRule"].get("clusterRoleSelectors") or []
        return [
            rule
            for other in self.cluster_roles.values()
            if other is not role
            and any(chart_checks.selects(s, other["metadata"].get("labels") or {}) for s in selectors)
            for rule in other.get("rules") or []
        ]

    def role_ref_rules(self, ref: Mapping, namespace: str) -> list[dict] | None:
        if ref["kind"] == "ClusterRole":
            return self.cluster_role_rules(ref["name"])
        role = self.roles.get((namespace, ref["name"]))
        return None if role is None else role.get("rules") or []

    def rules_for(self, user: str, namespace: str) -> list[dict]:
        """The rule resolver's RulesFor: ClusterRoleBindings, and RoleBindings in `namespace`."""
        found = []
        for binding in self.cluster_bindings:
            if binds(binding, user):
                found += self.role_ref_rules(binding["roleRef"], "") or []
        for binding in self.bindings:
            if namespace and binding["metadata"]["namespace"] == namespace and binds(binding, user):
                found += self.role_ref_rules(binding["roleRef"], namespace) or []
        return found

    def allows(self, user: str, verb: str, group: str, resource: str, namespace: str, name: str = "") -> bool:
        return any(rule_allows(r, verb, group, resource, name) for r in self.rules_for(user, namespace))


def binds(binding: Mapping, user: str) -> bool:
    sa, groups = service_account(user), groups_of(user)
    for subject in binding.get("subjects") or []:
        kind = subject.get("kind")
        if kind == "ServiceAccount" and sa == (subject.get("namespace"), subject.get("name")):
            return True
        if kind == "User" and subject.get("name") == user:
            return True
        if kind == "Group" and subject.get("name") in groups:
            return True
    return False


def escalation_refusal(rbac: Rbac, user: str, obj: Mapping, namespace: str) -> str | None:
    """What the RBAC registry's storage refuses (pkg/registry/rbac/*/policybased/storage.go): a role
    whose rules its creator does not hold, unless it may `escalate`; a ClusterRole with an
    aggregationRule unless its creator holds everything; a binding to a role whose rules its
    creator does not hold, unless it may `bind` that role (escalation_check.go)."""
    kind, name = obj["kind"], obj["metadata"]["name"]
    if kind in ("Role", "ClusterRole"):
        if rbac.allows(user, "escalate", RBAC, resource_of(obj), namespace, name):
            return None
        missing = uncovered(rbac.rules_for(user, namespace), obj.get("rules") or [])
        if missing:
            return f"{kind} {name} grants what {user} does not hold: {', '.join(missing[:4])}"
        if kind == "ClusterRole" and obj.get("aggregationRule") and uncovered(rbac.rules_for(user, ""), FULL_AUTHORITY):
            return f"ClusterRole {name}: must have cluster-admin privileges to use the aggregationRule"
    elif kind in ("RoleBinding", "ClusterRoleBinding"):
        ref = obj["roleRef"]
        ref_resource = "clusterroles" if ref["kind"] == "ClusterRole" else "roles"
        if rbac.allows(user, "bind", RBAC, ref_resource, namespace, ref["name"]):
            return None
        rules = rbac.role_ref_rules(ref, namespace)
        if rules is None:
            raise LookupError(f"{kind} {name}: the rules of {ref['kind']} {ref['name']} are unknown here: add them")
        missing = uncovered(rbac.rules_for(user, namespace), rules)
        if missing:
            return (
                f"{kind} {name} binds {ref['kind']} {ref['name']}, whose {', '.join(missing[:4])} {user} does not hold"
            )
    return None


# --- the cluster as the stack leaves it ------------------------------------------------------

RELEASE = "kubernetes:helm.sh/v3:Release"
IMPERSONATION = "application.sync.impersonation.enabled"


@dataclass
class Cluster:
    projects: dict[str, dict]
    rbac: Rbac
    policies: list[dict]
    levels: dict[str, str]
    """Each namespace's enforced Pod Security level where something labels it."""
    default_level: str
    exempt: frozenset[str]
    impersonation: bool
    stored: dict[tuple[str, str, str, str], dict] = field(default_factory=dict)
    """The objects the program writes, by (group, kind, namespace, name): what an UPDATE changes."""

    def old(self, request: Request) -> dict:
        """The stored object an UPDATE changes: the program's where it made one (its labels say so),
        else one that exists without them (k3s's, a chart's, an earlier sync's)."""
        obj = request.obj
        key = (group_of(obj), obj["kind"], request.namespace, obj["metadata"]["name"])
        where = {"namespace": request.namespace} if request.namespace else {}
        stand_in = {"apiVersion": obj["apiVersion"], "kind": obj["kind"]}
        return self.stored.get(key) or stand_in | {"metadata": {"name": obj["metadata"]["name"], **where}}

    def identity(self, project: str, destination: str) -> str | None:
        """Whom Argo CD applies an application as: with sync impersonation, the first of the project's
        destinationServiceAccounts whose server and namespace match the destination (argo-cd
        controller/sync.go, deriveServiceAccountToImpersonate), else its application controller."""
        if not self.impersonation:
            return ARGOCD_CONTROLLER
        for entry in self.projects[project].get("destinationServiceAccounts") or []:
            if fnmatchcase(argocd.IN_CLUSTER, entry.get("server", "")) and fnmatchcase(
                destination, entry.get("namespace", "")
            ):
                account = entry["defaultServiceAccount"]
                return f"system:serviceaccount:{account if ':' in account else f'{destination}:{account}'}"
        return None


def argocd_values(recording) -> dict:
    (release,) = [r for r in recording.of_type(RELEASE) if chart_name(r.values) == "argo-cd"]
    return release.values["values"]


def controller_rules(values: Mapping) -> list[dict]:
    """The chart's ClusterRole for the application controller (argo-cd 10.1.1,
    templates/argocd-application-controller/clusterrole.yaml): `controller.clusterRoleRules.rules`
    when enabled, else `*` on everything. The chart binds it to the controller's ServiceAccount."""
    custom = (values.get("controller") or {}).get("clusterRoleRules") or {}
    return custom.get("rules") or [] if custom.get("enabled") else FULL_AUTHORITY


def cluster(recording, namespace_labels: Mapping[str, Mapping[str, str]] = {}) -> Cluster:
    """The cluster after `pulumi up` of `recording`, plus the namespaces Argo CD labels for the
    real applications (`namespace_labels`: managedNamespaceMetadata)."""
    rbac = Rbac()
    for name, rules in KUBERNETES_ROLES.items():
        rbac.add({"kind": "ClusterRole", "metadata": {"name": name}, "rules": rules})
    for name, template in PLATFORM_ROLES.items():
        rbac.add({"kind": "ClusterRole", "metadata": {"name": name}, "rules": vendored_cluster_role(template)})
    values = argocd_values(recording)
    rbac.add(
        {
            "kind": "ClusterRole",
            "metadata": {"name": "argocd-application-controller"},
            "rules": controller_rules(values),
        }
    )
    namespace, name = service_account(ARGOCD_CONTROLLER) or ("", "")
    rbac.add(
        {
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "argocd-application-controller"},
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "argocd-application-controller"},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        }
    )
    for kind in ("ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding"):
        for reg in recording.kubernetes(kind):
            rbac.add(reg.values)
    config = json.loads(k3s.pod_security_config())["plugins"][0]["configuration"]
    levels = {
        ns.values["metadata"]["name"]: ns.values["metadata"]["labels"][ENFORCE_LABEL]
        for ns in recording.kubernetes("Namespace")
        if ENFORCE_LABEL in (ns.values["metadata"].get("labels") or {})
    }
    levels |= {ns: labels[ENFORCE_LABEL] for ns, labels in namespace_labels.items() if ENFORCE_LABEL in labels}
    cm = (values.get("configs") or {}).get("cm") or {}
    stored = {
        (group_of(o), o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
        for o in (r.values for r in recording.all() if r.type.startswith("kubernetes:"))
        if "kind" in o and "name" in (o.get("metadata") or {})
    }
    return Cluster(
        projects=projects(recording),
        rbac=rbac,
        policies=denying_policies(recording),
        levels=levels,
        default_level=config["defaults"]["enforce"],
        exempt=frozenset(config["exemptions"]["namespaces"]),
        impersonation=str(cm.get(IMPERSONATION, "false")).lower() == "true",
        stored=stored,
    )


# --- the layers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """An object a sync applies: by an Application of `project` whose destination is `destination`."""

    obj: dict
    project: str = argocd.APPS_PROJECT
    destination: str = "api"
    operation: str = "CREATE"
    user: str | None = None
    """Who sends it when it is not Argo CD: a pod's ServiceAccount, with what the sync's earlier
    objects granted it (the runtime path). Argo CD's project then plays no part."""

    @property
    def namespace(self) -> str:
        return (self.obj["metadata"].get("namespace") or self.destination) if namespaced(self.obj) else ""


def _in(patterns: Iterable[Mapping], group: str, kind: str, name: str | None = None) -> bool:
    """Argo CD's isResourceInList (filepath.Match on kind and group) and, for cluster-scoped
    entries with `name`, isNamedResourceInList (Argo CD >= 3.3)."""
    return any(
        fnmatchcase(kind, e["kind"])
        and fnmatchcase(group, e["group"])
        and (name is None or fnmatchcase(name, e.get("name") or "*"))
        for e in patterns
    )


def project_refusal(c: Cluster, request: Request) -> str | None:
    """Argo CD's checks before it applies anything (app_project_types.go IsDestinationPermitted,
    IsGroupKindPermitted and its named variant), and that the project names whom to apply it as."""
    obj, spec = request.obj, c.projects.get(request.project)
    if spec is None:
        return f"project {request.project} does not exist"
    group, kind, name = group_of(obj), obj["kind"], obj["metadata"]["name"]
    if namespaced(obj):
        if not permits_namespace(spec, request.namespace):
            return f"project {request.project} may not deploy into namespace {request.namespace}"
        white, black = spec.get("namespaceResourceWhitelist") or [], spec.get("namespaceResourceBlacklist") or []
        if white and not _in(white, group, kind):
            return f"project {request.project} may not create {group}/{kind}"
        if _in(black, group, kind):
            return f"project {request.project} refuses {group}/{kind}"
    else:
        white, black = spec.get("clusterResourceWhitelist") or [], spec.get("clusterResourceBlacklist") or []
        if not _in(white, group, kind, name) or _in(black, group, kind, name):
            return f"project {request.project} may not create {kind} {name}"
    if c.impersonation and c.identity(request.project, request.destination) is None:
        return f"project {request.project} names no ServiceAccount for namespace {request.destination}"
    if (group, kind) == ("argoproj.io", "Application"):
        return application_refusal(c, obj)
    return None


def application_refusal(c: Cluster, app: Mapping) -> str | None:
    """An Application's own project must exist and admit its source and destination (Argo CD
    refuses to sync it otherwise; app_project_types.go IsSourcePermitted, IsDestinationPermitted)."""
    spec = app["spec"]
    project = c.projects.get(spec.get("project") or argocd.APPS_PROJECT)
    if project is None:
        return f"Application {app['metadata']['name']} names project {spec.get('project')}, which does not exist"
    sources = [spec["source"]] if "source" in spec else spec.get("sources") or []
    for source in sources:
        if not any(fnmatchcase(source["repoURL"], pattern) for pattern in project.get("sourceRepos") or []):
            return f"Application {app['metadata']['name']}: source {source['repoURL']} is not one its project admits"
    destination = spec["destination"]
    if destination.get("server") != argocd.IN_CLUSTER or not permits_namespace(project, destination["namespace"]):
        return f"Application {app['metadata']['name']}: its project may not deploy into {destination.get('namespace')}"
    return None


def authorized_namespace(request: Request) -> str:
    """The namespace RBAC authorizes a request in: the object's; for a Namespace object the request
    names (every verb but create, which posts to the collection), the namespace itself, since
    `/api/v1/namespaces/<n>` carries the namespace `<n>` (k8s.io/apiserver requestinfo.go), so a
    RoleBinding in `<n>` grants rights on that Namespace object."""
    obj = request.obj
    if (group_of(obj), obj["kind"]) == ("", "Namespace") and request.operation != "CREATE":
        return obj["metadata"]["name"]
    return request.namespace


# The verb RBAC authorizes for an admission operation (an UPDATE of Argo CD's apply is a patch).
VERBS = {"CREATE": "create", "UPDATE": "patch", "DELETE": "delete"}


def requester(c: Cluster, request: Request) -> str | None:
    """The request's user: the pod's ServiceAccount it names, else whom Argo CD applies it as."""
    return request.user or c.identity(request.project, request.destination)


def rbac_refusal(c: Cluster, request: Request, rbac: Rbac) -> str | None:
    user = requester(c, request)
    assert user is not None, "the project layer refuses a destination without an identity"
    obj = request.obj
    verb = VERBS[request.operation]
    name = "" if verb == "create" else obj["metadata"]["name"]
    namespace = authorized_namespace(request)
    if not rbac.allows(user, verb, group_of(obj), resource_of(obj), namespace, name):
        where = f" in {namespace}" if namespace else ""
        return f"{user} may not {verb} {resource_of(obj)}.{group_of(obj) or 'core'}{where}"
    if group_of(obj) == RBAC and verb != "delete":
        return escalation_refusal(rbac, user, obj, request.namespace)
    return None


def admission_refusal(c: Cluster, request: Request) -> str | None:
    obj, user = request.obj, requester(c, request)
    assert user is not None
    group = group_of(obj)
    version = obj["apiVersion"].rsplit("/", 1)[-1]
    admission = {
        "kind": {"group": group, "version": version, "kind": obj["kind"]},
        "resource": {"group": group, "version": version, "resource": resource_of(obj)},
        "namespace": request.namespace,
        "name": obj["metadata"]["name"],
        "operation": request.operation,
        "userInfo": {"username": user, "groups": groups_of(user)},
    }
    body = {**obj, "metadata": {**obj["metadata"], **({"namespace": request.namespace} if request.namespace else {})}}
    # `judge` converts the request to CEL before it asks whether the policy matches: ask first.
    # A DELETE carries no object, only the stored one.
    old = c.old(request) if request.operation != "CREATE" else None
    new = None if request.operation == "DELETE" else body
    for spec in (spec for spec in c.policies if matches(spec, admission)):
        verdict = judge(spec, admission, new, old)
        if not verdict.allowed:
            return verdict.message
    return controlled_pod_refusal(c, request)


# Who creates a workload's pods: the controller-manager's controllers (a Deployment's through its
# ReplicaSet, a CronJob's through its Job), each as its own ServiceAccount in kube-system.
POD_CREATORS = {
    "Deployment": "replicaset-controller",
    "ReplicaSet": "replicaset-controller",
    "DaemonSet": "daemon-set-controller",
    "StatefulSet": "statefulset-controller",
    "Job": "job-controller",
    "CronJob": "job-controller",
}


def controlled_pod_refusal(c: Cluster, request: Request) -> str | None:
    """The policies on the Pods a workload's controller creates (a policy may judge Pods whoever
    makes them, as Pod Security does): the workload is stored, its pods are refused."""
    template = chart_checks.pod_template(request.obj)
    creator = POD_CREATORS.get(request.obj["kind"])
    if template is None or creator is None:
        return None
    user = f"system:serviceaccount:kube-system:{creator}"
    name = f"{request.obj['metadata']['name']}-pod"
    admission = {
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": request.namespace,
        "name": name,
        "operation": "CREATE",
        "userInfo": {"username": user, "groups": groups_of(user)},
    }
    metadata = {**(template.get("metadata") or {}), "name": name, "namespace": request.namespace}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template.get("spec") or {}}
    for spec in (spec for spec in c.policies if matches(spec, admission)):
        verdict = judge(spec, admission, pod)
        if not verdict.allowed:
            return f"{request.obj['kind']} {request.obj['metadata']['name']}'s pods: {verdict.message}"
    return None


def level(c: Cluster, namespace: str, labelled: Mapping[str, str]) -> str | None:
    if namespace in c.exempt:
        return None
    return labelled.get(namespace) or c.levels.get(namespace) or c.default_level


def pod_security_refusal(c: Cluster, request: Request, labelled: Mapping[str, str]) -> str | None:
    """Pod Security admission enforces on Pods; a workload's pods are refused when its controller
    creates them (the workload object itself only warns)."""
    pod = chart_checks.pod_template(request.obj)
    enforced = level(c, request.namespace, labelled)
    if pod is None or enforced is None:
        return None
    found = chart_checks.pod_security_violations(pod, enforced)
    return f"Pod Security {enforced} in {request.namespace}: {'; '.join(found)}" if found else None


@dataclass(frozen=True)
class Refusal:
    layer: str
    reason: str
    obj: str


def refusal(c: Cluster, request: Request, rbac: Rbac, labelled: Mapping[str, str]) -> tuple[str, str] | None:
    """The first layer that refuses one request, and why."""
    for layer, reason in (
        ("project", lambda: None if request.user else project_refusal(c, request)),
        ("rbac", lambda: rbac_refusal(c, request, rbac)),
        ("admission", lambda: admission_refusal(c, request)),
        ("pod-security", lambda: pod_security_refusal(c, request, labelled)),
    ):
        if found := reason():
            return layer, found
    return None


def verdict(c: Cluster, requests: Sequence[Request]) -> Refusal | None:
    """The requests of one sync in order; the first refusal, with its layer. What an earlier request
    of the same sync creates (a role, a labelled namespace) is there for the later ones."""
    rbac = c.rbac.copy()
    labelled: dict[str, str] = {}
    for request in requests:
        obj = request.obj
        if found := refusal(c, request, rbac, labelled):
            where = f"{request.namespace}/" if request.namespace else ""
            return Refusal(found[0], found[1], f"{obj['kind']} {where}{obj['metadata']['name']}")
        rbac.add(obj)
        labels = obj["metadata"].get("labels") or {}
        if (group_of(obj), obj["kind"]) == ("", "Namespace") and ENFORCE_LABEL in labels:
            labelled[obj["metadata"]["name"]] = labels[ENFORCE_LABEL]
    return None
