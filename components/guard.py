"""A guard inside the cluster: what Argo CD may never do, whatever a commit to an app's chart says.

The first boundary is RBAC: Argo CD applies Git's content as deployers that hold only what the
applications need (components/deployers.py), and Kubernetes' escalation check stops a role or
binding that grants more. These ValidatingAdmissionPolicies (built into Kubernetes since 1.30: no
webhook, no pod) are the second layer. They judge the identities that apply Git's content, the
deployers (what Argo CD impersonates) and its application controller (should impersonation ever
be off), and refuse:
- a binding to cluster-admin, admin, edit, system:* or the platform's and k3s's own ClusterRoles,
  or to a role the `allowedAdminBindings` setting pairs with a binding, unless the setting pairs
  that binding with that role: the deployer's `bind` on a role cannot name the binding, this can;
- a Role or ClusterRole that grants every resource (`*`), `escalate`, `bind` or `impersonate`, or
  `*` verbs where they include those (RBAC's and authentication's groups, users, groups and
  service accounts), or a way into another identity or the node (`serviceaccounts/token`,
  `nodes/proxy`, `pods/exec`, ...) or around these policies; or that aggregates other roles' rules,
  or is labelled to be folded into view, edit or admin;
- a Namespace labelled Pod Security `privileged`, unless the operator lists it (the
  `privilegedNamespaces` setting): the cluster's default for unlabelled ones is `baseline`; and in
  a listed one, whoever creates it (a DaemonSet's controller too), a Pod with a privileged
  container or a capability past baseline's, or one that uses the host (its network, PIDs, IPC or
  paths) with a container that may run as root or gain privileges, or a host path mounted writable,
  or a host port off the host network;
- any write in the platform's namespaces, or to their Namespace objects (the deployers' namespaced
  rights hold in every namespace: RBAC cannot exclude one), and any write to the platform's,
  Kubernetes' or k3s's CRDs, ClusterRoles, bindings and webhook configurations (the deployer
  writes those kinds by any name: the charts' own names are not all known in advance);
- a Service of type NodePort or LoadBalancer, or with externalIPs: nothing is published but
  through the tunnel; and a hand-written Endpoints or EndpointSlice (a Service routed to any
  address, argocd-server's or the API server's included);
- an InterceptorRoute (KEDA's HTTP add-on) naming a host `routeNamespaces` gives another namespace:
  the shared interceptor would send it that host's requests on the longest path it claims;
- an admission webhook configuration that calls a URL rather than a Service, or sees any kind
  but those the applications' webhooks see (Pods, for Vault's injector; kube-prometheus-stack's
  PrometheusRules), or Pods beyond an `In` list of namespace names that holds none of the
  platform's: a webhook sees every object it matches, Secrets too, and may rewrite any Pod,
  `kube-system`'s (exempt from Pod Security) included. Judged for the ServiceAccounts of the
  applications' namespaces as well, since the charts' own webhook patchers (Vault's injector,
  kube-prometheus-stack's certificate Jobs) may update any webhook configuration;
- a Secret of type `kubernetes.io/service-account-token`: Kubernetes fills it with a long-lived
  token of the ServiceAccount it names, any ServiceAccount of the namespace, and no chart needs one.
Most also judge the applications' namespaces' ServiceAccounts: a deployer may hand what it holds
to a pod of its namespace (a Role, or with the `cluster` reach a ClusterRole, that RBAC's
escalation check admits), and the pod's requests must meet the same rules.
One policy per shape of object: each is type-checked against the kinds it matches, and a binding
has no `rules`, a role no `roleRef`, a Role no `aggregationRule`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components import deployers
from components.argocd import NAMESPACE as ARGOCD_NAMESPACE
from components.argocd import PLATFORM_CLUSTER_OBJECTS
from components.kube import NAMESPACE_NAME, PLATFORM_LABELS, with_provider

MANAGED_BY = "app.kubernetes.io/managed-by"  # PLATFORM_LABELS' key that says Pulumi made the object

RBAC = "rbac.authorization.k8s.io"
# The chart's `controller.serviceAccount.name` (argo-cd 10.1.1), in the release's namespace.
ARGOCD_CONTROLLER = f"system:serviceaccount:{ARGOCD_NAMESPACE}:argocd-application-controller"
# Who applies Git's content: the deployers Argo CD impersonates, and its controller. The application
# namespaces' deployers by their prefix (`*`): one per namespace, and only Pulumi makes
# ServiceAccounts in `argocd`.
APP_DEPLOYERS = deployers.username(deployers.APPS_DEPLOYER_PREFIX) + "*"
REQUESTERS = (deployers.username(deployers.ROOT_DEPLOYER), APP_DEPLOYERS, ARGOCD_CONTROLLER)

# ClusterRoles whose binding makes its subjects cluster-admin, or the controller of a part of the
# platform (Argo CD's own roles hold `*` on `*`): Kubernetes' own, k3s's (its manifests' names) and
# the platform's charts' (argocd-*, keda-*, nginx-gateway*).
# `edit` holds `impersonate` on service accounts and `create` on their tokens.
ADMIN_ROLES = ("cluster-admin", "admin", "edit", "kube-apiserver-kubelet-admin")
ADMIN_ROLE_PREFIXES = (
    "system:",
    "argocd-",
    "keda-",
    "nginx-gateway",
    "volsync-",
    "k3s-",
    "local-path-provisioner-",
    "metrics-server:",
)
# Verbs that let the holder grant or assume rights it does not have (RBAC's escalation check
# stops at them), and where a `*` verb includes them.
ESCALATING_VERBS = ("escalate", "bind", "impersonate")
ESCALATING_GROUPS = ("*", RBAC, "authentication.k8s.io")
IMPERSONABLE = ("users", "groups", "serviceaccounts")
# Resources whose grant is a way into another identity, a node or a container, or around this guard.
DANGEROUS_RESOURCES = (
    "serviceaccounts/token",
    "nodes/proxy",
    "pods/exec",
    "pods/attach",
    "pods/portforward",
    "pods/ephemeralcontainers",
    "validatingadmissionpolicies",
    "validatingadmissionpolicybindings",
    "mutatingadmissionpolicies",
    "mutatingadmissionpolicybindings",
    "certificatesigningrequests/approval",
    "signers",
)

BINDINGS_POLICY = "argocd-binds-no-admin-role"
ROLES_POLICY = "argocd-grants-no-wildcard"
AGGREGATION_POLICY = "argocd-aggregates-no-role"
NAMESPACES_POLICY = "argocd-labels-no-privileged-namespace"
PLATFORM_POLICY = "argocd-writes-nothing-of-the-platform"
PLATFORM_OBJECTS_POLICY = "argocd-writes-no-platform-object"
# PLATFORM_CLUSTER_OBJECTS' kinds, as the API server names their resources.
CLUSTER_RESOURCES = {
    "CustomResourceDefinition": ("apiextensions.k8s.io", "customresourcedefinitions"),
    "ClusterRole": (RBAC, "clusterroles"),
    "ClusterRoleBinding": (RBAC, "clusterrolebindings"),
    "ValidatingWebhookConfiguration": ("admissionregistration.k8s.io", "validatingwebhookconfigurations"),
    "MutatingWebhookConfiguration": ("admissionregistration.k8s.io", "mutatingwebhookconfigurations"),
}
SERVICES_POLICY = "argocd-publishes-no-node-port"
ENDPOINTS_POLICY = "argocd-writes-no-endpoints"
TOKENS_POLICY = "argocd-writes-no-token-secret"
HOST_PODS_POLICY = "privileged-namespaces-run-no-root-pod"
WEBHOOKS_POLICY = "argocd-registers-no-foreign-webhook"
OWN_NAMESPACE_POLICY = "argocd-deploys-in-its-own-namespace"
ROUTES_POLICY = "argocd-routes-only-its-hostnames"
# What the applications' admission webhooks may see (the organization's charts at 7b7f06e): Vault
# 0.30.1's injector Pods, kube-prometheus-stack 75.18.1's admission PrometheusRules. Exact names:
# no `*`, no subresource (`pods/ephemeralcontainers` would add a container to any pod).
WEBHOOK_GROUPS = ("", "monitoring.coreos.com")
WEBHOOK_RESOURCES = ("pods", "prometheusrules")
# Pod Security Standards, baseline, "Capabilities": what a container may add outside `privileged`.
BASELINE_CAPABILITIES = (
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
)
TOKEN_SECRET_TYPE = "kubernetes.io/service-account-token"  # noqa: S105 - a Secret type, not a secret
PUBLISHING_SERVICE_TYPES = ("NodePort", "LoadBalancer")
ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
# What kube-prometheus-stack's operator writes in kube-system (`prometheusOperator.kubeletService`,
# on by default, named `<release>-kubelet`): the kubelet's Service and its endpoints, for Prometheus
# to scrape the kubelets; an EndpointSlice belongs to its Service by this label.
KUBELET_SERVICE_SUFFIX = "-kubelet"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
# A ClusterRole labelled `<prefix><role>: "true"` is folded into that role by the controller-manager
# (Kubernetes' view, edit and admin select these labels; a chart's aggregated role may select any).
AGGREGATE_LABEL = "rbac.authorization.k8s.io/aggregate-to-"


@dataclass
class ClusterGuardArgs:
    provider: k8s.Provider
    allowed_admin_bindings: Sequence[tuple[str, str]] = field(default_factory=list)
    """(binding, ClusterRole) pairs, the binding `ClusterRoleBinding/<name>` or
    `RoleBinding/<namespace>/<name>`: the only admin bindings allowed, each to its role alone."""
    privileged_namespaces: Sequence[str] = field(default_factory=list)
    """The only namespaces Argo CD may label Pod Security `privileged`."""
    platform_namespaces: Sequence[str] = field(default_factory=list)
    """Namespaces Pulumi owns (a trailing `*` is a prefix): nothing Git says is written there."""
    requesters: Sequence[str] = REQUESTERS
    """Whose requests the policies judge: the deployers and Argo CD's application controller."""
    route_namespaces: Mapping[str, str] = field(default_factory=dict)
    """Hostname (or `*.` pattern) -> the one namespace whose routes may serve it (`routeNamespaces`)."""


