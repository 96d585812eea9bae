"""The e2e run's checks that need more than `kubectl wait` (tools/e2e): each reads JSON on stdin,
prints one line per problem, and exits 1 if there is any.

    kubectl get appproject default -n argocd -o json | python -m spitikos.e2e project STATE.json
    pulumi stack export | python -m spitikos.e2e left-after-destroy
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

# The `default` project's fields the program sets (components/argocd.py `app_projects`).
PROJECT_FIELDS = (
    "sourceRepos",
    "destinations",
    "clusterResourceWhitelist",
    "clusterResourceBlacklist",
    "namespaceResourceBlacklist",
    "destinationServiceAccounts",
)


def default_project_in_state(state: dict[str, Any]) -> dict[str, Any]:
    """The `default` AppProject's spec as the program set it: the inputs of its patch in the
    stack's state (`pulumi stack export`)."""
    for r in (state.get("deployment") or {}).get("resources") or []:
        inputs = r.get("inputs") or {}
        if r.get("type", "").endswith(":AppProjectPatch") and (inputs.get("metadata") or {}).get("name") == "default":
            return inputs.get("spec") or {}
    raise ValueError("the stack's state holds no patch of the default AppProject")


def project_problems(live: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """Each field the program sets that the live project holds otherwise (Argo CD's own wider
    values, kept by a patch that did not take them over, show up here)."""
    spec = live.get("spec") or {}
    return [
        f"AppProject default: spec.{key} is {spec.get(key)!r}, the program sets {expected.get(key)!r}"
        for key in PROJECT_FIELDS
        if _normal(spec.get(key)) != _normal(expected.get(key))
    ]


def _normal(value: Any) -> Any:
    """Lists compared as sets of their JSON items; an empty list as absent (the API server drops it)."""
    if isinstance(value, list):
        return sorted(json.dumps(v, sort_keys=True) for v in value) or None
    return value


def left_after_destroy(state: dict[str, Any]) -> list[str]:
    """Resources `pulumi destroy --exclude-protected` left in the stack that are neither protected
    nor needed by a protected one (its parents, its provider, what it depends on)."""
    resources = (state.get("deployment") or {}).get("resources") or []
    by_urn = {r["urn"]: r for r in resources}
    kept: set[str] = set()
    todo = [r["urn"] for r in resources if r.get("protect")]
    while todo:
        urn = todo.pop()
        if urn in kept or urn not in by_urn:
            continue
        kept.add(urn)
        r = by_urn[urn]
        todo += [r.get("parent", ""), (r.get("provider") or "").rsplit("::", 1)[0], *r.get("dependencies", [])]
    return [
        f"left after destroy, and not protected: {r['urn']}"
        for r in resources
        if r["urn"] not in kept and r.get("type") != "pulumi:pulumi:Stack"
    ]


def main(argv: list[str]) -> int:
    command, *rest = argv or ["help"]
    if command == "project" and len(rest) == 1:
        state = json.loads(Path(rest[0]).read_text())
        problems = project_problems(json.load(sys.stdin), default_project_in_state(state))
    elif command == "left-after-destroy":
        problems = left_after_destroy(json.load(sys.stdin))
    else:
        print("usage: python -m spitikos.e2e project STATE_JSON | left-after-destroy", file=sys.stderr)
        return 2
    for line in problems:
        print(f"e2e: {line}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
