"""Python dependencies install from locks that pin every file by its sha256, refreshed by `make lock`."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml
from conftest import ROOT

LOCKS = {
    "requirements.txt": "requirements.lock",
    "requirements-dev.txt": "requirements-dev.lock",
    # `make render`'s Helm: one wheel, installed without its dependencies.
    "requirements-render.txt": "requirements-render.lock",
}


def pins(path) -> dict[str, str]:
    """`name==version` lines of a requirements file (and the files it includes), by normalised name."""
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.startswith("-r "):
            found |= pins(ROOT / line.split()[1])
        elif match := re.match(r"([A-Za-z0-9_.-]+)==([^\s;\\]+)", line):
            found[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[2]
    return found


def locked(lock: str) -> list[str]:
    """Each requirement of a lock with its continuation lines joined."""
    text = (ROOT / lock).read_text().replace("\\\n", " ")
    return [line for line in text.splitlines() if line and not line.lstrip().startswith("#")]


@pytest.mark.parametrize("source", sorted(LOCKS))
def test_each_lock_holds_its_requirements_pins(source):
    # A bump in requirements*.txt without `make lock` would install the old version: fail here.
    wanted, have = pins(ROOT / source), pins(ROOT / LOCKS[source])
    assert wanted and {name: have.get(name) for name in wanted} == wanted


@pytest.mark.parametrize("lock", sorted(LOCKS.values()))
def test_every_locked_requirement_is_pinned_with_its_hashes(lock):
    requirements = locked(lock)
    assert len(requirements) == 1 if lock == "requirements-render.lock" else len(requirements) > 20
    for requirement in requirements:
        assert re.match(r"[A-Za-z0-9_.-]+==\S+", requirement), requirement
        assert "--hash=sha256:" in requirement, f"{requirement.split()[0]} has no hash"


@pytest.mark.parametrize("source", sorted(LOCKS))
def test_make_lock_writes_each_lock_with_the_command_its_header_names(source):
    # Renovate's pip-compile manager reruns the header's command: it must be `make lock`'s.
    dry_run = subprocess.run(["make", "-n", "lock"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    header = (ROOT / LOCKS[source]).read_text().splitlines()[1].strip("# ")
    command = next(line for line in dry_run.splitlines() if f"-o {LOCKS[source]}" in line)
    assert command.split("/bin/", 1)[1].replace("--quiet ", "") == header
    assert "--generate-hashes" in header and "--universal" in header


def install_commands() -> list[tuple[str, str]]:
    """Every `pip install` in the Makefile's test setup, the workflows and the composite action."""
    recipes = [line for line in (ROOT / "Makefile").read_text().splitlines() if line.startswith("\t")]
    found = [("Makefile", line) for line in recipes if "pip install" in line]
    for path in [*ROOT.glob(".github/workflows/*.yaml"), *ROOT.glob(".github/actions/*/action.yaml")]:
        data = yaml.safe_load(path.read_text())
        jobs = data.get("jobs", {}).values() if "jobs" in data else [data["runs"]]
        for step in (step for job in jobs for step in job.get("steps", [])):
            found += [(path.name, line) for line in step.get("run", "").splitlines() if "pip install" in line]
    return found


def test_ci_and_make_test_install_only_from_a_lock_with_hashes_checked():
    commands = [(where, line) for where, line in install_commands() if "requirements-mutants" not in line]
    assert {where for where, _ in commands} >= {"Makefile", "action.yaml"}
    for where, line in commands:
        assert "--require-hashes" in line and re.search(r"-r requirements(-dev|-render)?\.lock\b", line), (where, line)