class ClusterGuard(pulumi.ComponentResource):
    """Admission policies, with `Deny` bindings, that keep Argo CD's applications below cluster-admin."""

    policies: list[str]
    """The ValidatingAdmissionPolicies' names."""

    def __init__(self, name: str, args: ClusterGuardArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spitikos:guard:ClusterGuard", name, None, with_provider(opts, args.provider))
        who = args.requesters
        self._denying_policy(f"{name}-bindings", BINDINGS_POLICY, bindings_policy(who, args.allowed_admin_bindings))
        self._denying_policy(f"{name}-roles", ROLES_POLICY, roles_policy(who))
        self._denying_policy(f"{name}-aggregation", AGGREGATION_POLICY, aggregation_policy(who))
        # These three judge the applications' pods too (their namespaces' ServiceAccounts): a deployer
        # may hand what it holds to a ServiceAccount of its namespace (a Role there, or a ClusterRole
        # of what its reach holds cluster-wide), and RBAC's escalation check admits that.
        pods = args.platform_namespaces
        spec = also_app_service_accounts(namespaces_policy(who, args.privileged_namespaces), pods)
        self._denying_policy(f"{name}-namespaces", NAMESPACES_POLICY, spec)
        # The applications' deployers alone: the controller and the root's deployer write in `argocd`.
        apps = [APP_DEPLOYERS]
        spec = also_app_service_accounts(platform_policy(apps, args.platform_namespaces), pods)
        self._denying_policy(f"{name}-platform", PLATFORM_POLICY, spec)
        spec = also_app_service_accounts(platform_objects_policy(apps), pods)
        self._denying_policy(f"{name}-platform-objects", PLATFORM_OBJECTS_POLICY, spec)
        self._denying_policy(f"{name}-services", SERVICES_POLICY, also_app_service_accounts(services_policy(who), pods))
        # An application's pod writes endpoints outside the platform's namespaces in no real chart;
        # kube-prometheus-stack's operator keeps the kubelet's in kube-system (its ClusterRole).
        spec = also_app_service_accounts(endpoints_policy(who), pods, outside_platform=True)
        self._denying_policy(f"{name}-endpoints", ENDPOINTS_POLICY, spec)
        self._denying_policy(f"{name}-tokens", TOKENS_POLICY, also_app_service_accounts(tokens_policy(who), pods))
        self._denying_policy(f"{name}-webhooks", WEBHOOKS_POLICY, webhooks_policy(who, args.platform_namespaces))
        self._denying_policy(f"{name}-own-namespace", OWN_NAMESPACE_POLICY, own_namespace_policy())
        spec = also_app_service_accounts(routes_policy(who, args.route_namespaces), pods)
        self._denying_policy(f"{name}-routes", ROUTES_POLICY, spec)
        self.policies = [
            BINDINGS_POLICY,
            ROLES_POLICY,
            AGGREGATION_POLICY,
            NAMESPACES_POLICY,
            PLATFORM_POLICY,
            PLATFORM_OBJECTS_POLICY,
            SERVICES_POLICY,
            ENDPOINTS_POLICY,
            TOKENS_POLICY,
            WEBHOOKS_POLICY,
            OWN_NAMESPACE_POLICY,
            ROUTES_POLICY,
        ]
        if args.privileged_namespaces:  # `In` takes no empty list: without one, nothing to judge
            spec = host_pods_policy(args.privileged_namespaces)
            self._denying_policy(f"{name}-host-pods", HOST_PODS_POLICY, spec)
            self.policies.append(HOST_PODS_POLICY)
        self.register_outputs({"policies": self.policies})

    def _denying_policy(self, prefix: str, policy_name: str, spec: dict) -> None:
        """The policy, and the binding that puts it in force with `Deny` (the policy alone does nothing)."""
        policy = k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
            f"{prefix}-policy",
            metadata={"name": policy_name, "labels": PLATFORM_LABELS},
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self),
        )
        k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
            f"{prefix}-policy-binding",
            metadata={"name": policy_name, "labels": PLATFORM_LABELS},
            # The policy's name as its Output: the binding follows the policy it puts in force.
            spec={"policyName": policy.metadata.name, "validationActions": ["Deny"]},
            opts=pulumi.ResourceOptions(parent=self),
        )


