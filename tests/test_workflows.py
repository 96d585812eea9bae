"""This repository's own CI workflows: pinned, previewing safely, deploying only with approval."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
CI_PAGE = (ROOT / "docs" / "ci.md").read_text()
ACTION = ROOT / ".github" / "actions" / "pulumi-stack" / "action.yaml"
SEED = ROOT / "components" / "seed" / "release.yaml"


def load(path):
    data = yaml.safe_load(path.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def all_steps(data):
    if "runs" in data:
        return data["runs"]["steps"]
    return [step for job in data["jobs"].values() for step in job.get("steps", [])]


@pytest.mark.parametrize("path", [*sorted(WORKFLOWS.glob("*.yaml")), ACTION, SEED], ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit_with_its_version_noted(path):
    text = path.read_text()
    uses = [s["uses"] for s in all_steps(load(path)) if "uses" in s and not s["uses"].startswith("./")]
    assert uses
    for use in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", use), f"{use} is not pinned to a commit SHA"
        assert re.search(re.escape(use) + r" # v\d+\.\d+\.\d+", text), f"{use} has no version comment"


def test_pull_requests_run_the_tests_then_comment_a_preview():
    pr = load(WORKFLOWS / "pull-request.yaml")
    assert "pull_request" in pr["on"]
    test_steps = [step.get("run", "") for step in pr["jobs"]["test"]["steps"]]
    assert "make test" in test_steps
    # The charts rendered and checked (Pod Security, pins, footprint, NetworkPolicies), offline.
    assert "make render STACK=pi5" in test_steps
    # The offline plan needs no secrets, so pull requests from forks see it too.
    assert any("make --no-print-directory plan STACK=pi5" in run and "GITHUB_STEP_SUMMARY" in run for run in test_steps)
    preview = pr["jobs"]["preview"]
    assert preview["needs"] == "test"
    assert preview["permissions"]["pull-requests"] == "write"
    pulumi = preview["steps"][-1]
    assert pulumi["uses"].startswith("pulumi/actions@")
    assert pulumi["with"]["command"] == "preview" and pulumi["with"]["stack-name"] == "pi5"
    assert pulumi["with"]["comment-on-pr"] is True
    assert preview["env"]["PULUMI_CONFIG_PASSPHRASE"] == "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}"


def test_the_preview_is_skipped_with_a_message_when_the_secrets_are_absent():
    preview = load(WORKFLOWS / "pull-request.yaml")["jobs"]["preview"]
    check = preview["steps"][0]
    assert check["id"] == "secrets" and "::notice title=Preview skipped::" in check["run"]
    for step in preview["steps"][1:]:
        assert step["if"] == "steps.secrets.outputs.available == 'true'"


def test_pushes_to_main_deploy_behind_an_approved_environment_one_at_a_time():
    deploy = load(WORKFLOWS / "deploy.yaml")
    assert deploy["on"]["push"]["branches"] == ["main"]
    assert deploy["concurrency"] == {"group": "deploy-pi5", "cancel-in-progress": False}
    up = deploy["jobs"]["up"]
    assert up["needs"] == "test" and up["environment"] == "pi5"
    assert up["steps"][-1]["with"]["command"] == "up"


FORKS_EXCLUDED = "github.event.pull_request.head.repo.full_name == github.repository"


def jobs_of(name):
    return load(WORKFLOWS / name)["jobs"]


def deploy_secrets_read_by(job):
    """The repository's own secrets a job reads; GITHUB_TOKEN is per run and not one of them."""
    return set(re.findall(r"secrets\.(\w+)", yaml.safe_dump(job))) - {"GITHUB_TOKEN"}


