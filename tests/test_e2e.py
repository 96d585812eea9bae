"""tools/e2e (`make e2e`) with stub `pulumi`, `kubectl`, `git` and python on PATH: the order of
its steps, the kubeconfig on standard input only, and each check failing with its message. The
real run needs a cluster and the CLI (CI, on kind); the Python it calls is tested below on its own.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import ROOT

from spitikos import e2e

STUB_PULUMI = """#!/bin/sh
echo "pulumi $* backend=$PULUMI_BACKEND_URL" >> "$CALLS"
case "$*" in
  version*) echo "v$PULUMI_VERSION" ;;
  "config set --stack e2e --secret kubeconfig") echo "stdin: $(cat)" >> "$CALLS" ;;
  preview*) exit "${STUB_PREVIEW_STATUS:-0}" ;;
  "stack export"*) echo '{}' ;;
  up*) echo "up sees: $(ls charts/vendor | tr '\n' ' ')" >> "$CALLS" ;;
esac
"""
STUB_KUBECTL = """#!/bin/sh
# One line per call (an argument's newlines become spaces) in one write: the stub runs alongside
# `pulumi` in a pipeline, and two appends interleave. No `tr`: this stub runs 44 times a run.
log() {
  set -f
  IFS=' \n'
  set -- $*
  IFS=' '
  printf 'kubectl %s\n' "$*" >> "$CALLS"
}
log "$@"
case "$*" in
  "config view"*) echo "KUBECONFIG-CONTENT" ;;
  "config current-context") echo kind-e2e ;;
  "get secrets -A -l owner=helm"*) echo "superseded deployed" ;;
  "get namespace"*) echo restricted ;;
  "get pods"*) echo pod/x ;;
  "get events"*) echo "${STUB_EVENTS:-}" ;;
  "run redis-probe-api"*) echo "${STUB_API_ANSWER:-PONG}" ;;
  "run redis-probe-keda"*) echo "${STUB_KEDA_ANSWER:-}"; exit "${STUB_KEDA_STATUS:-124}" ;;
  *"-o json"*) echo '{"items": []}' ;;
esac
"""
STUB_GIT = """#!/bin/sh
case "$*" in
  "remote get-url origin") echo git@github.com:spitikos/spitikos-infra.git ;;
  "rev-parse HEAD") echo 0123abc ;;
esac
"""
# The venv's python, for what tools/e2e asks of spitikos (tested for real below).
STUB_PY = """#!/bin/sh
echo "py $*" >> "$CALLS"
case "$*" in
  -c*) echo docker.io/library/redis:8.2.2-alpine ;;
  "-m spitikos.world_check kinds"*) echo namespace,secret ;;
  "-m spitikos.world_check record") cat >/dev/null; echo '[]' ;;
  "-m spitikos.world_check compare"*) exit "${STUB_WORLD_STATUS:-0}" ;;
  "-m spitikos.e2e"*) cat >/dev/null; exit "${STUB_E2E_STATUS:-0}" ;;
