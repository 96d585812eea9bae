"""`python -m spitikos` (and the make targets that run it): every input gets one line and exit 2,
before anything is built or written; no traceback, whatever the arguments."""

from __future__ import annotations

import hashlib
import json
import stat

import pytest
import yaml
from conftest import ROOT

from spitikos import plan as offline
from spitikos import stack as stacks
from spitikos.__main__ import main


@pytest.fixture
def nothing_selected(tmp_path, monkeypatch):
    """A Pulumi home in which no stack was ever selected."""
    monkeypatch.setenv("PULUMI_HOME", str(tmp_path / "pulumi-home"))
    return tmp_path / "pulumi-home"


@pytest.fixture
def never_built(monkeypatch):
    def build(stack):
        raise AssertionError(f"the plan of {stack} was built before the arguments were checked")

    monkeypatch.setattr(offline, "build", build)


def one_line(text: str) -> str:
    assert len(text.splitlines()) == 1 and "Traceback" not in text, text
    return text.strip()


@pytest.mark.parametrize(
    "argv,message",
    [
        ([], "python -m spitikos: the following arguments are required: command"),
        (["bogus"], "python -m spitikos: argument command: invalid choice: 'bogus'"),
        (["plan", "--stack", "../x"], "python -m spitikos plan: argument --stack: '../x' is not a stack name"),
        (["plan", "--stack", ""], "python -m spitikos plan: argument --stack: '' is not a stack name"),
        (["plan", "--out"], "python -m spitikos plan: argument --out: expected one argument"),
        (["restore-volume"], "python -m spitikos restore-volume: the following arguments are required: claim, --size"),
        (["restore-volume", "vault/data-vault-0"], "the following arguments are required: --size"),
        (["etcd-restore-script"], "python -m spitikos etcd-restore-script: the following arguments are required"),
        (["stack", "--stack", "a/b"], "python -m spitikos stack: argument --stack: 'a/b' is not a stack name"),
    ],
    ids=["no-command", "unknown-command", "stack-a-path", "stack-empty", "out-no-value", "restore-bare", "no-size",
         "etcd-bare", "stack-of-stack"],
)  # fmt: skip
def test_a_bad_command_line_is_one_line_and_exit_2(argv, message, capsys, never_built):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in one_line(captured.err)


def test_out_is_checked_before_the_plan_is_built(tmp_path, capsys, never_built):
    """It once printed the whole plan, then failed with FileExistsError (a file) or FileNotFoundError."""
    existing = tmp_path / "notes.txt"
    existing.write_text("mine\n")
    for out, problem in [
        (existing, f"argument --out: {existing} is a file, not a folder: name a folder"),
        (existing / "plan", f"argument --out: {existing / 'plan'} cannot be created: {existing} is a file"),
    ]:
        with pytest.raises(SystemExit) as exited:
            main(["plan", "--stack", "pi5", "--out", str(out)])
        assert exited.value.code == 2
        captured = capsys.readouterr()
        assert captured.out == "" and problem in one_line(captured.err)
    assert existing.read_text() == "mine\n"


def test_a_missing_out_folder_is_made_when_the_arguments_are_read(tmp_path):
    from spitikos.cli import folder_to_write

    assert folder_to_write(str(tmp_path / "a" / "b")) == tmp_path / "a" / "b"
    assert (tmp_path / "a" / "b").is_dir()
    assert folder_to_write(str(tmp_path)) == tmp_path, "an existing folder is fine: --out rewrites its own files"


def test_no_stack_named_and_none_selected_stops_listing_the_stacks(nothing_selected, capsys, never_built):
    """`make plan`, `render` and `up` once defaulted to pi5, the organization's own stack."""
    assert main(["plan"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert one_line(captured.err) == (
        "plan: no stack named and none selected (`pulumi stack select`): name one with STACK=<name>,"
        f" one of {stacks.known_stacks()}"
    )


def select(home, stack: str) -> None:
    path = stacks.workspace_file(ROOT, home)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"stack": stack}, indent=4))


def test_the_selected_stack_is_read_where_pulumi_stack_select_records_it(nothing_selected, capsys):
    digest = hashlib.sha1(str(ROOT / "Pulumi.yaml").encode()).hexdigest()  # noqa: S324 - the CLI's file name
    assert stacks.workspace_file(ROOT) == nothing_selected / "workspaces" / f"spitikos-{digest}-workspace.json"
    assert stacks.selected_stack() is None
    for recorded, name in [("lab", "lab"), ("organization/spitikos/lab", "lab"), ("me/spitikos/pi5", "pi5")]:
        select(nothing_selected, recorded)
        assert main(["stack"]) == 0 and capsys.readouterr().out == f"{name}\n"
    assert main(["stack", "--stack", "other"]) == 0 and capsys.readouterr().out == "other\n", "named wins"
    link = nothing_selected.parent / "checkout"  # a checkout reached through a symbolic link
    link.symlink_to(ROOT)
    select(nothing_selected, "lab")
    stacks.workspace_file(link, nothing_selected).write_text('{"stack": "linked"}')
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PWD", str(link))
        assert stacks.selected_stack() == "linked", "the CLI hashes the path it was run from"
    for garbage in ("{", "[]", '{"stack": ""}', '{"stack": "o/p/.."}', '{"stack": 5}'):
        stacks.workspace_file(ROOT).write_text(garbage)
        assert stacks.selected_stack() is None, garbage


