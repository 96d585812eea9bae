"""The README and the runbook, as a newcomer follows them: in order, and agreeing with each other."""

from __future__ import annotations

import re

from conftest import ROOT

README = (ROOT / "README.md").read_text()
RUNBOOK = (ROOT / "docs" / "operations.md").read_text()
# A `pulumi` command the reader runs: a line of a code block that starts with it (or runs it after `&&`).
PULUMI_COMMAND = re.compile(r"^(?:\s*|.*&& \(?)pulumi [a-z]", re.M)


def first_pulumi_command(text: str, start: int = 0) -> int:
    for block in re.finditer(r"```\w*\n(.*?)```", text[start:], re.S):
        if PULUMI_COMMAND.search(block.group(1)):
            return start + block.start()
    raise AssertionError("no pulumi command in a code block")


def _first_run() -> str:
    start = README.index("## First run")
    return README[start : README.index("\n## ", start + 1)]


def test_the_cli_is_installed_and_put_on_path_before_the_first_pulumi_command():
    first_command = first_pulumi_command(README)
    install = README.find("\n   make cli")
    on_path = README.find('export PATH="$PWD/.pulumi-cli/bin:$PATH"')
    assert 0 <= install < on_path < first_command, README[first_command : first_command + 200]
    # ... inside First run, before the step that first needs it (the passphrase and `pulumi config`).
    steps = _first_run()
    assert steps.index("make cli") < steps.index("PULUMI_CONFIG_PASSPHRASE") < steps.index("[Settings]")


def test_the_runbook_says_how_to_get_the_cli_and_which_stack_before_any_command():
    first_command = first_pulumi_command(RUNBOOK)
    assert RUNBOOK.index("make cli") < first_command
    assert RUNBOOK.index("export STACK=") < RUNBOOK.index('pulumi stack select "$STACK"') < first_command + 80


def test_the_runbook_names_no_stack_of_its_own_and_the_same_ssh_key_as_the_readme():
    assert "--stack pi5" not in RUNBOOK and "`urn:pulumi:pi5::" not in RUNBOOK
    assert "stack rm pi5" not in RUNBOOK
    assert "~/.ssh/spitikos" in README and "~/.ssh/spitikos" in RUNBOOK
    assert "id_ed25519" not in README + RUNBOOK


def test_umask_never_leaks_into_the_readers_shell():
    """`umask 077` typed at a prompt stays for the whole session: only ever in a subshell."""
    for name, text in (("README.md", README), ("docs/operations.md", RUNBOOK)):
        for line in text.splitlines():
            if "umask 077" in line:
                assert re.search(r"\(umask 077 && [^)]+\)", line), f"{name}: {line.strip()}"


def test_bash_only_lines_are_in_bash_blocks():
    """`read -s` is not POSIX sh: a block a reader runs with `sh` must not need bash."""
    for name, text in (("README.md", README), ("docs/operations.md", RUNBOOK)):
        for lang, body in re.findall(r"```(\w*)\n(.*?)```", text, re.S):
            if re.search(r"\bread -\w*s", body):
                assert lang == "bash", f"{name}: a ```{lang} block uses read -s"


def test_the_settings_block_creates_the_readers_stack_not_the_maintainers():
    settings = README[README.index("### Settings") :]
    assert "pulumi stack select --create <stack>" in settings
    assert "pulumi stack select --create pi5" not in README


def test_the_readmes_footprint_figures_are_the_programs(stack):
    """Figures in prose go stale: these are derived from what the program registers."""
    from spitikos import plan as offline

    plan = offline.from_recording(stack)
    requests = plan.total_footprint().memory_requests_mi
    sentence = README[README.index("Every container has CPU and memory requests and limits.") :][:400]
    assert f"The platform requests {requests:.0f} MiB" in sentence
    assert f"{plan.left_for_applications_mi:.0f} MiB of a 4 GB Pi 5 stay free" in sentence
    from components.footprint import APPLICATION_RESERVE_MI, K3S_SYSTEM_MI

    assert f"estimated {K3S_SYSTEM_MI} MiB for k3s" in sentence and f"{APPLICATION_RESERVE_MI} MiB reserve" in sentence
    assert plan.node_memory_mi == 4096 and plan.total_footprint().cpu_limits_millis > 4000


def test_the_runbooks_commands_work_as_written_for_the_readers_stack_and_node():
    """It once ran `python -m spitikos` on whatever `python` was on PATH (ModuleNotFoundError, and an
    empty restore script sent over ssh), and ssh'd to pi5's address while using `$STACK` elsewhere."""
    import yaml

    pi5 = yaml.safe_load((ROOT / "Pulumi.pi5.yaml").read_text())["config"]
    assert pi5["spitikos:nodeHost"] not in RUNBOOK, "pi5's address: the reader's is $NODE_HOST"
    blocks = "\n".join(re.findall(r"```\w*\n(.*?)```", RUNBOOK, re.S))
    assert "python -m" not in blocks
    targets = set(re.findall(r"^([a-z][a-z0-9-]*):", (ROOT / "Makefile").read_text(), re.M))
    makes = re.findall(r"^\s*make (\S+)(.*)$", blocks, re.M)
    assert {"etcd-restore-script", "restore-volume"} <= {target for target, _ in makes}
    for target, rest in makes:
        assert target in targets and 'STACK="$STACK"' in rest, (target, rest)
    assert "OUT=" in dict(makes)["etcd-restore-script"] and "SNAPSHOT=" in dict(makes)["etcd-restore-script"]
    assert re.search(r"make restore-volume [^\n]*\| kubectl apply -f -", blocks)
    # The script is sent only when it was written: never an older or missing one.
    assert re.search(r'OUT="([^"]+)" &&\n\s+ssh [^\n]*"\$\(cat "\1"\)"', blocks)
    for line in re.findall(r"^\s*ssh .*$", blocks, re.M):
        assert '-p "$NODE_PORT" "$NODE"' in line, line
    setup = RUNBOOK[: RUNBOOK.index("```", RUNBOOK.index("export STACK=")) + 3]
    assert all(f"{name}=" in setup for name in ("NODE_HOST", "NODE", "NODE_PORT"))
