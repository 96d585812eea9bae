"""This repository's own CI workflows: pinned, previewing safely, deploying only with approval."""

from __future__ import annotations

import re

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