def cel_list(values: Sequence[str]) -> str:
    """A CEL list literal of strings (JSON's string syntax is CEL's)."""
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def _spec(
    requesters: Sequence[str],
    resources: list[str],
    variables: list[dict],
    validations: list[dict],
    group: str = RBAC,
    operations: Sequence[str] = ("CREATE", "UPDATE"),
) -> dict:
    return {
        "failurePolicy": "Fail",
        "matchConstraints": {
            "resourceRules": [
                {
                    "apiGroups": [group],
                    "apiVersions": ["*"],
                    "operations": list(operations),
                    "resources": resources,
                }
            ]
        },
        "matchConditions": [{"name": "applies-gits-content", "expression": requester_is(requesters)}],
        "variables": variables,
        "validations": validations,
    }


def requester_is(requesters: Sequence[str]) -> str:
    """The request is made by one of `requesters` (impersonated: the deployer, not the controller),
    a trailing `*` being a prefix."""
    return in_namespaces("request.userInfo.username", requesters)


def bindings_policy(requesters: Sequence[str], allowed: Sequence[tuple[str, str]]) -> dict:
    """RoleBindings and ClusterRoleBindings to an admin ClusterRole, or to a role the setting pairs
    with a binding (the deployer may `bind` it by name: `view` for the dashboard's login), unless the
    setting pairs that binding with that role."""
    paired = sorted({role for _, role in allowed})
    own = deployers.username(deployers.APPS_DEPLOYER_PREFIX)
    admin_role = (
        "object.roleRef.kind == 'ClusterRole' && (object.roleRef.name in "
        f"{cel_list([*ADMIN_ROLES, *paired])} || {cel_list(ADMIN_ROLE_PREFIXES)}"
        ".exists(p, object.roleRef.name.startsWith(p)))"
    )
    return _spec(
        requesters,
        ["rolebindings", "clusterrolebindings"],
        variables=[
            # What the setting names: `ClusterRoleBinding/<name>` or `RoleBinding/<namespace>/<name>`.
            {
                "name": "binding",
                "expression": "request.kind.kind + '/' + (request.namespace == '' ? '' : request.namespace + '/')"
                " + object.metadata.name",
            },
            {
                "name": "listed",
                "expression": "object.roleRef.kind == 'ClusterRole' && variables.binding + '=' + object.roleRef.name"
                f" in {cel_list([f'{b}={r}' for b, r in allowed])}",
            },
            {"name": "adminRole", "expression": admin_role},
            {
                # The application namespace whose deployer asks (`argocd-deploys-<namespace>`).
                "name": "deploys",
                "expression": f"request.userInfo.username.startsWith({json.dumps(own)})"
                f" ? request.userInfo.username.substring({len(own)}) : ''",
            },
        ],
        validations=[
            {
                "expression": "variables.listed || !variables.adminRole",
                "messageExpression": "variables.binding + ' binds the ClusterRole ' + object.roleRef.name + "
                "': Argo CD may bind an admin role only where the allowedAdminBindings setting pairs that binding "
                "with that role'",
                "reason": "Forbidden",
            },
            {
                # A pair pins the binding to its role; this pins whom it grants the role to: the
                # deploying application's own ServiceAccounts, never a group or another namespace's.
                "expression": "!variables.listed || !has(object.subjects) || object.subjects.all(x, "
                "x.kind == 'ServiceAccount' && has(x.namespace) && x.namespace == variables.deploys)",
                "messageExpression": "variables.binding + ' grants ' + object.roleRef.name + ' beyond the "
                "ServiceAccounts of the namespace its application deploys: a listed binding names only those'",
                "reason": "Forbidden",
            },
        ],
    )