def restore(*argv: str, capsys) -> tuple[int, str, str]:
    code = main(["restore-volume", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    "claim,size,message",
    [
        ("vault/data-vault-0", "lots", "--size 'lots' is not a size like '1Gi' or '500Mi' (a positive Kubernetes"),
        ("vault/data-vault-0", "-5Gi", "--size '-5Gi' is not a size like '1Gi'"),
        ("vault/data-vault-0", "0", "--size '0' is no size: a claim needs more than 0 bytes"),
        ("vault/data-vault-0", "1 Gi", "--size '1 Gi' is not a size"),
        ("kube-system/foo", "1Gi", "'kube-system/foo' is in the platform's namespace 'kube-system'"),
        ("argocd/redis", "1Gi", "'argocd/redis' is in the platform's namespace 'argocd'"),
        ("volsync-system/x", "1Gi", "in the platform's namespace 'volsync-system'"),
        ("vault/data-vault-1", "1Gi", "'vault/data-vault-1' is not in Pulumi.pi5.yaml's backupVolumes"
         " ['vault/data-vault-0']: only a listed claim is backed up"),
        ("vault", "1Gi", "'vault' is not NAMESPACE/CLAIM, like 'vault/data-vault-0'"),
        ("Vault/x", "1Gi", "is not NAMESPACE/CLAIM"),
        ("vault/x/y", "1Gi", "is not NAMESPACE/CLAIM"),
    ],
)  # fmt: skip
def test_restore_volume_refuses_what_it_cannot_restore_and_prints_nothing(claim, size, message, capsys):
    code, out, err = restore(claim, f"--size={size}", "--stack", "pi5", capsys=capsys)
    assert (code, out) == (2, "")
    assert one_line(err).startswith("restore-volume: ") and message in err


def test_restore_volume_prints_the_claim_and_its_restore_for_a_listed_claim(capsys):
    from components.backup import Volume, restore_manifests

    code, out, err = restore("vault/data-vault-0", "--size", "1.5Gi", "--stack", "pi5", capsys=capsys)
    assert (code, err) == (0, "")
    assert list(yaml.safe_load_all(out)) == restore_manifests(Volume("vault", "data-vault-0"), "1.5Gi")


@pytest.fixture
def etcd_stack(tmp_path, monkeypatch):
    """A project folder whose `ha` stack snapshots etcd to a bucket, and a plain `lab` one."""
    (tmp_path / "Pulumi.yaml").symlink_to(ROOT / "Pulumi.yaml")
    (tmp_path / "Pulumi.ha.yaml").write_text("config:\n  spitikos:datastore: etcd\n  spitikos:backupBucket: b-1\n")
    (tmp_path / "Pulumi.lab.yaml").write_text("config:\n  spitikos:backupBucket: b-1\n")
    monkeypatch.setattr(stacks, "ROOT", tmp_path)
    return tmp_path


SNAPSHOT = "etcd-snapshot-pi5-1764561600.zip"


def test_the_etcd_restore_script_is_written_whole_and_private(etcd_stack, tmp_path, capsys):
    from components.k3s import etcd_restore_script

    out = tmp_path / "restore.sh"
    assert main(["etcd-restore-script", "--stack", "ha", "--out", str(out), SNAPSHOT]) == 0
    assert out.read_text() == etcd_restore_script(SNAPSHOT)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600, "the script reads the cluster's token: the owner's alone"
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    "stack,snapshot,message",
    [
        ("ha", "x; rm -rf /", "'x; rm -rf /' is not a snapshot name as `k3s etcd-snapshot ls` prints it"),
        ("ha", "", "'' is not a snapshot name"),
        ("lab", SNAPSHOT, "Pulumi.lab.yaml has no etcd snapshots to restore: they need `datastore: etcd`"),
        ("nope", SNAPSHOT, "no stack file Pulumi.nope.yaml"),
    ],
)
def test_a_refused_etcd_restore_writes_no_script(etcd_stack, tmp_path, capsys, stack, snapshot, message):
    """It once left an empty script behind, which the runbook's next step sent to the node over ssh."""
    out = tmp_path / "restore.sh"
    assert main(["etcd-restore-script", "--stack", stack, "--out", str(out), snapshot]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and one_line(captured.err).startswith(f"etcd-restore-script: {message}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Pulumi.ha.yaml", "Pulumi.lab.yaml", "Pulumi.yaml"]
    out.write_text("an earlier script\n")
    assert main(["etcd-restore-script", "--stack", stack, "--out", str(out), snapshot]) == 2
    assert out.read_text() == "an earlier script\n", "a refusal leaves an earlier file alone"


def test_the_etcd_restore_script_out_is_checked_first(etcd_stack, tmp_path, capsys):
    for out, problem in [
        (tmp_path, f"{tmp_path} is a folder: name the file to write"),
        (tmp_path / "no" / "r.sh", f"cannot be written: its folder {tmp_path / 'no'} does not exist"),
    ]:
        with pytest.raises(SystemExit):
            main(["etcd-restore-script", "--stack", "ha", "--out", str(out), SNAPSHOT])
        assert problem in one_line(capsys.readouterr().err)
