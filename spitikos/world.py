"""What a cluster holds before the program creates its own objects, and where the two collide.

A mock cluster is empty; a real one never is. pulumi-kubernetes 4.34.2 creates with a plain
create (since 4.29.0, unless the provider sets `upsertExistingObjects`), so an object that
already exists fails the `pulumi up` with AlreadyExists. Helm (the releases) refuses to install
over an object that does not carry the release's ownership metadata, and NGINX's admission
webhook refuses an Ingress for a host and path another Ingress already serves.

Three models: `FRESH_K3S` (a new k3s server, Traefik disabled), `AT_START` (what the platform's
own charts and controllers create when they run) and `LIVE_SPITIKOS` (the real organization's
cluster, which the migration meets). `collisions` applies the rules above to a Recording.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from spitikos.engine import Recording, Registration

RELEASE = "kubernetes:helm.sh/v3:Release"
HELM_RELEASE_NAME = "meta.helm.sh/release-name"
HELM_RELEASE_NAMESPACE = "meta.helm.sh/release-namespace"
MANAGED_BY = "app.kubernetes.io/managed-by"


@dataclass(frozen=True)
class Existing:
    """One object a cluster holds."""

    api_version: str
    kind: str
    namespace: str | None
    """None for a cluster-scoped object."""
    name: str
    annotations: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    ingress_paths: tuple[tuple[str, str], ...] = ()
    """An Ingress's (host, path) pairs: NGINX admits one Ingress per pair."""

    @property
    def key(self) -> tuple[str, str, str | None, str]:
        """(API group, kind, namespace, name): the identity the API server checks a create against."""
        return _group(self.api_version), self.kind, self.namespace, self.name

    @property
    def helm_owner(self) -> tuple[str, str] | None:
        """(release, namespace) when Helm would adopt the object: both annotations, and the label."""
        notes, labels = dict(self.annotations), dict(self.labels)
        if labels.get(MANAGED_BY) != "Helm" or HELM_RELEASE_NAME not in notes or HELM_RELEASE_NAMESPACE not in notes:
            return None
        return notes[HELM_RELEASE_NAME], notes[HELM_RELEASE_NAMESPACE]

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def _objects(api_version: str, kind: str, namespace: str | None, *names: str) -> list[Existing]:
    return [Existing(api_version, kind, namespace, n) for n in names]


RBAC = "rbac.authorization.k8s.io/v1"
CRD = "apiextensions.k8s.io/v1"
K3S_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")

# kube-controller-manager puts these in every namespace, the program's own included.
IN_EVERY_NAMESPACE = (("v1", "ServiceAccount", "default"), ("v1", "ConfigMap", "kube-root-ca.crt"))