def roles_policy(requesters: Sequence[str]) -> dict:
    """Roles and ClusterRoles that grant wholesale, escalate, or a way into another identity or a node."""
    wildcard = (
        "(has(r.resources) && '*' in r.resources)"
        f" || (has(r.resources) && r.resources.exists(x, x in {cel_list(DANGEROUS_RESOURCES)}))"
        f" || r.verbs.exists(v, v in {cel_list(ESCALATING_VERBS)})"
        " || ('*' in r.verbs && has(r.apiGroups)"
        f" && (r.apiGroups.exists(g, g in {cel_list(ESCALATING_GROUPS)})"
        f" || ('' in r.apiGroups && has(r.resources) && r.resources.exists(x, x in {cel_list(IMPERSONABLE)}))))"
    )
    return _spec(
        requesters,
        ["roles", "clusterroles"],
        variables=[{"name": "wildcard", "expression": f"has(object.rules) && object.rules.exists(r, {wildcard})"}],
        validations=[
            {
                "expression": "!variables.wildcard",
                "messageExpression": "request.kind.kind + ' ' + object.metadata.name + ' grants every resource, "
                "escalate, bind or impersonate (or * verbs that include them), or a token, node proxy, exec or "
                "admission policy: Argo CD may not create it'",
                "reason": "Forbidden",
            },
        ],
    )


def aggregation_policy(requesters: Sequence[str]) -> dict:
    """ClusterRoles with an aggregationRule: it gathers the rules of every ClusterRole its selectors
    match (cluster-admin's too), and the controller-manager writes them, not Argo CD. And ClusterRoles
    labelled `rbac.authorization.k8s.io/aggregate-to-*`: their rules go into view, edit or admin,
    and so to whoever holds those (the dashboard's login holds view), beyond their creator."""
    return _spec(
        requesters,
        ["clusterroles"],
        variables=[],
        validations=[
            {
                "expression": "!has(object.aggregationRule) && !(has(object.metadata.labels) && "
                f"object.metadata.labels.exists(k, k.startsWith({json.dumps(AGGREGATE_LABEL)})))",
                "messageExpression": "'ClusterRole ' + object.metadata.name + "
                "' aggregates other roles, or is labelled to be folded into one: Argo CD may not create it'",
                "reason": "Forbidden",
            }
        ],
    )


def namespaces_policy(requesters: Sequence[str], privileged: Sequence[str]) -> dict:
    """Namespaces labelled Pod Security `privileged` (a Namespace in Git, or an Application's
    `managedNamespaceMetadata`), unless listed: without the label, the cluster's default
    (`baseline`) holds."""
    label = f"object.metadata.labels[{json.dumps(ENFORCE_LABEL)}]"
    return _spec(
        requesters,
        ["namespaces"],
        group="",
        variables=[
            {
                "name": "privileged",
                "expression": f"has(object.metadata.labels) && {json.dumps(ENFORCE_LABEL)} in object.metadata.labels"
                f" && {label} == 'privileged'",
            }
        ],
        validations=[
            {
                "expression": f"!variables.privileged || object.metadata.name in {cel_list(privileged)}",
                "messageExpression": "'namespace ' + object.metadata.name + ' is labelled Pod Security privileged: "
                "Argo CD may do so only where the privilegedNamespaces setting lists the namespace'",
                "reason": "Forbidden",
            }
        ],
    )


