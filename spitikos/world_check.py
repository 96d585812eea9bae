"""The world model checked against a real cluster (the e2e run, tools/e2e).

tools/e2e records the objects of the model's kinds twice: once the cluster is up, before the first
`pulumi up`, and once the platform is up. `differences` compares what appeared in between with
`AT_START` (what the platform's charts and controllers create outside their releases), naming each
difference. `FRESH_K3S` is k3s's own and is not compared: on kind, the cluster's baseline differs.

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

from spitikos.world import AT_START, FRESH_K3S, HELM_RELEASE_NAME, HELM_RELEASE_NAMESPACE, MANAGED_BY, Existing

# Groups whose kinds exist only once a chart installed their CRD.
CRD_GROUPS = {"argoproj.io"}
# Objects in every namespace (kube-controller-manager's), and Helm's own release records.
EVERY_NAMESPACE = {("ServiceAccount", "default"), ("ConfigMap", "kube-root-ca.crt")}
HELM_STORAGE_LABEL = ("owner", "helm")
KEPT_ANNOTATIONS = (HELM_RELEASE_NAME, HELM_RELEASE_NAMESPACE)


def kinds(builtin_only: bool = False) -> list[str]:
    """The model's kinds, as `kubectl get` takes them; without the CRDs' ones before they exist."""
    found = {(o.api_version.rpartition("/")[0], o.kind) for o in (*FRESH_K3S, *AT_START)}
    return sorted(k.lower() for g, k in found if not (builtin_only and g in CRD_GROUPS))


def record(listing: dict[str, Any]) -> list[dict[str, Any]]:
    """`kubectl get -o json` reduced to identity, the managed-by label and Helm's ownership: no
    data, no spec, no other annotation (`last-applied-configuration` may hold a Secret's data)."""
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
                "labels": {k: v for k, v in labels.items() if k in (MANAGED_BY, HELM_STORAGE_LABEL[0])},
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


def _made_by_a_release_or_the_program(o: Existing) -> bool:
    labels = dict(o.labels)
    return (
        o.helm_owner is not None
        or labels.get(MANAGED_BY) == "pulumi"
        or labels.get(HELM_STORAGE_LABEL[0]) == HELM_STORAGE_LABEL[1]
    )


def differences(
    before: Sequence[Existing],
    after: Sequence[Existing],
    platform_namespaces: Iterable[str],
    model: Sequence[Existing] = AT_START,
) -> list[str]:
    """Every way the cluster disagrees with `model`, one line each, naming the object."""
    was = {o.key for o in before}
    now = {o.key for o in after}
    listed = {o.key for o in model}
    namespaces = set(platform_namespaces)
    found = [f"missing: {o} (AT_START lists it; the cluster does not hold it)" for o in model if o.key not in now]
    found += [
        f"already there: {o} (AT_START says the platform makes it; it was there before)" for o in model if o.key in was
    ]
    found += [
        f"unlisted: {o} (made while the platform came up, by no release and not by the program; AT_START omits it)"
        for o in after
        if o.key not in was
        and o.key not in listed
        and o.namespace in namespaces
        and (o.kind, o.name) not in EVERY_NAMESPACE
        and not _made_by_a_release_or_the_program(o)
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