esac
"""


@pytest.fixture
def machine(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("pulumi", STUB_PULUMI), ("kubectl", STUB_KUBECTL), ("git", STUB_GIT), ("py", STUB_PY)):
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    return tmp_path


def e2e_run(machine, *step, **env):
    calls = machine / "calls"
    calls.write_text("")
    result = subprocess.run(
        [str(ROOT / "tools" / "e2e"), *step],
        cwd=ROOT,
        env={
            "PATH": f"{machine / 'bin'}:/usr/bin:/bin",
            "HOME": str(machine),
            "TMPDIR": str(machine),
            "KUBECONFIG": str(machine / "kubeconfig"),
            "CALLS": str(calls),
            "PY": str(machine / "bin" / "py"),
            "PULUMI_VERSION": "3.272.0",
            "PULUMI_ROOT": str(machine / "cli"),
            "E2E_OUT": str(machine / "out"),
            "E2E_TIMEOUT": "1s",
            **env,
        },
        capture_output=True,
        text=True,
        check=False,
    )
    return result, calls.read_text().splitlines()


def test_the_run_records_the_world_then_ups_checks_previews_and_destroys_on_a_local_backend(machine):
    result, calls = e2e_run(machine)
    assert result.returncode == 0, result.stderr + result.stdout
    assert result.stdout.rstrip().endswith("e2e: passed")
    pulumi = [c for c in calls if c.startswith("pulumi ")]
    verbs = [c.split(" backend=")[0] for c in pulumi if not c.startswith("pulumi version")]
    assert verbs == [
        "pulumi stack init --stack e2e --non-interactive",
        "pulumi config set --stack e2e --secret kubeconfig",
        "pulumi config set rootRepositoryUrl https://github.com/spitikos/spitikos-infra.git"
        " --stack e2e --non-interactive",
        "pulumi config set rootRevision 0123abc --stack e2e --non-interactive",
        "pulumi up --yes --skip-preview --stack e2e --non-interactive",
        "pulumi stack export --stack e2e --non-interactive",
        "pulumi preview --expect-no-changes --diff --stack e2e --non-interactive",
        "pulumi destroy --yes --skip-preview --exclude-protected --stack e2e --non-interactive",
        "pulumi stack export --stack e2e --non-interactive",
    ]
    # A file backend in a temporary folder, removed after a passing run.
    backends = {c.split(" backend=")[1] for c in pulumi}
    assert len(backends) == 1 and backends.pop().startswith(f"file://{machine}/")
    assert not [p for p in machine.iterdir() if p.name.startswith("tmp.")]
    # The kubeconfig reaches pulumi on standard input, never on a command line.
    assert "stdin: KUBECONFIG-CONTENT" in calls
    assert not [c for c in calls if "KUBECONFIG-CONTENT" in c and not c.startswith("stdin:")]
    # The world is recorded before the first up (builtin kinds: Argo CD's CRD is not there yet) and after the checks.
    worlds = [i for i, c in enumerate(calls) if c.startswith("py -m spitikos.world_check kinds")]
    up = calls.index(next(c for c in calls if c.startswith("pulumi up")))
    assert calls[worlds[0]] == "py -m spitikos.world_check kinds --builtin" and worlds[0] < up < worlds[1]
    assert (machine / "out" / "world-before.json").exists() and (machine / "out" / "up.log").exists()
    # `pulumi up` runs in a copy of the project: the vendored charts the releases install are in it.
    vendored = sorted(p.name for p in (ROOT / "charts" / "vendor").iterdir())
    assert f"up sees: {' '.join(vendored)} " in calls


@pytest.mark.parametrize(
    "env,message",
    [
        ({"STUB_PREVIEW_STATUS": "1"}, "a second up would change something"),
        ({"STUB_WORLD_STATUS": "1"}, "the world model differs from the cluster"),
    ],
    ids=["second-up-changes", "world-differs"],
)
def test_a_failed_check_fails_the_run_and_keeps_the_state(machine, env, message):
    result, _ = e2e_run(machine, **env)
    assert result.returncode == 1 and f"e2e: FAILED: {message}" in result.stderr
    assert "state kept in" in result.stdout


@pytest.mark.parametrize(
    "env,message",
    [
        ({}, None),
        (
            {"STUB_API_ANSWER": "NOAUTH Authentication required."},
            "did not answer PING with its password from namespace api",
        ),
        (
            {"STUB_KEDA_ANSWER": "NOAUTH Authentication required.", "STUB_KEDA_STATUS": "1"},
            "answered from the platform namespace keda",
        ),
        ({"STUB_KEDA_STATUS": "0"}, "reachable from the platform namespace keda"),
    ],
    ids=["enforced", "no-pong-with-password", "answers-keda", "keda-probe-succeeds"],
)
def test_redis_must_answer_the_api_and_not_a_platform_namespace(machine, env, message):
    result, calls = e2e_run(machine, "check_redis", **env)
    if message is None:
        assert result.returncode == 0, result.stderr
        probe = next(c for c in calls if c.startswith("kubectl run redis-probe-api"))
        # The password goes from the Secret to the pod's environment, never through the script.
        assert '"secretKeyRef": {"name": "platform-env", "key": "REDIS_PASSWORD"}' in probe
        assert "secretKeyRef" not in next(c for c in calls if c.startswith("kubectl run redis-probe-keda"))
    else:
        assert result.returncode == 1 and message in result.stderr


# --- the Python tools/e2e calls ---------------------------------------------------------------


def test_the_live_default_project_is_compared_with_the_patch_in_the_state(own_cluster):
    (patch,) = [r for r in own_cluster.kubernetes("AppProject") if r.type.endswith("Patch")]
    state = {"deployment": {"resources": [{"type": patch.type, "inputs": patch.values}]}}
    expected = e2e.default_project_in_state(state)
    live = {"spec": {**expected, "sourceRepos": list(reversed(expected["sourceRepos"])), "description": "x"}}
    assert e2e.project_problems(live, expected) == []
    wider = {"spec": {**expected, "sourceRepos": ["*"]}}
    assert e2e.project_problems(wider, expected) == [
        f"AppProject default: spec.sourceRepos is ['*'], the program sets {expected['sourceRepos']!r}"
    ]


def test_destroy_may_leave_the_protected_and_what_it_needs_only():
    def res(urn, **kw):
        return {"urn": urn, "type": "t", **kw}

    state = {
        "deployment": {
            "resources": [
                res("stack", type="pulumi:pulumi:Stack"),
                res("platform", parent="stack"),
                res("provider", parent="platform"),
                res("redis", parent="platform"),
                res("namespace", parent="redis", provider="provider::id"),
                res("pvc", parent="redis", protect=True, provider="provider::id", dependencies=["namespace"]),
                res("argocd", parent="platform"),
            ]
        }
    }
    assert e2e.left_after_destroy(state) == ["left after destroy, and not protected: argocd"]
    assert json.loads(json.dumps(state))  # plain JSON, as `pulumi stack export` prints


def test_the_e2e_workflow_runs_make_e2e_on_kind_for_pull_requests_and_daily_with_no_secret():
    import yaml

    text = (ROOT / ".github" / "workflows" / "e2e.yaml").read_text()
    workflow = yaml.safe_load(text)
    triggers = workflow.pop(True)  # YAML 1.1 reads the key `on` as True
    assert "pull_request" in triggers and triggers["schedule"][0]["cron"]
    assert workflow["permissions"] == {"contents": "read"}
    assert "secrets." not in text and "environment" not in workflow["jobs"]["kind"]
    steps = workflow["jobs"]["kind"]["steps"]
    runs = [s.get("run", "") for s in steps]
    assert "make e2e" in runs
    kind_at = next(i for i, r in enumerate(runs) if r.startswith("kind create cluster"))
    assert kind_at < runs.index("make e2e")
    after = steps[runs.index("make e2e") + 1 :]
    assert after and all(s.get("if") == "failure()" for s in after)
    assert any(s.get("uses", "").startswith("actions/upload-artifact@") for s in after)
    assert any("kubectl get" in s.get("run", "") for s in after)


def test_ci_renders_the_e2e_stacks_charts_so_the_world_model_knows_what_their_hooks_leave():
    """`make render` checks what the releases' Helm hooks leave against the world model
    (world_check.hook_problems); run on the e2e stack too, a chart change that leaves a new object
    fails there, not an hour later at the e2e run's world comparison on kind."""
    import yaml

    command = "make render STACK=e2e"
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "pull-request.yaml").read_text())
    assert any(s.get("run", "").startswith(command) for s in workflow["jobs"]["test"]["steps"])
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.index("make test") < ci.index(command), ".ci/run: the e2e stack's charts are rendered too"