def in_namespaces(expression: str, namespaces: Sequence[str]) -> str:
    """CEL: `expression` (a string) names one of `namespaces`, a trailing `*` being a prefix."""
    names = [n for n in namespaces if not n.endswith("*")]
    prefixes = [f"{expression}.startsWith({json.dumps(n[:-1])})" for n in namespaces if n.endswith("*")]
    return "(" + " || ".join([f"{expression} in {cel_list(names)}", *prefixes]) + ")"


def platform_policy(requesters: Sequence[str], platform_namespaces: Sequence[str]) -> dict:
    """Any write in a platform namespace, any change to or deletion of its Namespace object, and any
    change to or deletion of an object Pulumi made elsewhere (labelled PLATFORM_LABELS: the `api`
    namespace and its `platform-env` Secret): the deployers' namespaced rights hold in every
    namespace, and the projects' destinations leave these out. Judged on the request and the stored
    object (`oldObject`, null on a CREATE, so read only on an UPDATE or DELETE; a DELETE has no
    `object`)."""
    in_platform = in_namespaces("request.namespace", platform_namespaces)
    platform_namespace = "request.resource.group == '' && request.resource.resource == 'namespaces' && " + (
        in_namespaces("request.name", platform_namespaces)
    )
    label = json.dumps(MANAGED_BY)
    pulumis = (
        f"(request.operation != 'CREATE' && has(oldObject.metadata.labels) && {label} in oldObject.metadata.labels"
        f" && oldObject.metadata.labels[{label}] == {json.dumps(PLATFORM_LABELS[MANAGED_BY])})"
    )
    spec = _spec(
        requesters,
        ["*"],
        group="*",
        operations=("CREATE", "UPDATE", "DELETE"),
        # An application's pod (the policy judges those too) writes in a platform namespace only what
        # kube-prometheus-stack's operator keeps there by its chart's ClusterRole, the kubelet's
        # Service and endpoints in kube-system: the `operator` reach's deployer may hand a pod of
        # its own StatefulSets, Secrets and Pods deleted in every namespace (attack 87).
        variables=[
            {
                # The stored object on a DELETE (which carries none), else the one asked for.
                "name": "target",
                "expression": "request.operation == 'DELETE' ? oldObject : object",
            },
            {"name": "kubeletService", "expression": kubelet_service(requesters)},
            {
                "name": "platform",
                "expression": f"({in_platform} && !variables.kubeletService) || ({platform_namespace}) || {pulumis}",
            },
        ],
        validations=[
            {
                "expression": "!variables.platform",
                "messageExpression": "request.resource.resource + ' ' + request.name + ' in ' + "
                "(request.namespace == '' ? 'the cluster' : request.namespace) + "
                "': the platform namespaces and what Pulumi made are Pulumi-owned, Argo CD may not write them'",
                "reason": "Forbidden",
            }
        ],
    )
    # Every resource, subresources too (`*` alone leaves them out).
    spec["matchConstraints"]["resourceRules"][0]["resources"] = ["*", "*/*"]
    return spec


def kubelet_service(requesters: Sequence[str]) -> str:
    """CEL: an application's pod writes the kubelet's Service in kube-system, by name (a Service, its
    Endpoints) or by the Service an EndpointSlice belongs to (`variables.target`): never kube-dns'
    or metrics-server's, whose endpoints would take the cluster's DNS (attack 85)."""
    labels = "variables.target.metadata.labels"
    return (
        f"!{requester_is(requesters)} && request.namespace == 'kube-system'"
        " && ((request.resource.resource in ['services', 'endpoints']"
        f" && request.name.endsWith({json.dumps(KUBELET_SERVICE_SUFFIX)}))"
        f" || (request.resource.resource == 'endpointslices' && has({labels})"
        f" && {json.dumps(SERVICE_NAME_LABEL)} in {labels}"
        f" && {labels}[{json.dumps(SERVICE_NAME_LABEL)}].endsWith({json.dumps(KUBELET_SERVICE_SUFFIX)})))"
    )


def services_policy(requesters: Sequence[str]) -> dict:
    """Services of type NodePort or LoadBalancer: a port on the node's address is published past the
    tunnel and Access (ServiceLB is off, but a NodePort needs nothing else); and Services with
    `externalIPs`, of any type: kube-proxy sends what reaches those addresses on the Service's
    ports (from the LAN, from the node, from every pod) to the Service's pods, so an application
    could publish itself on the node's address, or take the API server's 10.0.0.200:6443 for the
    cluster's pods (CVE-2020-8554; k3s does not enable the DenyServiceExternalIPs plugin)."""
    return _spec(
        requesters,
        ["services"],
        group="",
        variables=[
            {
                "name": "published",
                "expression": f"has(object.spec.type) && object.spec.type in {cel_list(PUBLISHING_SERVICE_TYPES)}",
            }
        ],
        validations=[
            {
                "expression": "!variables.published",
                "messageExpression": "'Service ' + object.metadata.name + ' is of type ' + object.spec.type + "
                "': applications are published through the tunnel only, never on a node port'",
                "reason": "Forbidden",
            },
            {
                "expression": "!has(object.spec.externalIPs) || size(object.spec.externalIPs) == 0",
                "messageExpression": "'Service ' + object.metadata.name + ' has externalIPs: kube-proxy would send "
                "what reaches those addresses to its pods; applications are published through the tunnel only'",
                "reason": "Forbidden",
            },
        ],
    )


