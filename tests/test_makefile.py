"""`make up` on a fresh machine: the CLI version CI pins, the stack named or selected and never a
default, no stack created on a shared backend.

Each test runs the real `make up` with stub `pulumi` and `curl` on PATH that record their
arguments: no network, no Pulumi CLI.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT

PULUMI_VERSION = re.search(r"^PULUMI_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M).group(1)

# Records its arguments; `pulumi version` answers STUB_VERSION, `stack select` exits STUB_SELECT_STATUS.
STUB_PULUMI = """#!/bin/sh
echo "pulumi $*" >> "$CALLS"
case "$1" in
  version) echo "v${STUB_VERSION:-PINNED}" ;;
  stack) exit "${STUB_SELECT_STATUS:-0}" ;;
esac
""".replace("PINNED", PULUMI_VERSION)

# Serves an "installer" that records its arguments and puts the stub pulumi where it was told.
STUB_CURL = """#!/bin/sh
echo "curl $*" >> "$CALLS"
if [ -n "$STUB_OFFLINE" ]; then echo "curl: (6) Could not resolve host: get.pulumi.com" >&2; exit 6; fi
cat <<'INSTALLER'
echo "installer $*" >> "$CALLS"
while [ $# -gt 0 ]; do [ "$1" = --install-root ] && root=$2; shift; done
mkdir -p "$root/bin" && cp "$STUB_PULUMI" "$root/bin/pulumi"
INSTALLER
"""


@pytest.fixture
def machine(tmp_path):
    """A machine with make and a shell, a venv already set up, and no Pulumi CLI."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = tmp_path / "stub-pulumi"
    stub.write_text(STUB_PULUMI)
    stub.chmod(0o755)
    (bin_dir / "curl").write_text(STUB_CURL)
    (bin_dir / "curl").chmod(0o755)
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / ".installed").touch()  # newer than the requirements: make leaves it alone
    # The project's own interpreter (`make up` asks it which stack to deploy).
    (venv / "bin" / "python").write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    (venv / "bin" / "python").chmod(0o755)
    (tmp_path / "pulumi-home").mkdir()  # no stack selected yet
    return tmp_path


def select_stack(machine, stack: str) -> None:
    """What `pulumi stack select` leaves behind for this project folder."""
    from spitikos.stack import workspace_file

    path = workspace_file(ROOT, machine / "pulumi-home")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"stack": stack}, indent=4))


def with_pulumi_on_path(machine):
    (machine / "bin" / "pulumi").symlink_to(machine / "stub-pulumi")


def make_up(machine, *args, target="up", **env):
    """`make <target> <args>`; with no STACK= among the args, the stack is pi5, named."""
    calls = machine / "calls"
    calls.touch()
    make = ["make", "--no-print-directory", "-s", target, f"VENV={machine / 'venv'}", f"PULUMI_ROOT={machine / 'cli'}"]
    named = [] if any(a.startswith("STACK") for a in args) or target != "up" else ["STACK=pi5"]
    result = subprocess.run(
        [*make, *named, *[a for a in args if a != "STACK="]],
        cwd=ROOT,
        env={
            "PATH": f"{machine / 'bin'}:/usr/bin:/bin",
            "CALLS": str(calls),
            "STUB_PULUMI": str(machine / "stub-pulumi"),
            "PULUMI_HOME": str(machine / "pulumi-home"),
            **env,
        },
        capture_output=True,
        text=True,
        check=False,
    )
    return result, calls.read_text().splitlines()


def test_make_up_deploys_the_stack_named_creating_it_on_the_local_file_backend(machine):
    with_pulumi_on_path(machine)
    result, calls = make_up(machine)
    assert result.returncode == 0, result.stderr
    assert calls == ["pulumi version", "pulumi stack select --create pi5", "pulumi up --stack pi5"]


def test_make_up_without_a_stack_deploys_the_selected_one_and_never_a_default(machine):
    """`STACK` once defaulted to pi5, the organization's own stack: forget it and deploy its domains."""
    with_pulumi_on_path(machine)
    result, calls = make_up(machine, "STACK=")
    assert result.returncode != 0 and calls == [], "nothing runs"
    # The checkout's stack files, the reader's own `Pulumi.lab.yaml` (README, step 4) among them once copied.
    stacks = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in ROOT.glob("Pulumi.*.yaml"))
    assert {"e2e", "example", "pi5"} <= set(stacks)
    assert result.stderr.splitlines()[0] == (
        f"stack: no stack named and none selected (`pulumi stack select`): name one with STACK=<name>, one of {stacks}"
    )
    select_stack(machine, "organization/spitikos/lab")  # the form a file backend records
    result, calls = make_up(machine, "STACK=")
    assert result.returncode == 0, result.stderr
    assert calls[-1] == "pulumi up --stack lab"
    result, calls = make_up(machine, "STACK=../x")
    assert result.returncode != 0 and "'../x' is not a stack name" in result.stderr


