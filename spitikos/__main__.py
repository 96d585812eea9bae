"""`python -m spitikos plan [--stack pi5] [--out DIR]`: the whole platform, offline.

`python -m spitikos restore-volume NAMESPACE/CLAIM [--size 1Gi]` and `python -m spitikos
etcd-restore-script SNAPSHOT` print what docs/operations.md ("The Pi died") applies or runs."""

from __future__ import annotations

import argparse
import gc
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spitikos", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    plan = commands.add_parser("plan", help="run the program offline and print what it would build")
    plan.add_argument("--stack", default="pi5", help="the stack whose Pulumi.<stack>.yaml to use (default: pi5)")
    plan.add_argument("--out", type=Path, help="also write the Kubernetes objects, tunnel routes and plan.json here")
    volume = commands.add_parser("restore-volume", help="print the manifests that restore a backed-up claim")
    volume.add_argument("claim", help="NAMESPACE/CLAIM, as listed in backupVolumes")
    volume.add_argument("--size", default="1Gi", help="the claim's size, if it must be created (default: 1Gi)")
    etcd = commands.add_parser("etcd-restore-script", help="print the node-side script that restores a snapshot")
    etcd.add_argument("snapshot", help="a snapshot's name, as `sudo k3s etcd-snapshot ls` prints it")
    args = parser.parse_args(argv)
    if args.command != "plan":
        return _restore(args)

    from components.settings import SettingsError
    from spitikos import plan as offline
    from spitikos.stack import StackFileError

    try:
        result = offline.build(args.stack)
    except (SettingsError, StackFileError, FileNotFoundError) as error:
        print(f"plan: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(offline.render(result))
    if args.out:
        written = offline.write(result, args.out)
        print(f"Wrote {len(written)} files to {args.out}/ (secrets redacted as {offline.REDACTED}).")
    return 0


def _restore(args: argparse.Namespace) -> int:
    import yaml

    from components.backup import Volume, restore_manifests
    from components.k3s import etcd_restore_script

    try:
        if args.command == "etcd-restore-script":
            sys.stdout.write(etcd_restore_script(args.snapshot))
        else:
            manifests = restore_manifests(Volume.parse(args.claim), args.size)
            sys.stdout.write(yaml.safe_dump_all(manifests, sort_keys=False))
    except ValueError as error:
        print(f"{args.command}: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    # A short-lived command that builds hundreds of thousands of objects importing the
    # provider SDKs: the garbage collector only slows it down.
    gc.disable()
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip tearing down the provider SDKs' hundreds of thousands of objects (and the
    # engine's idle threads): the plan is written and flushed, nothing is left to do.
    os._exit(code)