@pytest.mark.parametrize("path", sorted(WORKFLOWS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_job_that_reads_secrets_gets_them_from_an_environment(path):
    for name, job in load(path)["jobs"].items():
        if deploy_secrets_read_by(job):
            assert "environment" in job, f"{path.name}: job {name} reads repository-wide secrets"


def test_only_the_deploy_on_main_uses_the_pi5_environment():
    for path in sorted(WORKFLOWS.glob("*.yaml")):
        for name, job in load(path)["jobs"].items():
            if job.get("environment") == "pi5":
                assert (path.name, name) == ("deploy.yaml", "up"), f"{path.name}: job {name} uses pi5"
    assert load(WORKFLOWS / "deploy.yaml")["on"] == {"push": {"branches": ["main"]}}


def test_the_preview_has_its_own_environment_and_never_runs_for_forks():
    preview = jobs_of("pull-request.yaml")["preview"]
    assert preview["environment"] == "pi5-preview"
    assert preview["if"] == FORKS_EXCLUDED


def test_each_preview_environment_is_set_up_as_the_ci_page_says():
    # Environments are repository settings, not code: docs/ci.md is their source.
    ci = CI_PAGE
    setup = {m[1]: m[2] for m in re.finditer(r"(?ms)^- `(pi5[\w-]*)`: (.+?)(?=^- |^\n)", ci)}
    # A pull request's preview runs a side branch's code: a person approves each one first.
    assert "Required reviewers" in setup["pi5-preview"]
    # The drift check runs main's code unattended: only main may use its environment.
    assert "`main` only" in setup["pi5-drift"] and "no reviewers" in setup["pi5-drift"]
    assert "`main` only" in setup["pi5"] and "Required reviewers" in setup["pi5"]
    used = {job.get("environment") for path in WORKFLOWS.glob("*.yaml") for job in load(path)["jobs"].values()}
    assert used - {None} == set(setup)


def test_no_pull_request_job_reaches_the_node_runner_or_secrets_from_a_fork():
    for name, job in jobs_of("pull-request.yaml").items():
        if "PULUMI_RUNNER" in str(job.get("runs-on")) or deploy_secrets_read_by(job):
            assert job.get("if") == FORKS_EXCLUDED, f"job {name} would run a fork's code"


# --- the composite action's stack setup, run with a stub `pulumi` -------------------------


def stack_setup_script():
    step = next(s for s in load(ACTION)["runs"]["steps"] if s.get("name") == "Select the stack and set its settings")
    assert step["shell"] == "bash"
    return step["run"]


SETTINGS = {
    "SSH_PRIVATE_KEY": "-----BEGIN OPENSSH PRIVATE KEY-----dummy",
    "CLOUDFLARE_API_TOKEN": "cf-token-dummy",
    "SPITIKOS_GITHUB_TOKEN": "gh-token-dummy",
    "GHA_PAT": "gha-pat-dummy",
    "CLOUDFLARE_ACCOUNT_ID": "0" * 32,
}

# Records each call's arguments, and what a `--secret` call reads from stdin; fails `stack select` on demand.
STUB_PULUMI = """#!/bin/sh
echo "argv: $*" >> "$PULUMI_LOG"
case "$*" in *--secret*) echo "stdin: $(cat)" >> "$PULUMI_LOG" ;; esac
case "$*" in "stack select"*) exit "${STUB_SELECT_STATUS:-0}" ;; esac
"""


def run_stack_setup(tmp_path, **env):
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "pulumi").write_text(STUB_PULUMI)
    (stub / "pulumi").chmod(0o755)
    log = tmp_path / "pulumi.log"
    log.touch()
    script = tmp_path / "step.sh"
    script.write_text(stack_setup_script())
    result = subprocess.run(
        # How GitHub runs a `shell: bash` step.
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        env={"PATH": f"{stub}:/usr/bin:/bin", "PULUMI_LOG": str(log), **SETTINGS, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    return result, log.read_text().splitlines()


def test_ci_refuses_to_run_without_the_shared_backend(tmp_path):
    result, calls = run_stack_setup(tmp_path)
    assert result.returncode == 1
    assert "::error title=PULUMI_BACKEND_URL is not set::" in result.stdout
    assert calls == []


def test_ci_selects_the_existing_stack_and_never_creates_one(tmp_path):
    result, calls = run_stack_setup(tmp_path, PULUMI_BACKEND_URL="s3://state/spitikos")
    assert result.returncode == 0, result.stderr
    assert calls[0] == "argv: stack select pi5 --non-interactive"
    assert not any("--create" in call for call in calls)


def test_ci_stops_with_a_message_when_the_stack_is_not_on_the_backend(tmp_path):
    result, calls = run_stack_setup(tmp_path, PULUMI_BACKEND_URL="s3://state/spitikos", STUB_SELECT_STATUS="255")
    assert result.returncode == 1
    assert "::error title=No stack pi5 on the backend::" in result.stdout and "never creates" in result.stdout
    assert calls == ["argv: stack select pi5 --non-interactive"]


def test_secrets_reach_pulumi_through_stdin_never_a_command_line(tmp_path):
    result, calls = run_stack_setup(tmp_path, PULUMI_BACKEND_URL="s3://state/spitikos")
    assert result.returncode == 0, result.stderr
    argv = "\n".join(c for c in calls if c.startswith("argv:"))
    for key, name in [
        ("sshPrivateKey", "SSH_PRIVATE_KEY"),
        ("cloudflareApiToken", "CLOUDFLARE_API_TOKEN"),
        ("githubToken", "SPITIKOS_GITHUB_TOKEN"),
        ("ghaPat", "GHA_PAT"),
    ]:
        assert f"argv: config set --secret {key}" in calls
        assert f"stdin: {SETTINGS[name]}" in calls
        assert SETTINGS[name] not in argv
    assert f"argv: config set cloudflareAccountId {SETTINGS['CLOUDFLARE_ACCOUNT_ID']}" in calls


def test_ci_sets_only_settings_the_program_declares(tmp_path):
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    _, calls = run_stack_setup(tmp_path, PULUMI_BACKEND_URL="s3://state/spitikos")
    keys = [re.sub(r"^argv: config set (--secret )?(\S+).*", r"\2", c) for c in calls if "config set" in c]
    assert keys
    for key in keys:
        assert key in declared, f"CI sets {key}, which Pulumi.yaml does not declare: the program would refuse it"


def test_no_workflow_can_create_a_stack():
    for path in [*WORKFLOWS.glob("*.yaml"), ACTION]:
        assert "--create" not in path.read_text(), path.name
        for step in all_steps(load(path)):
            assert str(step.get("with", {}).get("upsert", "false")).lower() == "false", path.name


# The venv's actionlint, the one `make lint` runs.
ACTIONLINT = Path(sys.executable).with_name("actionlint")

BROKEN_WORKFLOW = """\
on: push
jobs:
  build:
    runs-on: ubuntu-2404
    needs: tests
    steps:
      - run: echo "${{ github.nope }}"
"""

# What the old WebAssembly build rejected and an accept-list had to wave through.
CURRENT_WORKFLOW = """\
on: push
jobs:
  build:
    runs-on: ${{ vars.PULUMI_RUNNER || 'ubuntu-24.04' }}
    steps:
      - run: echo "$NAME"
        env:
          NAME: ${{ vars.NAME }}
"""


def actionlint(tmp_path, text):
    workflow = tmp_path / "workflow.yaml"
    workflow.write_text(text)
    return subprocess.run(
        [str(ACTIONLINT), "-no-color", str(workflow)], capture_output=True, text=True, cwd=tmp_path, check=False
    )


def test_actionlint_fails_on_a_broken_workflow_and_names_each_problem(tmp_path):
    result = actionlint(tmp_path, BROKEN_WORKFLOW)
    assert result.returncode == 1, result.stdout
    assert 'needs job "tests" which does not exist' in result.stdout
    assert 'label "ubuntu-2404" is unknown' in result.stdout
    assert 'property "nope" is not defined' in result.stdout


def test_actionlint_knows_the_vars_context_and_current_runner_labels(tmp_path):
    result = actionlint(tmp_path, CURRENT_WORKFLOW)
    assert result.returncode == 0, result.stdout


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not on PATH (.ci/run installs it)")
def test_actionlint_runs_shellcheck_on_run_scripts(tmp_path):
    result = actionlint(tmp_path, CURRENT_WORKFLOW.replace('echo "$NAME"', "rm $NAME"))
    assert result.returncode == 1 and "SC2086" in result.stdout, result.stdout


# --- the drift check ---------------------------------------------------------------------


def drift_step(job, name):
    return next(s for s in jobs_of("drift.yaml")[job]["steps"] if s.get("name") == name)


def test_the_drift_check_runs_daily_and_on_demand_with_the_previews_secrets_only():
    drift = load(WORKFLOWS / "drift.yaml")
    assert drift["on"]["schedule"][0]["cron"] and "workflow_dispatch" in drift["on"]
    assert drift["permissions"] == {"contents": "read"}
    preview, issue = drift["jobs"]["preview"], drift["jobs"]["issue"]
    # Its own environment, which admits main only and so never runs a side branch's code.
    assert preview["environment"] == "pi5-drift" and "permissions" not in preview
    assert preview["runs-on"] == jobs_of("deploy.yaml")["up"]["runs-on"]  # it must reach the node too
    # The job that can write issues reads no secret and runs none of the program's code.
    assert issue["permissions"] == {"issues": "write"} and not deploy_secrets_read_by(issue)
    assert "environment" not in issue and all("uses" not in step for step in issue["steps"])


def github_outputs(path):
    """Parse a $GITHUB_OUTPUT file: `key=value` lines and `key<<DELIMITER` blocks."""
    outputs, lines = {}, iter(path.read_text().splitlines())
    for line in lines:
        if "<<" in line and "=" not in line.split("<<")[0]:
            key, delimiter = line.split("<<", 1)
            outputs[key] = "\n".join(iter(lambda: next(lines), delimiter))
        else:
            key, value = line.split("=", 1)
            outputs[key] = value
    return outputs


def run_step(tmp_path, script, stubs, **env):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in stubs.items():
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    calls, output = tmp_path / "calls", tmp_path / "github_output"
    calls.touch()
    output.touch()
    (tmp_path / "step.sh").write_text(script)
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "step.sh"],
        cwd=tmp_path,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "CALLS": str(calls), "GITHUB_OUTPUT": str(output), **env},
        capture_output=True,
        text=True,
        check=False,
    )
    return result, calls.read_text(), github_outputs(output)