def name_matches(glob: str) -> str:
    """CEL: `request.name` matches `glob`, a name with at most one `*`, at its start or end (the
    globs of PLATFORM_CLUSTER_OBJECTS)."""
    if glob.startswith("*"):
        return f"request.name.endsWith({json.dumps(glob[1:])})"
    if glob.endswith("*"):
        return f"request.name.startsWith({json.dumps(glob[:-1])})"
    return f"request.name == {json.dumps(glob)}"


def platform_objects_policy(requesters: Sequence[str]) -> dict:
    """Creates, updates and deletes of the platform's, Kubernetes' and k3s's cluster-scoped objects
    (PLATFORM_CLUSTER_OBJECTS, what the default project refuses by name): the deployer writes CRDs,
    ClusterRoles, bindings and webhook configurations by any name, since the charts' are not all
    known in advance, and deleting `applications.argoproj.io` would delete every Application."""
    by_resource: dict[str, list[str]] = {}
    for _group, kind, glob in PLATFORM_CLUSTER_OBJECTS:
        by_resource.setdefault(CLUSTER_RESOURCES[kind][1], []).append(name_matches(glob))
    platform = " || ".join(
        f"(request.resource.resource == {json.dumps(resource)} && ({' || '.join(names)}))"
        for resource, names in by_resource.items()
    )
    groups = sorted({g for g, _ in CLUSTER_RESOURCES.values()})
    spec = _spec(
        requesters,
        sorted(by_resource),
        operations=("CREATE", "UPDATE", "DELETE"),
        variables=[{"name": "platform", "expression": platform}],
        validations=[
            {
                "expression": "!variables.platform",
                "messageExpression": "request.resource.resource + ' ' + request.name + "
                "': the platform, Kubernetes and k3s own it, Argo CD may not write it'",
                "reason": "Forbidden",
            }
        ],
    )
    spec["matchConstraints"]["resourceRules"][0]["apiGroups"] = groups
    return spec


def endpoints_policy(requesters: Sequence[str]) -> dict:
    """Endpoints and EndpointSlices written by Git's identities: a Service without a selector plus
    one of these routes an application's hostname to any address in the cluster (argocd-server's,
    the API server's), past Access. The control plane writes the real ones; no chart needs to. The
    deployer holds the right only because kube-prometheus-stack's operator role carries it."""
    spec = _spec(
        requesters,
        ["endpoints", "endpointslices"],
        group="",
        variables=[],
        validations=[
            {
                "expression": "false",
                "messageExpression": "request.kind.kind + ' ' + request.name + "
                "': hand-written endpoints would route a Service to any address; Argo CD may not write them'",
                "reason": "Forbidden",
            }
        ],
    )
    spec["matchConstraints"]["resourceRules"][0]["apiGroups"] = ["", "discovery.k8s.io"]
    return spec


def own_namespace_policy() -> dict:
    """Namespaced objects an application's deployer writes outside its own namespace. RBAC already
    stops a deployer there unless its reach holds the kind in every namespace, which the `operator`
    reach must (RBAC creates kube-prometheus-stack's operator ClusterRole, with StatefulSets and
    Secrets everywhere, only for one who holds it all): this keeps that deployer in its namespace
    too. By the deployer's own name, so it holds for every kind. Cluster-scoped objects (RBAC and
    the other policies judge them) and Namespace objects (a deployer may patch only its own, by its
    RoleBinding there) are not this policy's."""
    own = deployers.username(deployers.APPS_DEPLOYER_PREFIX)
    spec = _spec(
        [APP_DEPLOYERS],
        ["*", "*/*"],
        group="*",
        operations=("CREATE", "UPDATE", "DELETE"),
        variables=[],
        validations=[
            {
                "expression": "request.namespace == ''"
                " || (request.resource.group == '' && request.resource.resource == 'namespaces')"
                f" || request.userInfo.username == {json.dumps(own)} + request.namespace",
                "messageExpression": "request.kind.kind + ' ' + request.namespace + '/' + request.name + ': '"
                " + request.userInfo.username + ' deploys one application namespace and writes only there'",
                "reason": "Forbidden",
            }
        ],
    )
    return spec


def routes_policy(requesters: Sequence[str], route_namespaces: Mapping[str, str]) -> dict:
    """InterceptorRoutes (KEDA's HTTP add-on) for a hostname the `routeNamespaces` setting gives to
    another namespace. The Gateway's listener for such a hostname admits its namespace's routes
    alone, but those send every request to the shared interceptor, which picks, across every
    namespace's InterceptorRoutes, the one with that host and the longest path prefix (more header
    matches first; http-add-on 0.15.0 pkg/routing/tablememory.go): another application's route
    with a longer path would take that path's requests. Hosts as the interceptor compares them
    (exactly, port stripped): lower case, no port, no trailing dot, so that none slips past the
    list."""
    owners = json.dumps(dict(route_namespaces))
    wildcards = [(host[1:], ns) for host, ns in route_namespaces.items() if host.startswith("*.")]
    foreign = " || ".join(
        [
            f"(h in {owners} && {owners}[h] != request.namespace)",
            *(
                f"(h.endsWith({json.dumps(suffix)}) && request.namespace != {json.dumps(ns)})"
                for suffix, ns in wildcards
            ),
        ]
    )
    host_ok = f"h == h.lowerAscii() && !h.contains(':') && !h.endsWith('.') && !({foreign})"
    return _spec(
        requesters,
        ["interceptorroutes"],
        group="http.keda.sh",
        variables=[],
        validations=[
            {
                "expression": "!has(object.spec) || !has(object.spec.rules) || object.spec.rules.all(r, "
                f"!has(r.hosts) || r.hosts.all(h, {host_ok}))",
                "messageExpression": "'InterceptorRoute ' + request.namespace + '/' + object.metadata.name + "
                "': it names a host that routeNamespaces gives another namespace, or one not in lower case or with "
                "a port or a trailing dot: the interceptor would send it requests meant for another application'",
                "reason": "Forbidden",
            }
        ],
    )