# A new k3s server (v1.35, `--disable=traefik`): the API server's own objects, then k3s's
# manifests (k3s-io/k3s `manifests/`: coredns.yaml, local-storage.yaml, metrics-server/,
# rolebindings.yaml, runtimes.yaml) and the CRDs of its deploy and Helm controllers.
FRESH_K3S: tuple[Existing, ...] = (
    *_objects("v1", "Namespace", None, *K3S_NAMESPACES),
    Existing("v1", "Service", "default", "kubernetes"),
    Existing("v1", "ConfigMap", "kube-system", "extension-apiserver-authentication"),
    *_objects(RBAC, "ClusterRole", None, "cluster-admin", "admin", "edit", "view", "system:discovery"),
    *_objects(RBAC, "ClusterRoleBinding", None, "cluster-admin", "system:discovery"),
    *_objects(RBAC, "Role", "kube-system", "extension-apiserver-authentication-reader"),
    *_objects("scheduling.k8s.io/v1", "PriorityClass", None, "system-cluster-critical", "system-node-critical"),
    # coredns.yaml
    *_objects("v1", "ServiceAccount", "kube-system", "coredns"),
    *_objects(RBAC, "ClusterRole", None, "system:coredns"),
    *_objects(RBAC, "ClusterRoleBinding", None, "system:coredns"),
    *_objects("v1", "ConfigMap", "kube-system", "coredns"),
    *_objects("apps/v1", "Deployment", "kube-system", "coredns"),
    *_objects("v1", "Service", "kube-system", "kube-dns"),
    # local-storage.yaml
    *_objects("v1", "ServiceAccount", "kube-system", "local-path-provisioner-service-account"),
    *_objects(RBAC, "ClusterRole", None, "local-path-provisioner-role"),
    *_objects(RBAC, "ClusterRoleBinding", None, "local-path-provisioner-bind"),
    *_objects("apps/v1", "Deployment", "kube-system", "local-path-provisioner"),
    *_objects("v1", "ConfigMap", "kube-system", "local-path-config"),
    *_objects("storage.k8s.io/v1", "StorageClass", None, "local-path"),
    # metrics-server/
    *_objects("v1", "ServiceAccount", "kube-system", "metrics-server"),
    *_objects("apps/v1", "Deployment", "kube-system", "metrics-server"),
    *_objects("v1", "Service", "kube-system", "metrics-server"),
    *_objects(RBAC, "ClusterRole", None, "system:metrics-server", "system:aggregated-metrics-reader"),
    *_objects(RBAC, "ClusterRoleBinding", None, "system:metrics-server", "metrics-server:system:auth-delegator"),
    *_objects(RBAC, "RoleBinding", "kube-system", "metrics-server-auth-reader"),
    *_objects("apiregistration.k8s.io/v1", "APIService", None, "v1beta1.metrics.k8s.io"),
    # rolebindings.yaml, runtimes.yaml
    *_objects(RBAC, "ClusterRoleBinding", None, "kube-apiserver-kubelet-admin"),
    *_objects("node.k8s.io/v1", "RuntimeClass", None, "nvidia", "crun", "spin", "wasmtime"),
    # k3s's controllers: HelmChart (helm-controller) and Addon, ETCDSnapshotFile (k3s).
    *_objects(CRD, "CustomResourceDefinition", None, "helmcharts.helm.cattle.io", "helmchartconfigs.helm.cattle.io"),
    *_objects(CRD, "CustomResourceDefinition", None, "addons.k3s.cattle.io", "etcdsnapshotfiles.k3s.cattle.io"),
)

# What the platform's charts and controllers create while they run, outside their releases:
AT_START: tuple[Existing, ...] = (
    # argocd-server, before it listens (argo-cd v3.4.4 server/server.go, initializeDefaultProject).
    # (No `argocd-initial-admin-secret`: the chart sets the admin password.)
    Existing("argoproj.io/v1alpha1", "AppProject", "argocd", "default"),
    # argo-cd 10.1.1's redis-secret-init Job.
    Existing("v1", "Secret", "argocd", "argocd-redis"),
    # ingress-nginx 4.15.1: the admission create-secret Job, and the controller's leader election.
    Existing("v1", "Secret", "ingress-nginx", "ingress-nginx-admission"),
    Existing("coordination.k8s.io/v1", "Lease", "ingress-nginx", "ingress-nginx-leader"),
    # KEDA 2.20.2's operator: its certificates (cert rotation) and leader election.
    Existing("v1", "Secret", "keda", "kedaorg-certs"),
    Existing("coordination.k8s.io/v1", "Lease", "keda", "operator.keda.sh"),
)

KEDA_CRDS = (
    "scaledobjects.keda.sh",
    "scaledjobs.keda.sh",
    "triggerauthentications.keda.sh",
    "clustertriggerauthentications.keda.sh",
    "cloudeventsources.eventing.keda.sh",
    "clustercloudeventsources.eventing.keda.sh",
)  # keda chart 2.20.2, templates/crds/
KEDA_AUTH_READER = Existing(RBAC, "RoleBinding", "kube-system", "keda-operator-auth-reader")

# What a release renders that may exist before it, by release name: Helm refuses each one that
# does not carry the release's ownership metadata.
RELEASE_RENDERS: dict[str, tuple[Existing, ...]] = {
    "keda": (*_objects(CRD, "CustomResourceDefinition", None, *KEDA_CRDS), KEDA_AUTH_READER),
}

# The Applications the hand-made root (`helm install argocd ./charts/argocd`, spitikos/charts)
# made over time, and the ones its chart lists today (charts/argocd/values.yaml at 7b7f06e).
GIT_APPLICATIONS = (
    "api",
    "homepage",
    "keda",
    "redis",
    "vault",
    "kubernetes-dashboard",
    "ingress-nginx",
    "kube-prometheus-stack",
)
LIVE_APPLICATIONS = (*GIT_APPLICATIONS, "grafana")  # grafana: added in 205cb77, dropped in 237f904

