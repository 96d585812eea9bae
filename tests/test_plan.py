"""`python -m spitikos plan`: the offline plan of a stack."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import yaml
from conftest import DUMMY_SECRETS, ROOT

from spitikos import plan as offline
from spitikos.__main__ import main
from spitikos.engine import MOCK_TUNNEL_TOKEN
from spitikos.stack import known_stacks


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


def test_critical_path_ties_go_to_the_longer_chain_not_the_name():
    # install waits for both host-key (0) and preflight (0), and preflight for host-key: the path
    # must go through preflight, whatever the names sort to.
    weights = {"a-host-key": 0, "z-preflight": 0, "install": 1}
    deps = {"z-preflight": {"a-host-key"}, "install": {"a-host-key", "z-preflight"}}
    assert offline.critical_path(weights, deps) == (1, ["a-host-key", "z-preflight", "install"])


def test_the_critical_path_shows_every_wave_up_to_the_root_application(pi5_plan):
    """A step left out (the node's preflight, wave 4) would hide a wait from the reader."""
    _, path = pi5_plan.critical_path()
    wave_of = {r.urn: i for i, wave in enumerate(pi5_plan.waves()) for r in wave}
    assert [wave_of[r.urn] for r in path] == list(range(len(path)))
    assert "spitikos-k3s-server-preflight" in [r.name for r in path]


def test_the_example_stack_is_neutral_and_plans(fresh):
    """The file a newcomer copies names no one's organization, and the tests run it (`fresh`)."""
    text = (ROOT / "Pulumi.example.yaml").read_text()
    for real in ("taehoonlee", "spitikos.dev", "gmail", "10.0.0.200", "githubOwner: spitikos"):
        assert real not in text
    plan = offline.from_recording(fresh, "example")
    assert offline.render(plan).count("\n") > 100
    assert "example.org" in {r.values.get("name") for r in fresh.of_type("cloudflare:index/dnsRecord:DnsRecord")}


def test_the_summary_counts_components_names_nodes_and_access_and_estimates_the_deploy(pi5_plan):
    text = offline.render(pi5_plan)
    summary = text.split("Summary:\n", 1)[1].split("\n\n", 1)[0]
    argocd = sum(1 for r in pi5_plan.resources if pi5_plan.component_of(r) == "spitikos-argocd")
    assert f"spitikos-argocd {argocd}," in summary and argocd > 5
    assert "spitikos-k3s-server ubuntu@10.0.0.200:22." in summary  # the port, not `[secret]`
    assert "argocd.taehoonlee.cloud [Access]" in summary and "api.taehoonlee.cloud [Access]" not in summary
    assert "ssh.taehoonlee.cloud [Access]" in summary and "spitikos.dev," in summary
    assert offline.estimated_minutes(pi5_plan) == 8 + 5 + 3  # install, Argo CD's release, root Application
    assert "about 16 min of slow steps in a row" in summary


def test_the_picture_shows_components_and_the_critical_paths_slow_steps_in_order(pi5_plan):
    picture = offline.mermaid(pi5_plan)
    chart = picture.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert chart.startswith("flowchart LR\n")
    for component in ("spitikos-k3s", "spitikos-argocd", "spitikos-tunnel", "spitikos-github"):
        assert f'["{component}<br/>' in chart
    slow = re.findall(r'^  (s\d+)\[\["([^<]+)<br/>', chart, re.M)
    assert [name for _, name in slow] == [r.name for r in pi5_plan.critical_path()[1] if offline.is_slow(r)]
    assert "  s0 ==> s1\n  s1 ==> s2\n" in chart


def test_provider_outputs_that_could_pass_for_real_ones_say_they_are_placeholders(pi5_plan):
    tunnel = yaml.safe_load(offline.files(pi5_plan)["tunnel.yaml"])
    tags = [t for r in tunnel["routes"] for t in r.get("originRequest", {}).get("access", {}).get("audTags", [])]
    assert tags and all(t.startswith("placeholder-aud-") for t in tags)
    assert {d["content"] for d in tunnel["dns"]} == {"placeholder-tunnel-id.cfargotunnel.com"}


def test_make_snapshot_says_what_changed(pi5_plan, tmp_path, monkeypatch):
    monkeypatch.setattr(offline, "build", lambda stack: pi5_plan)
    directory = tmp_path / "pi5"
    (directory / "kubernetes").mkdir(parents=True)
    (directory / "kubernetes" / "deployment-old-gone.yaml").write_text("kind: Deployment\n")
    (directory / "plan.txt").write_text(offline.render(pi5_plan).replace("Summary:\n", "Summary:\nold line\n"))
    said = offline.rewrite_snapshot("pi5", directory).splitlines()
    new = len(offline.snapshot(pi5_plan)) - 1
    assert said[0].endswith(f": {new + 2} files changed; review, then commit them:")
    assert "D kubernetes/deployment-old-gone.yaml (1 lines)" in said
    assert "M plan.txt (+0 -1)" in said and "A plan.json" in " ".join(said)
    assert offline.snapshot_changes({"a": "x\n"}, {"a": "x\n"}) == []


def test_a_dependency_cycle_is_reported():
    with pytest.raises(ValueError, match="cycle"):
        offline.critical_path({"a": 1, "b": 1}, {"a": {"b"}, "b": {"a"}})


def test_waves_group_what_can_run_in_parallel():
    deps = {"b": {"a"}, "c": {"a"}, "d": {"b", "c"}, "e": set()}
    assert offline.waves("abcde", deps) == [["a", "e"], ["b", "c"], ["d"]]


def test_the_pi5_plan_contains_every_component(pi5_plan):
    components = {r.type for r in pi5_plan.resources if r.type.startswith("spitikos:")}
    assert components == {
        "spitikos:platform:Platform",
        "spitikos:k3s:K3sCluster",
        "spitikos:gateway:Edge",
        "spitikos:cache:Redis",
        "spitikos:autoscaling:Keda",
        "spitikos:gitops:ArgoCd",
        "spitikos:github:GitHub",
        "spitikos:tunnel:Tunnel",
        "spitikos:apps:AppNamespace",
        "spitikos:guard:ClusterGuard",
        "spitikos:r2:BackupBucket",
        "spitikos:backup:VolumeBackups",
        "spitikos:autoscaling:KedaHttp",
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
    # The releases start as soon as the cluster is there, none after another, but KEDA's HTTP
    # add-on, whose chart installs a ScaledObject: after KEDA's CRDs, still 3 slow steps in a row.
    releases = [r for r in pi5_plan.resources if r.type == offline.RELEASE]
    assert len(releases) == 5
    after_keda = {"spitikos-keda-http-release": {"spitikos-keda-release"}}
    for release in releases:
        waits_for = {r.name for r in releases if r.urn in pi5_plan.recording.ancestors_closure(release.urn)}
        assert waits_for == after_keda.get(release.name, set()), release.name


def test_secrets_are_redacted_in_the_json(pi5_plan):
    text = json.dumps(pi5_plan.to_json())
    generated = pi5_plan.recording.generated_secrets()
    assert len(generated) >= 8
    for secret in [*DUMMY_SECRETS.values(), MOCK_TUNNEL_TOKEN, *generated]:
        assert secret.strip() not in text
    assert text.count(offline.REDACTED) >= 10
    resources = pi5_plan.to_json()["resources"]
    release = next(r for r in resources if r["name"] == "spitikos-argocd-release")
    # Only the secret leaves of Argo CD's values are hidden: a change like `exec.enabled` shows.
    values = release["inputs"]["values"]
    assert values["configs"]["cm"]["exec.enabled"] is False
    assert values["configs"]["secret"]["githubSecret"] == offline.REDACTED
    assert values["configs"]["secret"]["argocdServerAdminPassword"] == offline.REDACTED
    assert values["configs"]["secret"]["argocdServerAdminPasswordMtime"] != offline.REDACTED
    assert release["dependencies"] and release["parent"].endswith("spitikos-argocd")


def test_building_a_plan_runs_the_stacks_main_with_its_offline_settings(stack, monkeypatch):
    """What `build` hands the program: the run the CLI test below reuses from the session."""
    from conftest import MAIN, stack_config

    calls = []
    monkeypatch.setattr(offline, "run_file", lambda *args: calls.append(args) or stack)
    plan = offline.build("pi5")
    ((path, config, secret_keys),) = calls
    # pi5 installs k3s: no kubeconfig is given to it.
    expected_secrets = sorted(k for k in DUMMY_SECRETS if k != "spitikos:kubeconfig")
    assert path == MAIN and config == stack_config() and sorted(secret_keys) == expected_secrets
    assert plan.recording is stack and "spitikos:cloudflareAccountId" in plan.placeholders


def test_out_writes_the_objects_the_routes_and_the_plan(pi5_plan, tmp_path, capsys, monkeypatch):
    built = []
    monkeypatch.setattr(offline, "build", lambda stack: built.append(stack) or pi5_plan)
    assert main(["plan", "--stack", "pi5", "--out", str(tmp_path)]) == 0
    assert built == ["pi5"]
    printed = capsys.readouterr().out
    assert "not a preview of live state" in printed and "Critical path: 3 slow steps" in printed
    redis = yaml.safe_load((tmp_path / "kubernetes" / "deployment-redis-redis.yaml").read_text())
    assert redis["kind"] == "Deployment" and redis["spec"]["replicas"] == 1
    secret = yaml.safe_load((tmp_path / "kubernetes" / "secret-redis-redis-auth.yaml").read_text())
    assert secret["stringData"] == {key: offline.REDACTED for key in secret["stringData"]} != {}
    env = yaml.safe_load((tmp_path / "kubernetes" / "secret-api-platform-env.yaml").read_text())
    assert set(env["stringData"]) >= {"REDIS_URL", "REDIS_PASSWORD", "REDIS_ADDRESS"}
    assert set(env["stringData"].values()) <= {offline.REDACTED, "redis.redis.svc.cluster.local:6379"}
    assert (tmp_path / "plan.txt").read_text() == offline.render(pi5_plan)
    tunnel = yaml.safe_load((tmp_path / "tunnel.yaml").read_text())
    assert [r.get("hostname") for r in tunnel["routes"]][-1] is None
    assert {"api.taehoonlee.cloud", "spitikos.dev", "*.taehoonlee.cloud"} <= {d["name"] for d in tunnel["dns"]}
    data = json.loads((tmp_path / "plan.json").read_text())
    assert data["stack"] == "pi5" and data["footprint"]["leftForApplicationsMi"] >= 2560


def test_an_unknown_stack_is_refused_clearly(capsys):
    """Independent of which stack files exist: an operator's own `Pulumi.<stack>.yaml` must not break it."""
    assert main(["plan", "--stack", "nope"]) == 2
    err = capsys.readouterr().err
    assert f"no stack file Pulumi.nope.yaml: known stacks are {known_stacks()}" in err
    assert "'pi5'" in err


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


def test_out_removes_what_an_earlier_run_wrote_and_nothing_else(pi5_plan, tmp_path):
    gone = tmp_path / "kubernetes" / "deployment-old-removed.yaml"
    gone.parent.mkdir()
    gone.write_text("kind: Deployment\n")
    mine = [tmp_path / "notes.md", tmp_path / "kubernetes" / "README.md"]
    for path in mine:
        path.write_text("the operator's own\n")
    # A `kubernetes/*.yaml` is the plan's whoever wrote it (docs/development.md says so): it goes too.
    handwritten = tmp_path / "kubernetes" / "my-own.yaml"
    handwritten.write_text("kind: ConfigMap\n")
    written = offline.write(pi5_plan, tmp_path)
    assert not gone.exists() and not handwritten.exists()
    assert all(path.exists() for path in mine)
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == sorted([*written, *mine])


def test_manifests_keep_whole_numbers_integers(pi5_plan, tmp_path):
    """The wire carries numbers as doubles; kubectl refuses `replicas: 2.0` and `containerPort: 2000.0`."""
    offline.write(pi5_plan, tmp_path)
    cloudflared = (tmp_path / "kubernetes" / "deployment-cloudflared-cloudflared.yaml").read_text()
    assert "\n  replicas: 2\n" in cloudflared and "containerPort: 2000\n" in cloudflared
    assert "\n  ttl: 1\n" in (tmp_path / "tunnel.yaml").read_text()
    redis = yaml.safe_load((tmp_path / "kubernetes" / "deployment-redis-redis.yaml").read_text())
    assert type(redis["spec"]["replicas"]) is int
    assert type(redis["spec"]["template"]["spec"]["securityContext"]["runAsUser"]) is int
    for path in [*tmp_path.glob("kubernetes/*.yaml"), tmp_path / "tunnel.yaml"]:
        assert not re.search(r": \d+\.0$", path.read_text(), re.MULTILINE), (
            f"{path.name} writes a whole number as a float"
        )
    assert '"replicas": 2.0' not in (tmp_path / "plan.json").read_text()


def project_copy(tmp_path, stack_file: str):
    """A project folder with the real Pulumi.yaml and the given `Pulumi.leaky.yaml`."""
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "Pulumi.leaky.yaml").write_text(stack_file)
    return tmp_path


LEAKY = "config:\n  spitikos:domain: spitikos.dev\n  spitikos:githubToken: ghp_abcdefghijklmnopqrstuvwxyz\n"


def test_a_secret_in_plain_text_in_the_stack_file_is_refused_as_pulumi_up_refuses_it(tmp_path):
    from spitikos.stack import StackFileError, offline_config

    with pytest.raises(StackFileError) as raised:
        offline_config("leaky", project_copy(tmp_path, LEAKY))
    assert "spitikos:githubToken must be encrypted" in str(raised.value)
    assert "pulumi config set --secret githubToken" in str(raised.value)
    assert "ghp_abc" not in str(raised.value)


def test_an_encrypted_secret_in_the_stack_file_is_replaced_by_its_placeholder(tmp_path):
    from spitikos.stack import PLACEHOLDER_SECRETS, offline_config

    encrypted = LEAKY.replace("ghp_abcdefghijklmnopqrstuvwxyz", "{secure: v1:AAAABBBBCCCC}")
    config, secret_keys, _ = offline_config("leaky", project_copy(tmp_path, encrypted))
    assert config["spitikos:githubToken"] == PLACEHOLDER_SECRETS["spitikos:githubToken"]
    assert "spitikos:githubToken" in secret_keys


def test_the_cli_prints_the_refusal_and_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(offline, "ROOT", project_copy(tmp_path, LEAKY))
    assert main(["plan", "--stack", "leaky"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("plan: Pulumi.leaky.yaml: spitikos:githubToken must be encrypted")


def test_which_keys_are_secret_comes_from_the_config_schema(tmp_path):
    from spitikos.stack import PLACEHOLDER_SECRETS, offline_config, secret_keys

    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    marked = {k for k, spec in declared.items() if spec.get("secret") or spec["description"].startswith("Secret.")}
    assert secret_keys() == sorted(f"spitikos:{k}" for k in marked)
    # The CLI refuses a `secret: true` key with a default when a stack leaves it unset (pulumi/pulumi#21865).
    assert not [k for k, spec in declared.items() if spec.get("secret") and "default" in spec]
    assert sorted(PLACEHOLDER_SECRETS) == secret_keys()
    # A key newly declared secret is treated as one, with a placeholder, and refused in plain text.
    declared["domain"]["secret"] = True
    project_copy(tmp_path, "config: {}\n")
    (tmp_path / "Pulumi.yaml").write_text(yaml.safe_dump({"name": "spitikos", "config": declared}))
    config, keys, _ = offline_config("leaky", tmp_path)
    assert "spitikos:domain" in keys and config["spitikos:domain"].startswith("PLACEHOLDER-domain")
    (tmp_path / "Pulumi.leaky.yaml").write_text("config:\n  spitikos:domain: spitikos.dev\n")
    with pytest.raises(ValueError, match="spitikos:domain must be encrypted"):
        offline_config("leaky", tmp_path)


def test_written_manifests_load_back_to_exactly_the_registered_objects(pi5_plan):
    written = offline.files(pi5_plan)
    objects = [
        r
        for r in pi5_plan.resources
        if r.type.startswith("kubernetes:") and r.type != offline.RELEASE and not r.type.startswith("kubernetes:yaml/")
    ]
    assert len(objects) == len([n for n in written if n.startswith("kubernetes/")]) >= 20
    loaded = [yaml.safe_load(written[n]) for n in written if n.startswith("kubernetes/")]
    for reg in objects:
        assert offline.manifest(reg) in loaded, reg.name
