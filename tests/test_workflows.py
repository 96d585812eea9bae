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
    # The offline plan needs no secrets, so pull requests from forks see it too.
    assert any("make --no-print-directory plan" in run and "GITHUB_STEP_SUMMARY" in run for run in test_steps)
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


def test_secrets_reach_pulumi_through_stdin_never_a_command_line():
    script = load(ACTION)["runs"]["steps"][-1]["run"]
    for key in ("sshPrivateKey", "cloudflareApiToken", "githubToken", "ghaPat"):
        assert re.search(rf'printf \S+ "\$\w+" \| pulumi config set --secret {key}\n', script), key


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