def test_make_up_deploys_any_stack(machine):
    with_pulumi_on_path(machine)
    result, calls = make_up(machine, "STACK=lab")
    assert result.returncode == 0, result.stderr
    assert calls[-2:] == ["pulumi stack select --create lab", "pulumi up --stack lab"]


def test_make_up_selects_but_never_creates_a_stack_on_a_shared_backend(machine):
    with_pulumi_on_path(machine)
    result, calls = make_up(machine, PULUMI_BACKEND_URL="s3://state/spitikos")
    assert result.returncode == 0, result.stderr
    assert calls[-2:] == ["pulumi stack select pi5", "pulumi up --stack pi5"]


def test_make_up_stops_when_the_stack_is_missing_from_a_shared_backend(machine):
    with_pulumi_on_path(machine)
    result, calls = make_up(machine, "STACK=lab", PULUMI_BACKEND_URL="s3://state/spitikos", STUB_SELECT_STATUS="255")
    assert result.returncode != 0
    assert "stack lab is not on s3://state/spitikos" in result.stderr
    assert "pulumi stack init lab" in result.stderr
    assert calls == ["pulumi version", "pulumi stack select lab"]


def test_make_up_installs_the_pinned_cli_into_the_project_when_it_is_missing(machine):
    result, calls = make_up(machine)
    assert result.returncode == 0, result.stderr
    root = machine / "cli"
    assert calls[:2] == [
        "curl -fsSL https://get.pulumi.com",
        f"installer --version {PULUMI_VERSION} --install-root {root} --no-edit-path",
    ]
    assert calls[-1] == "pulumi up --stack pi5"  # run by the installed copy: none is on PATH
    assert (root / ".gitignore").read_text() == "*\n"


def test_make_up_uses_the_installed_cli_next_time_without_downloading_again(machine):
    make_up(machine)
    (machine / "calls").unlink()
    result, calls = make_up(machine)
    assert result.returncode == 0, result.stderr
    assert not any(call.startswith("curl") for call in calls)


def test_make_up_can_be_told_not_to_install_and_then_says_exactly_how(machine):
    result, calls = make_up(machine, "PULUMI_INSTALL=no")
    assert result.returncode != 0
    command = (
        f"curl -fsSL https://get.pulumi.com | sh -s -- --version {PULUMI_VERSION} --install-root {machine / 'cli'}"
    )
    assert command in result.stderr
    assert calls == []


def test_make_up_offline_says_what_to_do_instead_of_only_curls_error(machine):
    result, calls = make_up(machine, STUB_OFFLINE="1")
    assert result.returncode != 0
    assert calls == ["curl -fsSL https://get.pulumi.com"]
    lines = result.stderr.splitlines()
    assert "curl: (6)" not in lines[0].split(" (")[0]  # never curl's bare line alone
    assert "could not download Pulumi's installer from https://get.pulumi.com (curl: (6) Could not resolve" in lines[0]
    assert "is this machine offline?" in lines[0]
    assert "install Pulumi" in lines[1] and "PULUMI_INSTALL=no" in lines[1]
    assert not (machine / "cli" / "bin").exists()


def test_make_cli_installs_the_pinned_cli_and_prints_how_to_put_it_on_path(machine):
    result, calls = make_up(machine, target="cli")
    assert result.returncode == 0, result.stderr
    root = machine / "cli"
    assert calls[1] == f"installer --version {PULUMI_VERSION} --install-root {root} --no-edit-path"
    assert calls[-1] == "pulumi version"  # nothing deployed, no stack selected
    assert f'export PATH="{root}/bin:$PATH"' in result.stdout.splitlines()
    # Run again: nothing downloaded, the same line printed.
    (machine / "calls").unlink()
    again, calls = make_up(machine, target="cli")
    assert calls == ["pulumi version"] and f'export PATH="{root}/bin:$PATH"' in again.stdout


def test_the_installed_cli_stays_out_of_git_even_before_its_own_gitignore_exists():
    assert ".pulumi-cli/" in (ROOT / ".gitignore").read_text().splitlines()


