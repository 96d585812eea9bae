"""Refresh tests/fixtures/spitikos/ from the organization's repositories (`make refresh-fixtures`).

    make refresh-fixtures                        # every file again, at the commits SOURCES.yaml names
    make refresh-fixtures MOVE="charts=<commit>" # move a repository to another commit first

Each listed file is written exactly as `git show <commit>:<path>` gives it. After a move, remake
that repository's patch in docs/migration/ against the new commit (docs/migration/README.md),
then `make test`: tests/test_migration.py applies every patch to the refreshed files.
SOURCE='/some/mirror/{repo}' clones from elsewhere than each repository's `url`; FIXTURES=dir
refreshes another copy. Nothing is written unless every repository and file could be read.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

FIXTURES = Path(os.environ.get("FIXTURES", Path(__file__).resolve().parent.parent / "tests/fixtures/spitikos"))
MANIFEST = FIXTURES / "SOURCES.yaml"


def git(*args: str) -> bytes:
    return subprocess.run(["git", *args], check=True, capture_output=True).stdout


def main(moves: list[str]) -> int:
    sources = yaml.safe_load(MANIFEST.read_text())
    wanted = dict(move.split("=", 1) for move in moves)
    if unknown := set(wanted) - set(sources):
        print(f"refresh-fixtures: no repository {sorted(unknown)} in {MANIFEST.name}", file=sys.stderr)
        return 2
    manifest = MANIFEST.read_text()
    files: dict[Path, bytes] = {}
    with tempfile.TemporaryDirectory() as work:
        for repo, source in sources.items():
            url = os.environ.get("SOURCE", source["url"]).replace("{repo}", repo)
            clone = str(Path(work) / repo)
            try:
                git("clone", "--quiet", url, clone)
                wanted_commit = wanted.get(repo, source["commit"])
                commit = git("-C", clone, "rev-parse", "--verify", f"{wanted_commit}^{{commit}}").decode().strip()
                for path in source["paths"]:
                    files[FIXTURES / repo / path] = git("-C", clone, "show", f"{commit}:{path}")
            except subprocess.CalledProcessError as error:
                detail = error.stderr.decode().strip() or str(error)
                print(f"refresh-fixtures: {repo} ({url}): {detail}; nothing was written", file=sys.stderr)
                return 1
            block = re.compile(rf"(?m)^({re.escape(repo)}:\n(?:  .*\n)*?  commit: )[0-9a-f]{{40}}$")
            manifest = block.sub(rf"\g<1>{commit}", manifest, count=1)
            print(f"{repo}: {len(source['paths'])} files at {commit[:7]}")
    for target, content in files.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    MANIFEST.write_text(manifest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