# What pulumi 3.272 prints, in short, for a clean stack, for drift, and for a failure.
STUB_PREVIEW = """#!/bin/sh
echo "pulumi $*" >> "$CALLS"
case "$STUB_PREVIEW" in
  clean) echo "Resources:"; echo "    42 unchanged" ;;
  drift) echo "~ kubernetes:core/v1:ConfigMap: (update)"; echo "  ~ data: {replicas: \\"3\\" => \\"1\\"}"
         echo "error: no changes were expected but changes were proposed" >&2; exit 255 ;;
  *) echo "error: getting secrets manager: incorrect passphrase" >&2; exit 255 ;;
esac
"""


def run_drift_preview(tmp_path, outcome):
    script = drift_step("preview", "Preview with refresh, expecting no changes")["run"]
    return run_step(tmp_path, script, {"pulumi": STUB_PREVIEW}, STUB_PREVIEW=outcome)


def test_the_drift_check_previews_with_refresh_and_expects_no_changes(tmp_path):
    result, calls, outputs = run_drift_preview(tmp_path, "clean")
    assert result.returncode == 0, result.stderr
    assert calls.split()[:3] == ["pulumi", "preview", "--stack"]
    assert {"pi5", "--refresh", "--expect-no-changes", "--diff"} <= set(calls.split())
    assert "--create" not in calls
    assert outputs == {"drift": "false"}