def tokens_policy(requesters: Sequence[str]) -> dict:
    """Secrets of type service-account-token written by Git's identities: the token controller fills
    one with a token that never expires, of whichever ServiceAccount its annotation names (a chart's
    operator, the dashboard's login, ...), readable by all that reads the namespace's Secrets. No
    chart of the organization makes one (pods get short-lived projected tokens), and RBAC cannot
    narrow Secrets by type: the deployer writes Secrets."""
    return _spec(
        requesters,
        ["secrets"],
        group="",
        variables=[],
        validations=[
            {
                "expression": f"!has(object.type) || object.type != {json.dumps(TOKEN_SECRET_TYPE)}",
                "messageExpression": "'Secret ' + object.metadata.name + ' is of type "
                f"{TOKEN_SECRET_TYPE}: a long-lived token of a ServiceAccount; Argo CD may not write one'",
                "reason": "Forbidden",
            }
        ],
    )


def _each_container(condition: str) -> str:
    """CEL: `condition` (on `c`) holds for every container, init and ephemeral ones too. Three
    lists, not one: a container and an ephemeral container are types of their own to CEL."""
    lists = ("containers", "initContainers", "ephemeralContainers")
    return " && ".join(f"(!has(object.spec.{x}) || object.spec.{x}.all(c, {condition}))" for x in lists)


def _context(field_name: str) -> str:
    return f"has(c.securityContext) && has(c.securityContext.{field_name})"


HOST_PATH_VOLUMES = "has(object.spec.volumes) ? object.spec.volumes.filter(v, has(v.hostPath)).map(v, v.name) : []"


def _host_pod_conditions() -> tuple[str, str, str]:
    """CEL on a Pod: (it uses the host, every container is unprivileged, every container is held)."""
    pod = "object.spec"
    uses_host = (
        f"(has({pod}.hostNetwork) && {pod}.hostNetwork) || (has({pod}.hostPID) && {pod}.hostPID)"
        f" || (has({pod}.hostIPC) && {pod}.hostIPC) || size(variables.hostPaths) > 0"
    )
    pod_context = f"has({pod}.securityContext)"
    # The container's own field, else the pod's.
    user = (
        f"({_context('runAsUser')} ? c.securityContext.runAsUser != 0 : "
        f"{pod_context} && has({pod}.securityContext.runAsUser) ? {pod}.securityContext.runAsUser != 0 : "
        f"{_context('runAsNonRoot')} ? c.securityContext.runAsNonRoot : "
        f"{pod_context} && has({pod}.securityContext.runAsNonRoot) && {pod}.securityContext.runAsNonRoot)"
    )
    held = (
        f"{user} && {_context('allowPrivilegeEscalation')} && !c.securityContext.allowPrivilegeEscalation"
        " && (!has(c.volumeMounts) || c.volumeMounts.all(m, !(m.name in variables.hostPaths)"
        " || (has(m.readOnly) && m.readOnly)))"
    )
    unprivileged = (
        f"!({_context('privileged')} && c.securityContext.privileged) && !({_context('capabilities')}"
        " && has(c.securityContext.capabilities.add)"
        f" && c.securityContext.capabilities.add.exists(a, !(a in {cel_list(BASELINE_CAPABILITIES)})))"
    )
    return uses_host, _each_container(unprivileged), _each_container(held)


