"""The world model checked against a real cluster (the e2e run, tools/e2e).

tools/e2e records the objects of the model's kinds twice: once the cluster is up, before the first
`pulumi up`, and once the platform is up. `differences` compares what appeared in between with
`AT_START` (what the platform's charts, their Helm hooks and controllers create outside their
releases; `spitikos.world.owner` reads who made each object), naming each difference. `FRESH_K3S`
is k3s's own and is not compared: on kind, the cluster's baseline differs.

`hook_problems` is the same comparison against what Helm would leave of the charts `make render`
renders (hooks included), so no object a pinned chart makes surprises the e2e run.

    kubectl get "$(python -m spitikos.world_check kinds)" -A -o json \
      | python -m spitikos.world_check record > after.json
    python -m spitikos.world_check compare before.json after.json
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from spitikos import world
from spitikos.world import (
    AT_START,
    CLUSTER_SCOPED,
    FRESH_K3S,
    HELM_HOOK,
    HELM_HOOK_DELETE_POLICY,
    HELM_RECORD_LABEL,
    HELM_RELEASE_NAME,
    HELM_RELEASE_NAMESPACE,
    HOOKS_LEFT,
    MANAGED_BY,
    Existing,
)

# Groups whose kinds exist only once a chart installed their CRD.
CRD_GROUPS = {"argoproj.io"}
# Objects in every namespace (kube-controller-manager's).
EVERY_NAMESPACE = {("ServiceAccount", "default"), ("ConfigMap", "kube-root-ca.crt")}
# What `world.owner` reads: Helm's ownership and its hooks' annotations (no value of the object).
KEPT_ANNOTATIONS = (HELM_RELEASE_NAME, HELM_RELEASE_NAMESPACE, HELM_HOOK, HELM_HOOK_DELETE_POLICY)
KEPT_LABELS = (MANAGED_BY, HELM_RECORD_LABEL[0])


def kinds(builtin_only: bool = False) -> list[str]:
    """The model's kinds, as `kubectl get` takes them; without the CRDs' ones before they exist."""
    found = {(o.api_version.rpartition("/")[0], o.kind) for o in (*FRESH_K3S, *AT_START)}
    return sorted(k.lower() for g, k in found if not (builtin_only and g in CRD_GROUPS))


def record(listing: dict[str, Any]) -> list[dict[str, Any]]:
    """`kubectl get -o json` reduced to identity and what `world.owner` reads (the managed-by and
    `owner` labels, Helm's ownership and hook annotations): no data, no spec, no other annotation
    (`last-applied-configuration` may hold a Secret's data)."""
    out = []
    for item in listing.get("items", []):
        meta = item.get("metadata") or {}
        labels = meta.get("labels") or {}
        notes = meta.get("annotations") or {}
        out.append(
            {
                "apiVersion": item["apiVersion"],
                "kind": item["kind"],
                "namespace": meta.get("namespace"),
                "name": meta["name"],
                "labels": {k: v for k, v in labels.items() if k in KEPT_LABELS},
                "annotations": {k: v for k, v in notes.items() if k in KEPT_ANNOTATIONS},
            }
        )
    return sorted(out, key=lambda o: (o["kind"], o["namespace"] or "", o["name"]))


def load(recorded: Iterable[dict[str, Any]]) -> list[Existing]:
    return [
        Existing(
            o["apiVersion"],
            o["kind"],
            o.get("namespace"),
            o["name"],
            annotations=tuple(sorted((o.get("annotations") or {}).items())),
            labels=tuple(sorted((o.get("labels") or {}).items())),
        )
        for o in recorded
    ]


# Made with the release, Helm's record of it, or by the program: no model lists those.
SELF_EVIDENT = {world.RELEASE_OWNED, world.HELM_RECORD, world.PROGRAM_OWNED}


def differences(
    before: Sequence[Existing],
    after: Sequence[Existing],
    platform_namespaces: Iterable[str],
    model: Sequence[Existing] = AT_START,
) -> list[str]:
    """Every way the cluster disagrees with `model`, one line each, naming the object. The model's
    objects of a namespace the cluster does not hold are not expected: a stack without backups
    makes no `volsync-system`, and nothing in it is missing."""
    was = {o.key for o in before}
    now = {o.key for o in after}
    held = {o.name for o in after if o.kind == "Namespace"}
    model = [o for o in model if o.namespace is None or o.namespace in held]
    listed = {o.key for o in model}
    namespaces = set(platform_namespaces)
    found = [f"missing: {o} (AT_START lists it; the cluster does not hold it)" for o in model if o.key not in now]
    found += [
        f"already there: {o} (AT_START says the platform makes it; it was there before)" for o in model if o.key in was
    ]
    found += [
        _unlisted(o)
        for o in after
        if o.key not in was
        and o.key not in listed
        and o.namespace in namespaces
        and (o.kind, o.name) not in EVERY_NAMESPACE
        and world.owner(o) not in SELF_EVIDENT
    ]
    return found


def _unlisted(o: Existing) -> str:
    if world.owner(o) == world.HOOK:
        policy = dict(o.annotations).get(HELM_HOOK_DELETE_POLICY, "none: before-hook-creation")
        return f"unlisted: {o} (left by a Helm hook: {o.hook}, delete policy {policy}; AT_START omits it)"
    return f"unlisted: {o} (made while the platform came up, by no release and not by the program; AT_START omits it)"


# --- what Helm leaves of a rendered chart -------------------------------------------------------


Rendered = tuple[str, str, list[dict[str, Any]]]
"""A release as `make render` renders it: name, namespace, `helm template`'s objects."""


def left_by_hooks(rendered: Iterable[Rendered]) -> list[Existing]:
    """The hook objects an install of the rendered releases leaves."""
    return [o for o in _installed(list(rendered), world.INSTALL) if world.owner(o) == world.HOOK]


def _installed(rendered: list[Rendered], run: frozenset[str]) -> list[Existing]:
    """What the releases leave, in their namespaces (the program makes those)."""
    made = ((MANAGED_BY, "pulumi"),)
    namespaces = [Existing("v1", "Namespace", None, n, labels=made) for n in dict.fromkeys(ns for _, ns, _ in rendered)]
    return namespaces + load(record({"items": [i for r in rendered for i in helm_install(*r, run=run)["items"]]}))


def helm_install(
    release: str, namespace: str, objects: Iterable[dict[str, Any]], run: frozenset[str] = world.INSTALL
) -> dict[str, list[dict[str, Any]]]:
    """What a successful `helm install` (or upgrade: `run`) of `objects` (`helm template`'s output,
    hooks included) leaves in a cluster, as `kubectl get -o json` lists it: the manifest with the
    release's ownership (helm/helm pkg/action/validate.go, setMetadataVisitor), and each hook object
    its delete policy keeps, with no ownership (`world.left_by_hook`)."""
    items = []
    for obj in objects:
        meta = dict(obj.get("metadata") or {})
        notes = dict(meta.get("annotations") or {})
        labels = dict(meta.get("labels") or {})
        if HELM_HOOK in notes:
            if not world.left_by_hook(obj["kind"], notes, run) or _deleted_when_finished(obj):
                continue
        else:
            labels[MANAGED_BY] = "Helm"
            notes |= {HELM_RELEASE_NAME: release, HELM_RELEASE_NAMESPACE: namespace}
        where = None if obj["kind"] in CLUSTER_SCOPED else meta.get("namespace") or namespace
        meta |= {"labels": labels, "annotations": notes, "namespace": where}
        items.append({**obj, "metadata": meta})
    return {"items": items}


def _deleted_when_finished(obj: dict[str, Any]) -> bool:
    """A Job with `ttlSecondsAfterFinished`: Kubernetes' TTL-after-finished controller deletes it
    (and its pods) that long after it finished, whatever Helm's policy."""
    return obj["kind"] == "Job" and (obj.get("spec") or {}).get("ttlSecondsAfterFinished") is not None


def hook_problems(rendered: Iterable[Rendered]) -> list[str]:
    """`differences` against what Helm leaves of each rendered release ((name, namespace, objects)):
    every hook object that stays must be in `HOOKS_LEFT` (and so in AT_START, of a kind the e2e run
    records), and every one listed there must stay. A hook object that an upgrade leaves and an
    install does not is named too: the e2e run sees an install only."""
    rendered = list(rendered)
    model = [o for name, _, _ in rendered for o in HOOKS_LEFT.get(name, ())]
    installed = _installed(rendered, world.INSTALL)
    upgraded = _installed(rendered, world.UPGRADE)
    everywhere = {o.namespace for o in installed} | set(platform_namespaces())
    found = differences([], installed, everywhere, model)
    once = {o.key for o in installed}
    found += [
        f"left after an upgrade, not an install: {o} (the e2e run sees an install only)"
        for o in upgraded
        if o.key not in once
    ]
    return found


def platform_namespaces() -> list[str]:
    """The namespaces the platform makes (k3s's own aside), the api's included."""
    from components.platform import API_NAMESPACE, K3S_NAMESPACES, Platform

    return [n for n in Platform.owned_namespaces() if n not in K3S_NAMESPACES] + [API_NAMESPACE]


def main(argv: list[str]) -> int:
    command, *rest = argv or ["help"]
    if command == "kinds":
        print(",".join(kinds(builtin_only=rest == ["--builtin"])))
    elif command == "record":
        json.dump(record(json.load(sys.stdin)), sys.stdout, indent=1)
        print()
    elif command == "compare" and len(rest) == 2:
        before, after = (load(json.loads(Path(path).read_text())) for path in rest)
        found = differences(before, after, platform_namespaces())
        for line in found:
            print(f"world model: {line}")
        print(f"world model: {len(found)} difference(s) from AT_START", file=sys.stderr)
        return 1 if found else 0
    else:
        print(
            "usage: python -m spitikos.world_check kinds [--builtin] | record | compare BEFORE AFTER", file=sys.stderr
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