def test_drift_is_reported_with_the_diff(tmp_path):
    result, _, outputs = run_drift_preview(tmp_path, "drift")
    assert result.returncode == 0, result.stderr
    assert outputs["drift"] == "true"
    assert 'replicas: "3" => "1"' in outputs["diff"]
    assert "::warning title=Drift::" in result.stdout


def test_a_failing_preview_is_an_error_not_drift(tmp_path):
    result, _, outputs = run_drift_preview(tmp_path, "error")
    assert result.returncode == 255
    assert "::error title=Drift check failed::" in result.stdout
    assert "drift" not in outputs  # so the issue job does not run


# Records its arguments and the body it is given; `issue list` answers STUB_OPEN_ISSUE.
STUB_GH = """#!/bin/sh
echo "gh $*" >> "$CALLS"
while [ $# -gt 0 ]; do
  [ "$1" = --body-file ] && { echo "body:"; cat "$2"; } >> "$CALLS"
  [ "$1" = list ] && echo "$STUB_OPEN_ISSUE"
  shift
done
"""


def run_drift_issue(tmp_path, drift, open_issue=""):
    script = drift_step("issue", "Open, update or close the drift issue")["run"]
    env = {"DRIFT": drift, "DIFF": "~ kubernetes:core/v1:ConfigMap: (update)", "STUB_OPEN_ISSUE": open_issue}
    result, calls, _ = run_step(tmp_path, script, {"gh": STUB_GH}, RUN_URL="https://run/1", **env)
    assert result.returncode == 0, result.stderr
    return [line for line in calls.splitlines() if line.startswith("gh ")], calls