# The spitikos organization's cluster before the migration, on top of k3s and the old Argo CD.
LIVE_SPITIKOS: tuple[Existing, ...] = (
    *_objects("v1", "Namespace", None, "argocd", "api"),
    Existing(
        "networking.k8s.io/v1",
        "Ingress",
        "argocd",
        "argocd-ingress",
        ingress_paths=(("argocd.taehoonlee.cloud", "/"),),
    ),  # charts/argocd's common.ingress: `<fullname>-ingress`, every host at `/`
    # Applied by Argo CD's `keda` Application: no Helm ownership metadata.
    *_objects(CRD, "CustomResourceDefinition", None, *KEDA_CRDS),
    KEDA_AUTH_READER,
    *_objects("argoproj.io/v1alpha1", "Application", "argocd", *LIVE_APPLICATIONS),
)

FRESH_WORLD = FRESH_K3S + AT_START
LIVE_WORLD = FRESH_K3S + AT_START + LIVE_SPITIKOS

CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "StorageClass",
    "PriorityClass",
    "IngressClass",
    "APIService",
    "RuntimeClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
}


@dataclass(frozen=True)
class Collision:
    urn: str
    existing: Existing
    why: str

    def __str__(self) -> str:
        return f"{self.urn.rsplit('::', 1)[-1]}: {self.existing} {self.why}"


def plain_creates(recording: Recording, imported: Iterable[tuple[str, str]] = ()) -> list[Registration]:
    """Kubernetes objects the program creates with a plain create: not a Patch, not imported
    (by the `import` option or `pulumi import`, as (type, resource name)), not a Helm release."""
    skip = set(imported)
    return [
        r
        for r in recording.all()
        if r.custom
        and r.type.startswith("kubernetes:")
        and r.type != RELEASE
        and not r.type.endswith("Patch")
        and not r.import_id
        and (r.type, r.name) not in skip
    ]


def as_existing(reg: Registration) -> Existing:
    """The object a registration would create."""
    values: dict[str, Any] = reg.values
    meta = values.get("metadata") or {}
    kind = values["kind"]
    namespace = None if kind in CLUSTER_SCOPED else meta.get("namespace") or "default"
    paths = tuple(
        (rule.get("host", ""), path.get("path", "/"))
        for rule in (values.get("spec") or {}).get("rules", [])
        if kind == "Ingress"
        for path in (rule.get("http") or {}).get("paths", [])
    )
    return Existing(values["apiVersion"], kind, namespace, meta["name"], ingress_paths=paths)


def collisions(
    recording: Recording, world: Sequence[Existing], imported: Iterable[tuple[str, str]] = ()
) -> list[Collision]:
    """Where a `pulumi up` of `recording` fails against a cluster holding `world`."""
    creates = [(r, as_existing(r)) for r in plain_creates(recording, imported)]
    namespaces = {o.name for o in (*world, *(o for _, o in creates)) if o.kind == "Namespace"}
    present = {o.key: o for o in (*world, *_in_every(namespaces))}
    found = [
        Collision(r.urn, present[o.key], "exists: pulumi-kubernetes refuses to create it (AlreadyExists)")
        for r, o in creates
        if o.key in present
    ]
    found += _ingress_conflicts(creates, world)
    found += _release_conflicts(recording, world)
    return sorted(found, key=lambda c: (c.urn, str(c.existing)))


def _in_every(namespaces: Iterable[str]) -> list[Existing]:
    return [Existing(v, k, ns, n) for ns in namespaces for v, k, n in IN_EVERY_NAMESPACE]


def _ingress_conflicts(creates: list[tuple[Registration, Existing]], world: Sequence[Existing]) -> list[Collision]:
    return [
        Collision(r.urn, other, f"serves {host}{path}: NGINX's admission webhook refuses a second Ingress for it")
        for r, mine in creates
        for other in world
        if other.kind == "Ingress" and other.key != mine.key
        for host, path in mine.ingress_paths
        if (host, path) in other.ingress_paths
    ]


def _release_conflicts(recording: Recording, world: Sequence[Existing]) -> list[Collision]:
    present = {o.key: o for o in world}
    found = []
    for release in recording.of_type(RELEASE):
        owner = (release.values.get("name"), release.values.get("namespace"))
        for rendered in RELEASE_RENDERS.get(owner[0], ()):
            existing = present.get(rendered.key)
            if existing is not None and existing.helm_owner != owner:
                why = f"exists without the ownership metadata of release {owner[1]}/{owner[0]}: Helm refuses it"
                found.append(Collision(release.urn, existing, why))
    return found


