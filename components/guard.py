"""A guard inside the cluster: what Argo CD may never do, whatever a commit to an app's chart says.

Argo CD's projects decide which kinds an application may create, but not what a ClusterRole
grants or whom a binding makes cluster-admin, and no project can restrict an Application's source
path. ValidatingAdmissionPolicies (built into Kubernetes since 1.30: no webhook, no pod) refuse,
when the requester is Argo CD's application controller:
- a binding to cluster-admin, admin, system:* or the platform's and k3s's own ClusterRoles, unless
  the operator lists that binding (the `allowedAdminBindings` setting);
- a Role or ClusterRole that grants every resource (`*`), `escalate`, `bind` or `impersonate`, or
  `*` verbs where they include those (RBAC's and authentication's groups, users, groups and
  service accounts), or that aggregates other roles' rules;
- a Namespace labelled Pod Security `privileged`, unless the operator lists it (the
  `privilegedNamespaces` setting): the cluster's default for unlabelled ones is `baseline`.
One policy per shape of object: each is type-checked against the kinds it matches, and a binding
has no `rules`, a role no `roleRef`, a Role no `aggregationRule`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.argocd import NAMESPACE as ARGOCD_NAMESPACE
from components.kube import PLATFORM_LABELS, with_provider

RBAC = "rbac.authorization.k8s.io"
# The chart's `controller.serviceAccount.name` (argo-cd 10.1.1), in the release's namespace.
ARGOCD_CONTROLLER = f"system:serviceaccount:{ARGOCD_NAMESPACE}:argocd-application-controller"

# ClusterRoles whose binding makes its subjects cluster-admin, or the controller of a part of the
# platform (Argo CD's own roles hold `*` on `*`): Kubernetes' own, k3s's (its manifests' names) and
# the platform's charts' (argocd-*, keda-*, nginx-gateway*).
ADMIN_ROLES = ("cluster-admin", "admin", "kube-apiserver-kubelet-admin")
ADMIN_ROLE_PREFIXES = (
    "system:",
    "argocd-",
    "keda-",
    "nginx-gateway",
    "k3s-",
    "local-path-provisioner-",
    "metrics-server:",
)
# Verbs that let the holder grant or assume rights it does not have (RBAC's escalation check
# stops at them), and where a `*` verb includes them.
ESCALATING_VERBS = ("escalate", "bind", "impersonate")
ESCALATING_GROUPS = ("*", RBAC, "authentication.k8s.io")
IMPERSONABLE = ("users", "groups", "serviceaccounts")

BINDINGS_POLICY = "argocd-binds-no-admin-role"
ROLES_POLICY = "argocd-grants-no-wildcard"
AGGREGATION_POLICY = "argocd-aggregates-no-role"
NAMESPACES_POLICY = "argocd-labels-no-privileged-namespace"
ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"


@dataclass
class ClusterGuardArgs:
    provider: k8s.Provider
    allowed_admin_bindings: Sequence[str] = field(default_factory=list)
    """`ClusterRoleBinding/<name>` or `RoleBinding/<namespace>/<name>`: the only admin bindings allowed."""
    privileged_namespaces: Sequence[str] = field(default_factory=list)
    """The only namespaces Argo CD may label Pod Security `privileged`."""
    requester: str = ARGOCD_CONTROLLER
    """Whose requests the policies judge: Argo CD's application controller."""


class ClusterGuard(pulumi.ComponentResource):
    """Admission policies, with `Deny` bindings, that keep Argo CD's applications below cluster-admin."""

    policies: list[str]
    """The ValidatingAdmissionPolicies' names."""

    def __init__(self, name: str, args: ClusterGuardArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spitikos:guard:ClusterGuard", name, None, with_provider(opts, args.provider))
        self._denying_policy(
            f"{name}-bindings", BINDINGS_POLICY, bindings_policy(args.requester, args.allowed_admin_bindings)
        )
        self._denying_policy(f"{name}-roles", ROLES_POLICY, roles_policy(args.requester))
        self._denying_policy(f"{name}-aggregation", AGGREGATION_POLICY, aggregation_policy(args.requester))
        self._denying_policy(
            f"{name}-namespaces", NAMESPACES_POLICY, namespaces_policy(args.requester, args.privileged_namespaces)
        )
        self.policies = [BINDINGS_POLICY, ROLES_POLICY, AGGREGATION_POLICY, NAMESPACES_POLICY]
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
    requester: str, resources: list[str], variables: list[dict], validations: list[dict], group: str = RBAC
) -> dict:
    return {
        "failurePolicy": "Fail",
        "matchConstraints": {
            "resourceRules": [
                {
                    "apiGroups": [group],
                    "apiVersions": ["*"],
                    "operations": ["CREATE", "UPDATE"],
                    "resources": resources,
                }
            ]
        },
        "matchConditions": [{"name": "argocd-application-controller", "expression": requester_is(requester)}],
        "variables": variables,
        "validations": validations,
    }