def test_drift_opens_one_labelled_issue_with_the_diff(tmp_path):
    gh, calls = run_drift_issue(tmp_path, "true")
    assert gh[0].startswith("gh issue list --label drift --state open")
    assert any(c.startswith("gh label create drift") for c in gh)
    assert any(c.startswith("gh issue create") and "--label drift" in c for c in gh)
    assert "~ kubernetes:core/v1:ConfigMap: (update)" in calls.split("body:")[1]


def test_drift_updates_the_open_issue_instead_of_opening_another(tmp_path):
    gh, calls = run_drift_issue(tmp_path, "true", open_issue="7")
    assert gh[1].startswith("gh issue edit 7 --body-file")
    assert not any("issue create" in c for c in gh)
    assert "~ kubernetes:core/v1:ConfigMap: (update)" in calls


def test_no_drift_closes_the_open_issue(tmp_path):
    gh, _ = run_drift_issue(tmp_path, "false", open_issue="7")
    assert gh[1:] == ["gh issue close 7 --comment No drift any more: https://run/1"]


def test_no_drift_and_no_issue_does_nothing_more(tmp_path):
    gh, _ = run_drift_issue(tmp_path, "false")
    assert len(gh) == 1


# --- no standing runner: nowhere a branch's job can wait for the deploy (docs/decisions/0005) ------

# GitHub's hosted labels: each job gets a new virtual machine, deleted when the job ends, which no
# other job ran on before and none will run on after (GitHub's "About GitHub-hosted runners").
HOSTED = {"ubuntu-24.04", "ubuntu-22.04", "ubuntu-latest", "ubuntu-24.04-arm", "ubuntu-22.04-arm"}
# What only main reaches: the deploy's and the drift check's environments.
MAIN_ONLY = {"pi5", "pi5-drift"}


def every_job():
    for path in sorted(WORKFLOWS.glob("*.yaml")):
        for name, job in load(path)["jobs"].items():
            yield path.name, name, job


def test_every_job_runs_on_a_fresh_hosted_machine_and_none_on_a_runner_a_branch_could_name():
    """A self-hosted runner, or a label read from a variable, can be named by a workflow pushed to any
    branch, which then runs where the next deploy runs. Every job here gets a machine of its own."""
    for workflow, name, job in every_job():
        assert job["runs-on"] in HOSTED, f"{workflow}: job {name} runs on {job['runs-on']!r}, not a hosted machine"
    for path in [*WORKFLOWS.glob("*.yaml"), ACTION]:
        assert "PULUMI_RUNNER" not in path.read_text() and "self-hosted" not in path.read_text(), path.name


def test_no_job_that_names_the_deploys_or_drifts_environment_runs_where_another_job_can():
    """The question asked of every such job: is its machine one any other job could be scheduled on?
    A hosted label is a pool of single-use machines, so the answer is no for each; and these jobs are
    the only ones that read the main token."""
    readers = {}
    for workflow, name, job in every_job():
        if job.get("environment") in MAIN_ONLY:
            assert job["runs-on"] in HOSTED, f"{workflow}: {name} could share a machine"
            readers[(workflow, name)] = job["environment"]
    assert readers == {("deploy.yaml", "up"): "pi5", ("drift.yaml", "preview"): "pi5-drift"}


PUSHED_BRANCH_ATTACK = """\
on: push
jobs:
  steal:
    runs-on: ${{ vars.PULUMI_RUNNER }}
    steps:
      - run: cat /proc/*/environ; ls -la "$RUNNER_TOOL_CACHE"
"""


def test_the_pushed_branch_attack_has_nowhere_to_run_that_matters(tmp_path):
    """Issue 25's attack: a workflow on a side branch naming the old runner variable, with no
    environment. It is a valid workflow (actionlint accepts it), but no job of this repository needs
    a runner that variable could name, so the operator deregisters it (docs/decisions/0005): the job
    waits for a runner that never comes, and would find nothing of a deploy's if it got one."""
    assert actionlint(tmp_path, PUSHED_BRANCH_ATTACK).returncode == 0
    attack = yaml.safe_load(PUSHED_BRANCH_ATTACK)["jobs"]["steal"]
    ours = {job["runs-on"] for _, _, job in every_job()}
    assert attack["runs-on"] not in ours and ours <= HOSTED
    # Without an environment it reads none of the deploy's secrets, and the tunnel's token among them.
    assert "environment" not in attack and not deploy_secrets_read_by(attack)
    for workflow, name, job in every_job():
        if "TUNNEL_SERVICE_TOKEN_SECRET" in deploy_secrets_read_by(job):
            assert job.get("environment"), f"{workflow}: {name} reads the tunnel's token outside an environment"