def orphaned_applications(world: Sequence[Existing], in_git: Iterable[str] = GIT_APPLICATIONS) -> list[Existing]:
    """Applications in argocd that no chart in Git lists any more: nothing would ever prune them."""
    listed = set(in_git)
    return [o for o in world if o.kind == "Application" and o.name not in listed]


# --- applying a runbook's commands to a model ---------------------------------------------

KUBECTL_KINDS = {
    "ingress": "Ingress",
    "crd": "CustomResourceDefinition",
    "rolebinding": "RoleBinding",
    "application": "Application",
    "namespace": "Namespace",
    "appproject": "AppProject",
}


@dataclass
class Handover:
    """A model after a runbook's commands: what is left, and what `pulumi import` took over."""

    world: list[Existing]
    imported: list[tuple[str, str]] = field(default_factory=list)
    imports: list[dict[str, str]] = field(default_factory=list)
    """Each `pulumi import`: type, name, id, parent and provider as given."""


def commands(script: str) -> list[list[str]]:
    """The shell commands of a script (continuations joined, comments dropped), each split into words."""
    joined = script.replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in joined.splitlines() if shlex.split(line, comments=True)]


def apply(world: Sequence[Existing], script: str) -> Handover:
    """Runs the `kubectl delete|annotate|label|patch` and `pulumi import` commands of `script`
    against `world`. Any other command is refused, so the model never silently skips a step."""
    state = Handover(list(world))
    for words in commands(script):
        if words[0] == "kubectl":
            _kubectl(state, words[1:])
        elif words[:2] == ["pulumi", "import"]:
            _pulumi_import(state, words[2:])
        elif words[:2] != ["pulumi", "up"]:
            raise ValueError(f"the model cannot apply: {' '.join(words)}")
    return state


def _kubectl(state: Handover, words: list[str]) -> None:
    namespace, rest = None, []
    for i, word in enumerate(words):
        if word in ("-n", "--namespace"):
            namespace = words[i + 1]
        elif not (i and words[i - 1] in ("-n", "--namespace")):
            rest.append(word)
    verb, kind, *args = rest
    if verb not in ("delete", "annotate", "label", "patch") or kind not in KUBECTL_KINDS:
        raise ValueError(f"the model cannot apply: kubectl {verb} {kind}")
    kind = KUBECTL_KINDS[kind]
    if verb == "patch":  # a finalizer dropped, a project's field set: the object stays
        _find(state.world, kind, namespace, args[0])
        return
    names = [a for a in args if not a.startswith("-") and "=" not in a]
    pairs = dict(a.split("=", 1) for a in args if "=" in a and not a.startswith("-"))
    for name in names:
        index = _find(state.world, kind, namespace, name)
        obj = state.world[index]
        if verb == "delete":
            del state.world[index]
        elif verb == "annotate":
            state.world[index] = replace(obj, annotations=tuple({**dict(obj.annotations), **pairs}.items()))
        else:
            state.world[index] = replace(obj, labels=tuple({**dict(obj.labels), **pairs}.items()))


def _find(world: list[Existing], kind: str, namespace: str | None, name: str) -> int:
    for i, obj in enumerate(world):
        if obj.kind == kind and obj.name == name and obj.namespace in (namespace, None):
            return i
    raise ValueError(f"no {kind} {namespace + '/' if namespace else ''}{name} in the model")


IMPORT_OPTIONS_WITH_VALUES = {"--parent", "--provider", "--stack", "-s"}


def _pulumi_import(state: Handover, words: list[str]) -> None:
    """Records the import; the object stays in the cluster, now Pulumi's: its create is skipped."""
    positional: list[str] = []
    options: dict[str, str] = {}
    i = 0
    while i < len(words):
        word = words[i]
        if word in IMPORT_OPTIONS_WITH_VALUES:
            options[word.lstrip("-")], i = words[i + 1], i + 2
            continue
        if word.startswith("-"):
            key, _, value = word.lstrip("-").partition("=")
            options[key] = value or "true"
        else:
            positional.append(word)
        i += 1
    typ, name, id_ = positional
    namespace, _, object_name = id_.rpartition("/")
    _find(state.world, typ.rsplit(":", 1)[-1], namespace or None, object_name)
    state.imports.append({"type": typ, "name": name, "id": id_, **options})
    state.imported.append((typ, name))
