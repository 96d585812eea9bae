"""`python -m spitikos plan [--stack S] [--out DIR]`: the whole platform, offline.

`python -m spitikos restore-volume NAMESPACE/CLAIM --size SIZE` and `python -m spitikos
etcd-restore-script SNAPSHOT --out FILE` make what docs/operations.md ("The Pi died") applies or
runs (`make restore-volume`, `make etcd-restore-script`). `python -m spitikos stack` prints the stack
the make targets work on. Without `--stack`, each command works on the stack `pulumi stack select`
chose in this folder, and on none when none was: never on a default."""

from __future__ import annotations

import gc
import os
import sys
from argparse import Namespace
from pathlib import Path

from spitikos.cli import Parser, file_to_write, folder_to_write, refuse, stack_name, write_private

STACK_HELP = "the stack whose Pulumi.<stack>.yaml to use (default: the one `pulumi stack select` chose)"


def parser() -> Parser:
    parser = Parser(prog="python -m spitikos", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    plan = commands.add_parser("plan", help="run the program offline and print what it would build")
    plan.add_argument("--stack", type=stack_name, help=STACK_HELP)
    plan.add_argument(
        "--out", type=folder_to_write, help="also write the Kubernetes objects, tunnel routes and plan.json here"
    )
    volume = commands.add_parser("restore-volume", help="print the manifests that restore a backed-up claim")
    volume.add_argument("claim", help="NAMESPACE/CLAIM, as listed in the stack's backupVolumes")
    volume.add_argument("--size", required=True, help="the claim's size, like 1Gi (the size its application asks for)")
    volume.add_argument("--stack", type=stack_name, help=STACK_HELP)
    etcd = commands.add_parser("etcd-restore-script", help="write the node-side script that restores a snapshot")
    etcd.add_argument("snapshot", help="a snapshot's name, as `sudo k3s etcd-snapshot ls` prints it")
    etcd.add_argument("--out", type=file_to_write, help="write the script here (0600), whole or not at all")
    etcd.add_argument("--stack", type=stack_name, help=STACK_HELP)
    which = commands.add_parser("stack", help="print the stack the make targets work on")
    which.add_argument("--stack", type=stack_name, help="a stack named on the command line (STACK=)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "stack" and args.stack:  # `make up STACK=...`: nothing more to read
        print(args.stack)
        return 0
    from spitikos.stack import StackFileError

    if args.command == "stack":
        try:
            return _stack(args)
        except StackFileError as error:
            return refuse(args.command, str(error))
    from components.settings import SettingsError

    command = {"plan": _plan, "restore-volume": _restore_volume, "etcd-restore-script": _etcd_restore_script}
    try:
        return command[args.command](args)
    except (SettingsError, StackFileError) as error:
        return refuse(args.command, str(error))
    except OSError as error:  # no stack file; or --out, checked first, unwritable still (a full disk)
        return refuse(args.command, str(error) if error.errno is None else f"{error.filename}: {error.strerror}")


def _stack(args: Namespace) -> int:
    from spitikos.stack import chosen_stack

    print(chosen_stack(None))
    return 0


def _plan(args: Namespace) -> int:
    from spitikos import plan as offline
    from spitikos.stack import chosen_stack

    result = offline.build(chosen_stack(args.stack, offline.ROOT))
    sys.stdout.write(offline.render(result))
    if args.out:
        written = offline.write(result, args.out)
        print(f"Wrote {len(written)} files to {args.out}/ (secrets redacted as {offline.REDACTED}).")
    return 0


def _stack_values(stack: str | None) -> tuple[str, dict[str, str]]:
    """The stack's name and its settings as an offline run reads them."""
    from spitikos import stack as stacks

    name = stacks.chosen_stack(stack, stacks.ROOT)
    return name, stacks.offline_config(name, stacks.ROOT)[0]


def _restore_volume(args: Namespace) -> int:
    import json

    import yaml

    from components import namespaces
    from components.backup import Volume, restore_manifests, storage_problem
    from components.settings import CLAIM_RE

    match = CLAIM_RE.fullmatch(args.claim)
    if match is None:
        return refuse(args.command, f"{args.claim!r} is not NAMESPACE/CLAIM, like 'vault/data-vault-0'")
    if namespaces.is_platform(match.group(1)):
        return refuse(
            args.command,
            f"{args.claim!r} is in the platform's namespace {match.group(1)!r}: no claim there is backed up",
        )
    if (problem := storage_problem(args.size)) is not None:
        return refuse(args.command, f"--size {args.size!r} {problem}")
    stack, config = _stack_values(args.stack)
    try:
        listed = json.loads(config.get("spitikos:backupVolumes") or "[]")
    except (ValueError, RecursionError):
        listed = []  # not a list: the settings refuse it, and nothing is listed
    if args.claim not in listed:
        return refuse(
            args.command,
            f"{args.claim!r} is not in Pulumi.{stack}.yaml's backupVolumes {listed}: only a listed claim is backed up",
        )
    sys.stdout.write(yaml.safe_dump_all(restore_manifests(Volume.parse(args.claim), args.size), sort_keys=False))
    return 0


def _etcd_restore_script(args: Namespace) -> int:
    from components.k3s import etcd_restore_script

    try:
        script = etcd_restore_script(args.snapshot)
    except ValueError as error:
        return refuse(args.command, str(error))
    stack, config = _stack_values(args.stack)
    if config.get("spitikos:datastore") != "etcd" or not config.get("spitikos:backupBucket"):
        return refuse(
            args.command,
            f"Pulumi.{stack}.yaml has no etcd snapshots to restore: they need `datastore: etcd` and a `backupBucket`",
        )
    if args.out is None:
        sys.stdout.write(script)
        return 0
    write_private(Path(args.out), script)
    print(f"Wrote the restore script for {args.snapshot} to {args.out} (readable by you alone).", file=sys.stderr)
    return 0


if __name__ == "__main__":
    # A short-lived command that builds hundreds of thousands of objects importing the
    # provider SDKs: the garbage collector only slows it down.
    gc.disable()
    try:
        code = main()
        sys.stdout.flush()
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:  # `... | head`: the reader has what it wanted
        code = 0
    sys.stderr.flush()
    # Skip tearing down the provider SDKs' hundreds of thousands of objects (and the
    # engine's idle threads): the plan is written and flushed, nothing is left to do.
    os._exit(code)
