"""The world model against a cluster's record (tools/e2e records it on kind; the sample here is
shaped as `record` writes it, built by hand: no cluster runs here)."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT

from spitikos import world, world_check
from spitikos.world import AT_START, Existing

SAMPLE = ROOT / "tests" / "fixtures" / "e2e-world"


def sample(name: str) -> list[Existing]:
    return world_check.load(json.loads((SAMPLE / f"{name}.json").read_text()))


def test_a_cluster_that_matches_the_model_shows_no_difference():
    """Helm's objects, Helm's release records, the program's own, the per-namespace defaults and
    an application's namespace are none of AT_START's business."""
    assert world_check.differences(sample("before"), sample("after"), world_check.platform_namespaces()) == []


def test_every_difference_is_named():
    after = [o for o in sample("after") if o.name != "argocd-redis"]
    after.append(Existing("v1", "Secret", "keda", "keda-webhook-certs"))
    after.append(Existing("v1", "ConfigMap", "keda", "keda-hook", annotations=((world.HELM_HOOK, "post-install"),)))
    before = [*sample("before"), Existing("coordination.k8s.io/v1", "Lease", "keda", "operator.keda.sh")]
    assert world_check.differences(before, after, world_check.platform_namespaces()) == [
        "missing: Secret argocd/argocd-redis (AT_START lists it; the cluster does not hold it)",
        "already there: Lease keda/operator.keda.sh (AT_START says the platform makes it; it was there before)",
        "unlisted: Secret keda/keda-webhook-certs (made while the platform came up, by no release and not by "
        "the program; AT_START omits it)",
        "unlisted: ConfigMap keda/keda-hook (left by a Helm hook: post-install, delete policy none: "
        "before-hook-creation; AT_START omits it)",
    ]


def test_the_model_expects_nothing_of_a_namespace_the_stack_does_not_make():
    """VolSync runs only with backups: the e2e stack makes no volsync-system, and its Lease is not
    missing there; where the namespace exists, it is."""
    lease = "missing: Lease volsync-system/b95b3104.backube (AT_START lists it; the cluster does not hold it)"
    assert lease not in world_check.differences(sample("before"), sample("after"), world_check.platform_namespaces())
    volsync = Existing("v1", "Namespace", None, "volsync-system", labels=((world.MANAGED_BY, "pulumi"),))
    found = world_check.differences(sample("before"), [*sample("after"), volsync], world_check.platform_namespaces())
    assert found == [lease]


# --- what Helm leaves of a rendered chart (`make render` runs this on every real chart) -----------


def hooked(kind: str, name: str, events: str, policy: str | None = None, **spec) -> dict:
    notes = {world.HELM_HOOK: events} | ({world.HELM_HOOK_DELETE_POLICY: policy} if policy else {})
    api = {"Job": "batch/v1", "Role": world.RBAC, "RoleBinding": world.RBAC}.get(kind, "v1")
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name, "annotations": notes}, **spec}


# argo-cd 10.1.1's objects as `helm template` renders them (templates/redis-secret-init/), trimmed.
ARGOCD = [
    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "argocd-server", "namespace": "argocd"}},
    {"apiVersion": world.CRD, "kind": "CustomResourceDefinition", "metadata": {"name": "applications.argoproj.io"}},
    *(
        hooked(kind, "argocd-redis-secret-init", "pre-install,pre-upgrade", "before-hook-creation")
        for kind in ("ServiceAccount", "Role", "RoleBinding")
    ),
    hooked(
        "Job",
        "argocd-redis-secret-init",
        "pre-install,pre-upgrade",
        "before-hook-creation",
        spec={"ttlSecondsAfterFinished": 60},
    ),
]
# ingress-nginx 4.15.1's admission hooks: deleted once they succeed.
INGRESS_NGINX = [
    hooked(
        kind,
        "ingress-nginx-admission",
        "pre-install,pre-upgrade,post-install,post-upgrade",
        "before-hook-creation,hook-succeeded",
    )
    for kind in ("ServiceAccount", "Role", "RoleBinding")
]


def test_helm_leaves_the_manifest_owned_and_the_hooks_their_policy_keeps():
    items = world_check.helm_install("argocd", "argocd", ARGOCD)["items"]
    left = {(o["kind"], o["metadata"]["namespace"]): o["metadata"] for o in items}
    assert set(left) == {
        ("Deployment", "argocd"),
        ("CustomResourceDefinition", None),
        ("ServiceAccount", "argocd"),
        ("Role", "argocd"),
        ("RoleBinding", "argocd"),
    }, "the Job is gone: its TTL controller deletes it a minute after it finished"
    owned = {world.HELM_RELEASE_NAME: "argocd", world.HELM_RELEASE_NAMESPACE: "argocd"}
    assert left["Deployment", "argocd"]["annotations"] == owned
    assert left["Deployment", "argocd"]["labels"] == {world.MANAGED_BY: "Helm"}
    assert world.HELM_RELEASE_NAME not in left["Role", "argocd"]["annotations"]
    assert world_check.helm_install("ingress-nginx", "ingress-nginx", INGRESS_NGINX)["items"] == []


def test_every_hook_object_a_chart_leaves_must_be_in_the_model_and_every_listed_one_left():
    charts = [("argocd", "argocd", ARGOCD), ("ingress-nginx", "ingress-nginx", INGRESS_NGINX)]
    assert world_check.hook_problems(charts) == []
    assert [str(o) for o in world_check.left_by_hooks(charts)] == [
        f"{kind} argocd/argocd-redis-secret-init" for kind in ("Role", "RoleBinding", "ServiceAccount")
    ]
    new_hook = hooked("ConfigMap", "keda-hook", "post-install")
    assert world_check.hook_problems([*charts, ("keda", "keda", [new_hook])]) == [
        "unlisted: ConfigMap keda/keda-hook (left by a Helm hook: post-install, delete policy none: "
        "before-hook-creation; AT_START omits it)"
    ]
    assert world_check.hook_problems([("argocd", "argocd", ARGOCD[:2])]) == [
        f"missing: {kind} argocd/argocd-redis-secret-init (AT_START lists it; the cluster does not hold it)"
        for kind in ("ServiceAccount", "Role", "RoleBinding")
    ]
    upgrade_only = hooked("ConfigMap", "migrated", "pre-upgrade")
    assert world_check.hook_problems([*charts, ("keda", "keda", [upgrade_only])]) == [
        "left after an upgrade, not an install: ConfigMap keda/migrated (the e2e run sees an install only)"
    ]


def test_the_cli_fails_on_a_difference(tmp_path, capsys):
    after = json.loads((SAMPLE / "after.json").read_text())
    (tmp_path / "after.json").write_text(json.dumps([o for o in after if o["name"] != "kedaorg-certs"]))
    assert world_check.main(["compare", str(SAMPLE / "before.json"), str(tmp_path / "after.json")]) == 1
    assert "world model: missing: Secret keda/kedaorg-certs" in capsys.readouterr().out
    assert world_check.main(["compare", str(SAMPLE / "before.json"), str(SAMPLE / "after.json")]) == 0


def test_a_record_keeps_identity_and_ownership_and_drops_every_value():
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "s",
            "namespace": "argocd",
            "labels": {"app.kubernetes.io/managed-by": "Helm", "team": "x"},
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": '{"data": {"p": "aHVudGVyMg=="}}',
                "helm.sh/hook": "pre-install",
            },
        },
        "data": {"p": "aHVudGVyMg=="},
    }
    (recorded,) = world_check.record({"items": [secret]})
    assert recorded == {
        "apiVersion": "v1",
        "kind": "Secret",
        "namespace": "argocd",
        "name": "s",
        "labels": {"app.kubernetes.io/managed-by": "Helm"},
        "annotations": {"helm.sh/hook": "pre-install"},  # who made it: world.owner reads it
    }


@pytest.mark.parametrize("builtin_only", [False, True])
def test_the_recorded_kinds_are_the_models(builtin_only):
    kinds = world_check.kinds(builtin_only)
    assert {o.kind.lower() for o in AT_START if o.api_version.split("/")[0] != "argoproj.io"} <= set(kinds)
    assert ("appproject" in kinds) is not builtin_only