def requester_is(requester: str) -> str:
    return f"request.userInfo.username == {json.dumps(requester)}"


def bindings_policy(requester: str, allowed: Sequence[str]) -> dict:
    """RoleBindings and ClusterRoleBindings to an admin ClusterRole, unless listed."""
    admin_role = (
        "object.roleRef.kind == 'ClusterRole' && (object.roleRef.name in "
        f"{cel_list(ADMIN_ROLES)} || {cel_list(ADMIN_ROLE_PREFIXES)}.exists(p, object.roleRef.name.startsWith(p)))"
    )
    return _spec(
        requester,
        ["rolebindings", "clusterrolebindings"],
        variables=[
            # What the setting names: `ClusterRoleBinding/<name>` or `RoleBinding/<namespace>/<name>`.
            {
                "name": "binding",
                "expression": "request.kind.kind + '/' + (request.namespace == '' ? '' : request.namespace + '/')"
                " + object.metadata.name",
            },
            {"name": "listed", "expression": f"variables.binding in {cel_list(allowed)}"},
            {"name": "adminRole", "expression": admin_role},
        ],
        validations=[
            {
                "expression": "variables.listed || !variables.adminRole",
                "messageExpression": "variables.binding + ' binds the ClusterRole ' + object.roleRef.name + "
                "': Argo CD may bind an admin role only where the allowedAdminBindings setting lists the binding'",
                "reason": "Forbidden",
            }
        ],
    )


def roles_policy(requester: str) -> dict:
    """Roles and ClusterRoles that grant wholesale, escalate, or gather other roles' rules."""
    wildcard = (
        "(has(r.resources) && '*' in r.resources)"
        f" || r.verbs.exists(v, v in {cel_list(ESCALATING_VERBS)})"
        " || ('*' in r.verbs && has(r.apiGroups)"
        f" && (r.apiGroups.exists(g, g in {cel_list(ESCALATING_GROUPS)})"
        f" || ('' in r.apiGroups && has(r.resources) && r.resources.exists(x, x in {cel_list(IMPERSONABLE)}))))"
    )
    return _spec(
        requester,
        ["roles", "clusterroles"],
        variables=[{"name": "wildcard", "expression": f"has(object.rules) && object.rules.exists(r, {wildcard})"}],
        validations=[
            {
                "expression": "!variables.wildcard",
                "messageExpression": "request.kind.kind + ' ' + object.metadata.name + ' grants every resource, "
                "escalate, bind or impersonate (or * verbs that include them): Argo CD may not create it'",
                "reason": "Forbidden",
            },
        ],
    )


def aggregation_policy(requester: str) -> dict:
    """ClusterRoles with an aggregationRule: it gathers the rules of every ClusterRole its selectors
    match (cluster-admin's too), and the controller-manager writes them, not Argo CD."""
    return _spec(
        requester,
        ["clusterroles"],
        variables=[],
        validations=[
            {
                "expression": "!has(object.aggregationRule)",
                "messageExpression": "'ClusterRole ' + object.metadata.name + "
                "' aggregates other roles: Argo CD may not create it'",
                "reason": "Forbidden",
            }
        ],
    )


def namespaces_policy(requester: str, privileged: Sequence[str]) -> dict:
    """Namespaces labelled Pod Security `privileged` (a Namespace in Git, or an Application's
    `managedNamespaceMetadata`), unless listed: without the label, the cluster's default
    (`baseline`) holds."""
    label = f"object.metadata.labels[{json.dumps(ENFORCE_LABEL)}]"
    return _spec(
        requester,
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