def test_make_help_lists_every_target_and_plain_make_is_the_whole_check():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z0-9-]*):", makefile, re.M))
    assert {"e2e", "restore-volume", "etcd-restore-script"} <= targets  # a digit once hid `e2e`
    listed = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert {line.split()[1] for line in listed.splitlines()} == targets
    # Plain `make` is `make test`, which the README's first lines give as the whole check.
    default = subprocess.run(["make", "-n"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "-m pytest" in default and "ruff check" in default and "actionlint" in default


def test_make_up_warns_when_the_cli_on_path_is_not_the_pinned_version(machine):
    with_pulumi_on_path(machine)
    result, _ = make_up(machine, STUB_VERSION="3.100.0")
    assert result.returncode == 0, result.stderr
    assert f"is v3.100.0; CI uses v{PULUMI_VERSION}" in result.stderr


def test_make_up_sets_up_the_same_venv_as_the_tests_first(tmp_path):
    dry_run = subprocess.run(
        ["make", "-n", "up", f"VENV={tmp_path / 'fresh'}"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "pip install --quiet --require-hashes -r requirements-dev.lock" in dry_run.stdout


def steps_of(path):
    data = yaml.safe_load(path.read_text())
    if "runs" in data:
        return data["runs"]["steps"]
    return [step for job in data["jobs"].values() for step in job.get("steps", [])]


def test_ci_installs_the_pulumi_version_pinned_in_the_makefile():
    github = ROOT / ".github"
    pins = [
        (path.name, str(step.get("with", {}).get("pulumi-version")))
        for path in [*github.glob("workflows/*.yaml"), *github.glob("actions/*/action.yaml")]
        for step in steps_of(path)
        if step.get("uses", "").startswith("pulumi/actions@")
    ]
    assert pins
    assert all(version == PULUMI_VERSION for _, version in pins), pins


def dry_run(tmp_path, *args):
    return subprocess.run(
        ["make", "--no-print-directory", "-n", *args, f"VENV={tmp_path / 'fresh'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_restore_targets_run_from_the_venv_with_nothing_else_on_stdout(tmp_path):
    """The runbook once ran `python -m spitikos` on whatever `python` was on PATH (ModuleNotFoundError),
    and pipes `make restore-volume` into `kubectl apply`: the venv's setup must not reach stdout."""
    python = tmp_path / "fresh" / "bin" / "python"
    for args, command in [
        (
            ["restore-volume", "STACK=lab", "CLAIM=vault/data-vault-0", "SIZE=1Gi"],
            f"{python} -m spitikos restore-volume --stack 'lab' --size '1Gi' 'vault/data-vault-0'",
        ),
        (
            ["etcd-restore-script", "STACK=lab", "SNAPSHOT=etcd-snapshot-a-1.zip", "OUT=restore.sh"],
            f"{python} -m spitikos etcd-restore-script --stack 'lab' --out 'restore.sh' 'etcd-snapshot-a-1.zip'",
        ),
    ]:
        result = dry_run(tmp_path, *args)
        assert result.returncode == 0, result.stderr
        assert "pip install --quiet --require-hashes -r requirements-dev.lock" in result.stderr
        # (`-n` prints the sub-make line that sets the venv up, whose own output goes to stderr.)
        assert result.stdout.splitlines() == [
            f"make --no-print-directory -s {tmp_path / 'fresh'}/.installed >&2",
            command,
        ]


@pytest.mark.parametrize(
    "args,message",
    [
        (["restore-volume", "SIZE=1Gi"], "CLAIM=<namespace>/<claim>, as listed in backupVolumes, is required"),
        (["restore-volume", "CLAIM=vault/data-vault-0"], "SIZE=<the claim's size, like 1Gi> is required"),
        (["etcd-restore-script", "OUT=r.sh"], "SNAPSHOT=<name, as `sudo k3s etcd-snapshot ls` prints it> is required"),
        (["etcd-restore-script", "SNAPSHOT=x"], "OUT=<file to write the script to> is required"),
    ],
)
def test_the_restore_targets_say_which_setting_is_missing(tmp_path, args, message):
    result = dry_run(tmp_path, *args)
    assert result.returncode != 0 and result.stdout == ""
    assert result.stderr.strip().endswith(f"*** {message}.  Stop."), result.stderr


def test_no_target_plans_renders_or_deploys_a_default_stack(tmp_path):
    """`STACK ?= pi5` once made the organization's stack every target's default."""
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^STACK \?=\s*$", makefile, re.M)
    for target in ("plan", "render", "up"):
        result = dry_run(tmp_path, target)
        assert "--stack" not in result.stdout.replace("-m spitikos stack", ""), (target, result.stdout)
        assert "pi5" not in result.stdout, (target, result.stdout)
