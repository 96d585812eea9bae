"""The world model against a cluster's record (tools/e2e records it on kind; the sample here is
shaped as `record` writes it, built by hand: no cluster runs here)."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT

from spitikos import world_check
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
    before = [*sample("before"), Existing("coordination.k8s.io/v1", "Lease", "keda", "operator.keda.sh")]
    assert world_check.differences(before, after, world_check.platform_namespaces()) == [
        "missing: Secret argocd/argocd-redis (AT_START lists it; the cluster does not hold it)",
        "already there: Lease keda/operator.keda.sh (AT_START says the platform makes it; it was there before)",
        "unlisted: Secret keda/keda-webhook-certs (made while the platform came up, by no release and not by "
        "the program; AT_START omits it)",
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
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": '{"data": {"p": "aHVudGVyMg=="}}'},
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
        "annotations": {},
    }


@pytest.mark.parametrize("builtin_only", [False, True])
def test_the_recorded_kinds_are_the_models(builtin_only):
    kinds = world_check.kinds(builtin_only)
    assert {o.kind.lower() for o in AT_START if o.api_version.split("/")[0] != "argoproj.io"} <= set(kinds)
    assert ("appproject" in kinds) is not builtin_only
