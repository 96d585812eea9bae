"""`python -m spitikos plan`: the offline plan of a stack."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import DUMMY_SECRETS

from spitikos import plan as offline
from spitikos.__main__ import main
from spitikos.engine import MOCK_TUNNEL_TOKEN


def test_critical_path_of_a_small_graph():
    # a(1) -> b(0) -> c(1) -> e(1);  d(1) -> e;  f(5) alone.
    weights = {"a": 1, "b": 0, "c": 1, "d": 1, "e": 1, "f": 5}
    deps = {"b": {"a"}, "c": {"b"}, "e": {"c", "d"}}
    assert offline.critical_path(weights, deps) == (5, ["f"])
    weights["f"] = 2
    assert offline.critical_path(weights, deps) == (3, ["a", "b", "c", "e"])


def test_critical_path_prefers_the_heavier_branch_and_ignores_unknown_nodes():
    weights = {"root": 0, "light": 1, "heavy": 3, "end": 1}
    deps = {"light": {"root"}, "heavy": {"root"}, "end": {"light", "heavy", "outside"}}
    assert offline.critical_path(weights, deps) == (4, ["root", "heavy", "end"])


def test_a_dependency_cycle_is_reported():
    with pytest.raises(ValueError, match="cycle"):
        offline.critical_path({"a": 1, "b": 1}, {"a": {"b"}, "b": {"a"}})


def test_waves_group_what_can_run_in_parallel():
    deps = {"b": {"a"}, "c": {"a"}, "d": {"b", "c"}, "e": set()}
    assert offline.waves("abcde", deps) == [["a", "e"], ["b", "c"], ["d"]]


@pytest.fixture(scope="module")
def pi5_plan():
    return offline.build("pi5")


def test_the_pi5_plan_contains_every_component(pi5_plan):
    components = {r.type for r in pi5_plan.resources if r.type.startswith("spitikos:")}
    assert components == {
        "spitikos:platform:Platform",
        "spitikos:k3s:K3sCluster",
        "spitikos:ingress:IngressNginx",
        "spitikos:cache:Redis",
        "spitikos:autoscaling:Keda",
        "spitikos:gitops:ArgoCd",
        "spitikos:github:GitHub",
        "spitikos:tunnel:Tunnel",
        "spitikos:apps:AppNamespace",
    }
    text = offline.render(pi5_plan)
    assert text.startswith("OFFLINE PLAN - not a preview of live state.")
    for component in ("spitikos-k3s", "spitikos-argocd", "spitikos-tunnel", "spitikos-github"):
        assert f"- {component}  (spitikos:" in text


def test_the_plan_finds_the_install_release_root_application_chain(pi5_plan):
    weight, path = pi5_plan.critical_path()
    slow = [r.name for r in path if offline.is_slow(r)]
    assert weight == 3
    assert slow == ["spitikos-k3s-server-install", "spitikos-argocd-release", "spitikos-argocd-root-application"]
    releases_wave = next(w for w in pi5_plan.waves() if any(r.name == "spitikos-argocd-release" for r in w))
    assert {"spitikos-keda-release", "spitikos-ingress-nginx-release"} <= {r.name for r in releases_wave}


def test_secrets_are_redacted_in_the_json(pi5_plan):
    text = json.dumps(pi5_plan.to_json())
    generated = pi5_plan.recording.generated_secrets()
    assert len(generated) >= 8
    for secret in [*DUMMY_SECRETS.values(), MOCK_TUNNEL_TOKEN, *generated]:
        assert secret.strip() not in text
    assert text.count(offline.REDACTED) >= 10
    resources = pi5_plan.to_json()["resources"]
    release = next(r for r in resources if r["name"] == "spitikos-argocd-release")
    assert release["inputs"]["values"] == offline.REDACTED
    assert release["dependencies"] and release["parent"].endswith("spitikos-argocd")


def test_out_writes_the_objects_the_routes_and_the_plan(tmp_path, capsys):
    assert main(["plan", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "not a preview of live state" in printed and "Critical path: 3 slow steps" in printed
    redis = yaml.safe_load((tmp_path / "kubernetes" / "deployment-redis-redis.yaml").read_text())
    assert redis["kind"] == "Deployment" and redis["spec"]["replicas"] == 1
    secret = yaml.safe_load((tmp_path / "kubernetes" / "secret-redis-redis-auth.yaml").read_text())
    assert secret["stringData"] == offline.REDACTED
    tunnel = yaml.safe_load((tmp_path / "tunnel.yaml").read_text())
    assert [r.get("hostname") for r in tunnel["routes"]][-1] is None
    assert {"api.taehoonlee.cloud", "spitikos.dev", "*.taehoonlee.cloud"} <= {d["name"] for d in tunnel["dns"]}
    data = json.loads((tmp_path / "plan.json").read_text())
    assert data["stack"] == "pi5" and data["footprint"]["leftForApplicationsMi"] >= 2560


def test_an_unknown_stack_is_refused_clearly(capsys):
    assert main(["plan", "--stack", "nope"]) == 2
    assert "no stack file Pulumi.nope.yaml: known stacks are ['pi5']" in capsys.readouterr().err


def _reversed(value):
    """The same value with every mapping's keys in reverse order."""
    if isinstance(value, dict):
        return {k: _reversed(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed(v) for v in value]
    return value


def test_the_plan_does_not_depend_on_registration_or_key_order(pi5_plan, tmp_path):
    """Both vary between runs (concurrent registration, unordered protobuf maps); CI diffs plans."""
    import dataclasses

    from spitikos.engine import Recording

    registrations = {
        urn: dataclasses.replace(reg, inputs=_reversed(reg.inputs), state=_reversed(reg.state))
        for urn, reg in reversed(list(pi5_plan.recording.registrations.items()))
    }
    shuffled = offline.Plan(pi5_plan.stack, Recording(registrations, {}), pi5_plan.placeholders)
    assert offline.render(shuffled) == offline.render(pi5_plan)
    first = offline.write(pi5_plan, tmp_path / "first")
    second = offline.write(shuffled, tmp_path / "second")
    assert [p.relative_to(tmp_path / "first") for p in first] != []
    for a, b in zip(first, second, strict=True):
        assert a.relative_to(tmp_path / "first") == b.relative_to(tmp_path / "second")
        assert a.read_text() == b.read_text(), a.name
