"""`python -m spitikos plan [--stack pi5] [--out DIR]`: the whole platform, offline."""

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
    args = parser.parse_args(argv)

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