def host_pods_policy(privileged_namespaces: Sequence[str]) -> dict:
    """Pods in the namespaces the `privilegedNamespaces` setting lists, whoever creates them (the
    DaemonSet controller makes a DaemonSet's pods: a policy on the deployers' requests would not
    see them). Pod Security enforces nothing there, so this holds what the listed namespace is for,
    a node exporter that reads the host, and no more: no container privileged or adding a
    capability past baseline's; and in a pod that uses the host's network, PIDs, IPC or paths, every
    container runs as a user other than root (runAsUser, else runAsNonRoot: the kubelet starts a
    root image under it never) with `allowPrivilegeEscalation: false` (no setuid binary or file
    capability raises it), and mounts every host path read-only."""
    uses_host, unprivileged, held = _host_pod_conditions()
    where = "' in namespace ' + request.namespace"
    return {
        "failurePolicy": "Fail",
        "matchConstraints": {
            # A Pod's security context is fixed at its creation; an ephemeral container comes later,
            # through its own subresource. No other update is judged (a finalizer or a label on a
            # pod made before the policy, its deletion included, stays possible).
            "resourceRules": [
                {"apiGroups": [""], "apiVersions": ["*"], "operations": ["CREATE"], "resources": ["pods"]},
                {
                    "apiGroups": [""],
                    "apiVersions": ["*"],
                    "operations": ["UPDATE"],
                    "resources": ["pods/ephemeralcontainers"],
                },
            ],
            "namespaceSelector": {
                "matchExpressions": [{"key": NAMESPACE_NAME, "operator": "In", "values": sorted(privileged_namespaces)}]
            },
        },
        "variables": [
            {"name": "hostPaths", "expression": HOST_PATH_VOLUMES},
            {"name": "usesHost", "expression": uses_host},
        ],
        "validations": [
            {
                "expression": unprivileged,
                "messageExpression": "'Pod ' + object.metadata.name + " + where + " + ' has a privileged container "
                "or adds a capability past baseline: a privileged namespace is for reading the host, nothing more'",
                "reason": "Forbidden",
            },
            {
                # Without the host network, a hostPort is the CNI's DNAT of the node's port to the
                # pod: what reaches the node there (the API server's 6443 included) goes to it, and
                # it is published on the node's address. With it, the port is the node's own.
                "expression": "(has(object.spec.hostNetwork) && object.spec.hostNetwork) || "
                + _each_container("!has(c.ports) || c.ports.all(p, !has(p.hostPort) || p.hostPort == 0)"),
                "messageExpression": "'Pod ' + object.metadata.name + " + where + " + ' asks for a host port "
                "without the host network: the node would forward its port to the pod'",
                "reason": "Forbidden",
            },
            {
                "expression": f"!variables.usesHost || ({held})",
                "messageExpression": "'Pod ' + object.metadata.name + " + where + " + ' uses the host with a "
                "container that may run as root or gain privileges (runAsNonRoot or a runAsUser other than 0, and "
                "allowPrivilegeEscalation: false, are needed), or mounts a host path writable'",
                "reason": "Forbidden",
            },
        ],
    }


def app_service_account(platform_namespaces: Sequence[str]) -> str:
    """CEL: the request is a ServiceAccount's of a namespace that is not the platform's (its group
    `system:serviceaccounts:<namespace>`, which the API server adds to every ServiceAccount's token)."""
    prefix = "system:serviceaccounts:"
    platform = in_namespaces("g", [prefix + n for n in platform_namespaces])
    return (
        f"request.userInfo.groups.exists(g, g.startsWith({json.dumps(prefix)}))"
        f" && !request.userInfo.groups.exists(g, {platform})"
    )


def also_app_service_accounts(spec: dict, platform_namespaces: Sequence[str], outside_platform: bool = False) -> dict:
    """`spec`, judging the requests of the applications' namespaces' ServiceAccounts (their pods) as
    well as those of Git's identities (with `outside_platform`, theirs outside the platform's
    namespaces alone). A deployer may hand what it holds in its namespace to a pod there, a Role
    RBAC's escalation check admits."""
    condition = spec["matchConditions"][0]
    pods = app_service_account(platform_namespaces)
    if outside_platform:
        pods = f"{pods} && !{in_namespaces('request.namespace', platform_namespaces)}"
    condition["expression"] = f"{condition['expression']} || ({pods})"
    return spec


def webhooks_policy(requesters: Sequence[str], platform_namespaces: Sequence[str]) -> dict:
    """Mutating and validating webhook configurations written by Git's identities, or by a
    ServiceAccount of an application's namespace (a chart's webhook patcher, or a pod running as
    one): each webhook calls a Service (a URL may be anywhere), matches only WEBHOOK_RESOURCES in
    WEBHOOK_GROUPS by exact name, and one that matches Pods selects namespaces by an `In` list of
    names holding none of the platform's (`namespaceSelector`: terms are ANDed, so that list bounds
    what it sees). The deployer's `create` cannot be narrowed by name (RBAC has no name at create)."""
    rule_ok = (
        f"r.apiGroups.all(g, g in {cel_list(WEBHOOK_GROUPS)}) && r.resources.all(x, x in {cel_list(WEBHOOK_RESOURCES)})"
    )
    bounded = (
        "has(w.namespaceSelector) && has(w.namespaceSelector.matchExpressions)"
        " && w.namespaceSelector.matchExpressions.exists(e, e.key == "
        f"{json.dumps(NAMESPACE_NAME)} && e.operator == 'In' && has(e.values)"
        f" && e.values.all(n, !{in_namespaces('n', platform_namespaces)}))"
    )
    webhook_ok = (
        "has(w.clientConfig.service) && !has(w.clientConfig.url)"
        f" && w.rules.all(r, {rule_ok}) && (!w.rules.exists(r, 'pods' in r.resources) || {bounded})"
    )
    spec = _spec(
        requesters,
        ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"],
        group="admissionregistration.k8s.io",
        variables=[],
        validations=[
            {
                "expression": f"!has(object.webhooks) || object.webhooks.all(w, has(w.rules) && {webhook_ok})",
                "messageExpression": "request.kind.kind + ' ' + object.metadata.name + ': an application webhook "
                f"calls a Service in the cluster, sees only {', '.join(WEBHOOK_RESOURCES)} by name, and Pods only of "
                "the namespaces an In list on kubernetes.io/metadata.name names, none of the platform'",
                "reason": "Forbidden",
            }
        ],
    )
    return also_app_service_accounts(spec, platform_namespaces)