def test_what_deploy_and_drift_leave_behind_no_later_job_can_read():
    """Hosted machines are thrown away; what outlives a job is the Actions cache and artifacts. The
    jobs that hold the deploy's secrets write neither (the drift diff goes to an issue, on purpose)."""
    for workflow, name, job in every_job():
        if job.get("environment") in MAIN_ONLY:
            for step in job["steps"]:
                uses = step.get("uses", "")
                assert not uses.startswith(("actions/cache", "actions/upload-artifact")), f"{workflow}: {name}"
                assert "cache" not in step.get("with", {}), f"{workflow}: {name}: {uses}"
    for step in load(ACTION)["runs"]["steps"]:
        assert "cache" not in step.get("with", {}), f"the composite action's {step.get('uses')} restores a cache"


TUNNEL_STEP = "Reach the node through the tunnel"


@pytest.mark.parametrize(
    ("workflow", "job"), [("deploy.yaml", "up"), ("drift.yaml", "preview"), ("pull-request.yaml", "preview")]
)
def test_each_job_that_reads_the_cluster_reaches_it_through_the_tunnel_before_pulumi(workflow, job):
    steps = jobs_of(workflow)[job]["steps"]
    names = [s.get("name") or s.get("uses", "") for s in steps]
    tunnel = names.index(TUNNEL_STEP)
    assert names.index("./.github/actions/pulumi-stack") < tunnel  # the stack is selected: its ciTunnel output
    # Nothing reads the node or the cluster before it: no `pulumi up`/`preview` ahead of the tunnel.
    for earlier in steps[:tunnel]:
        assert not earlier.get("uses", "").startswith("pulumi/actions@") and "pulumi preview" not in earlier.get(
            "run", ""
        )
    step = steps[tunnel]
    assert step["run"] == ".venv/bin/python -m spitikos.ci_tunnel"
    # The token by environment variable only, never in the script: cloudflared reads the same names.
    assert step["env"] == {
        "TUNNEL_SERVICE_TOKEN_ID": "${{ secrets.TUNNEL_SERVICE_TOKEN_ID }}",
        "TUNNEL_SERVICE_TOKEN_SECRET": "${{ secrets.TUNNEL_SERVICE_TOKEN_SECRET }}",
    }


def test_previews_and_drift_checks_are_skipped_with_a_notice_when_the_tunnels_token_is_missing():
    for workflow, job in (("pull-request.yaml", "preview"), ("drift.yaml", "preview")):
        check = jobs_of(workflow)[job]["steps"][0]
        for name in ("TUNNEL_SERVICE_TOKEN_ID", "TUNNEL_SERVICE_TOKEN_SECRET"):
            assert check["env"][name] == f"${{{{ secrets.{name} }}}}" and name in check["run"], workflow


def test_the_environments_the_program_writes_the_tokens_to_are_the_ones_the_jobs_name():
    from components.tunnel import ci_environments

    named = {job["environment"] for _, _, job in every_job() if "TUNNEL_SERVICE_TOKEN_ID" in str(job)}
    roles = ci_environments("pi5")
    assert named == set(roles)
    # A job any branch's pull request can start never holds the main token.
    assert roles["pi5-preview"] == "preview" and {roles[e] for e in MAIN_ONLY} == {"main"}


# The targets that work on a stack, which have no default stack: CI names it every time.
STACK_TARGETS = re.compile(r"^\s*make\b[^\n]*?\s(plan|render|up|restore-volume|etcd-restore-script)\b[^\n]*", re.M)


def test_ci_names_the_stack_of_every_target_that_works_on_one():
    """Without STACK a target takes the selected stack; on a runner none is selected, and a default
    would be the organization's own stack."""
    scripts = [(path.name, step.get("run", "")) for path in WORKFLOWS.glob("*.yaml") for step in all_steps(load(path))]
    scripts.append((".ci/run", (ROOT / ".ci" / "run").read_text()))
    calls = [(name, m.group(0)) for name, text in scripts for m in STACK_TARGETS.finditer(text)]
    assert {call.split("STACK=")[0].split()[-1] for _, call in calls} >= {"plan", "render"}, calls
    assert [(name, call) for name, call in calls if "STACK=" not in call] == []
