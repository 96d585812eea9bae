"""The organization's charts as the patches leave them, rendered by Helm and checked against the
Gateway the program makes (`make render`).

The vendored files of spitikos/charts (tests/fixtures/spitikos/) with every charts patch of
docs/migration/ applied in order; each Application the root lists, rendered from its own
templates, its values and the `_common` library. The upstream charts the wrappers depend on
(vault, kubernetes-dashboard, kube-prometheus-stack) are left out: only the wrappers' own
objects are checked. Each route and BackendTLSPolicy must validate against the vendored Gateway
API CRD of its kind, name the program's Gateway, and be served, for each of its hostnames, by
that Gateway (spitikos/gateway_api.py: the listener a request reaches admits the route).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from components import gateway
from spitikos.gateway_api import Route, serving
from spitikos.stack import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "spitikos" / "charts"
PATCHES = ROOT / "docs" / "migration"
ROOT_VALUES = "charts/argocd/values.yaml"
GATEWAY_KINDS = ("HTTPRoute", "GRPCRoute", "BackendTLSPolicy")
CRD_FILES = {"HTTPRoute": "httproutes", "GRPCRoute": "grpcroutes", "BackendTLSPolicy": "backendtlspolicies"}


def patched_charts(workdir: Path) -> Path:
    """A copy of the vendored charts with each charts patch applied, base first."""
    tree = workdir / "charts"
    shutil.copytree(FIXTURES, tree)
    subprocess.run(["git", "init", "-q", str(tree)], check=True)
    for patch in sorted(PATCHES.glob("charts-*.patch"), key=lambda p: (p.name.count("."), p.name)):
        subprocess.run(["git", "-C", str(tree), "apply", str(patch)], check=True, capture_output=True)
    return tree


def applications(tree: Path) -> list[dict[str, Any]]:
    return yaml.safe_load((tree / ROOT_VALUES).read_text())["applications"]


def wrapper(tree: Path, app: Mapping[str, Any], workdir: Path) -> Path:
    """The app's chart with its own templates and values and the library, no upstream dependency."""
    chart = workdir / app["name"]
    source = tree / app["path"]
    shutil.copytree(source / "templates", chart / "templates")
    shutil.copy(source / "values.yaml", chart / "values.yaml")
    shutil.copytree(tree / "charts" / "_common", chart / "charts" / "common")
    meta = {"apiVersion": "v2", "name": app["name"], "version": "0.1.0"}
    meta["dependencies"] = [{"name": "common", "version": "0.1.0", "repository": "file://../_common"}]
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta))
    return chart


def render_app(helm: Path, tree: Path, app: Mapping[str, Any], workdir: Path) -> list[dict[str, Any]]:
    chart = wrapper(tree, app, workdir)
    argv = [str(helm), "template", app["releaseName"], str(chart), "--namespace", app["namespace"]]
    env = {"HOME": str(workdir), **{f"HELM_{k}_HOME": str(workdir / k.lower()) for k in ("CACHE", "CONFIG", "DATA")}}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    if done.returncode:
        raise SystemExit(f"render: helm template {app['name']} (the organization's chart) failed:\n{done.stderr}")
    return [d for d in yaml.safe_load_all(done.stdout) if d]


@functools.cache  # a vendored file, read once (the tests check routes against it again and again)
def crd_schema(kind: str) -> dict[str, Any]:
    text = (gateway.CRD_FOLDER / f"gateway.networking.k8s.io_{CRD_FILES[kind]}.yaml").read_text()
    crd = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return served["schema"]["openAPIV3Schema"]


def route_problems(objects: list[dict[str, Any]], gateway_spec: Mapping[str, Any], schemas: dict) -> list[str]:
    """What the Gateway would not attach or serve, and what its CRDs refuse, one line each."""
    import jsonschema

    found = []
    for obj in (o for o in objects if o.get("kind") in GATEWAY_KINDS):
        meta = obj["metadata"]
        what = f"{meta['namespace']}: {obj['kind']} {meta['name']}"
        if obj["kind"] not in schemas:
            schemas[obj["kind"]] = jsonschema.Draft7Validator(crd_schema(obj["kind"]))
        found += [f"{what}: {e.message}" for e in schemas[obj["kind"]].iter_errors(obj)]
        if obj["kind"] == "BackendTLSPolicy":
            continue
        parents = [(p.get("namespace", meta["namespace"]), p["name"]) for p in obj["spec"].get("parentRefs", [])]
        ours = (gateway_spec["metadata"]["namespace"], gateway_spec["metadata"]["name"])
        if parents != [ours]:
            found.append(f"{what}: names {parents}, not the program's Gateway {ours}")
        route = Route(obj["kind"], meta["namespace"], tuple(obj["spec"].get("hostnames", ())), meta["name"])
        found += [
            f"{what}: the Gateway would not serve {host} with it (no listener for the host admits {route.namespace})"
            for host in route.hostnames
            if route not in serving(gateway_spec, [route], host)
        ]
    return found


def check(helm: Path, gateway_spec: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(violations, lines): each app rendered and its routes checked."""
    violations, lines, schemas = [], [], {}
    with tempfile.TemporaryDirectory(prefix="spitikos-org-") as folder:
        workdir = Path(folder)
        tree = patched_charts(workdir)
        for app in applications(tree):
            objects = render_app(helm, tree, app, workdir)
            problems = route_problems(objects, gateway_spec, schemas)
            violations += [f"charts {app['name']}: {p}" for p in problems]
            kinds = sorted(o["kind"] for o in objects if o.get("kind") in GATEWAY_KINDS)
            lines.append(f"charts {app['name']} (patched): {len(objects)} objects, {', '.join(kinds) or 'no route'}")
    return violations, lines
