"""`make render`'s logic without Helm: the vendored charts follow the pins, and the checks it runs
on rendered objects (Pod Security, images, memory, NetworkPolicy coverage) catch what they name.
Helm itself runs only in `make render` (about 4 s: too slow for the suite)."""

from __future__ import annotations

import copy

import pytest
import yaml
from conftest import ROOT

from components import charts, gateway, versions
from components.charts import chart_name
from spitikos import chart_checks as checks
from spitikos import render
from spitikos.engine import is_secret, plain
from spitikos.plan import RELEASE, from_recording

# --- the vendored charts ---------------------------------------------------------------------


def test_each_release_has_its_chart_vendored_at_the_pinned_version(stack):
    # Renovate bumps components/versions.py: the copy under charts/vendor/ must follow, or the
    # render would check a chart the cluster does not run.
    wanted = {(chart_name(r.values), r.values["version"]) for r in stack.of_type(RELEASE)}
    assert ("argo-cd", versions.ARGO_CD_CHART) in wanted and ("volsync", versions.VOLSYNC_CHART) in wanted
    assert len(wanted) == 5
    for chart, version in sorted(wanted):
        folder = render.VENDOR / f"{chart}-{version}"
        assert folder.is_dir(), f"{chart} {version} is pinned but not vendored: see charts/vendor/README.md"
        meta = yaml.safe_load((folder / "Chart.yaml").read_text())
        assert (meta["name"], str(meta["version"])) == (chart, version), folder
    stale = {p.name for p in render.VENDOR.iterdir() if p.is_dir()} - {f"{c}-{v}" for c, v in wanted}
    assert not stale, f"vendored charts no release uses (remove them): {sorted(stale)}"


def test_each_vendored_dependency_is_at_the_version_its_chart_lock_names():
    for lock in sorted(render.VENDOR.glob("*/Chart.lock")):
        for dep in yaml.safe_load(lock.read_text())["dependencies"]:
            charts = lock.parent / "charts"
            if (charts / f"{dep['name']}-{dep['version']}.tgz").is_file():
                continue  # as a chart repository packages it (`make vendor-charts`)
            meta = yaml.safe_load((charts / dep["name"] / "Chart.yaml").read_text())
            assert str(meta["version"]) == dep["version"], (lock, dep["name"])


def stub_helm(tmp_path, chart: str):
    """A stand-in for `helm pull --untar`: it writes `chart` at the version it is asked for, and
    logs its argv to $LOG. Returns the stub and the log."""
    helm, log = tmp_path / "helm", tmp_path / "argv"
    helm.write_text(
        "#!/bin/sh\n"
        'echo "$*" >> "$LOG"\n'
        'while [ "$1" != --version ]; do shift; done; version=$2\n'
        'while [ "$1" != --untardir ]; do shift; done\n'
        f'mkdir -p "$2/{chart}" && printf "name: {chart}\\nversion: %s\\n" "$version" > "$2/{chart}/Chart.yaml"\n'
    )
    helm.chmod(0o755)
    return helm, log


def test_vendoring_pulls_each_missing_chart_from_its_repository_pins_it_and_drops_unused_ones(tmp_path, monkeypatch):
    helm, log = stub_helm(tmp_path, "keda")
    vendor = tmp_path / "vendor"
    kept = [
        f"argo-cd-{versions.ARGO_CD_CHART}",
        f"nginx-gateway-fabric-{versions.NGINX_GATEWAY_FABRIC_CHART}",
        f"volsync-{versions.VOLSYNC_CHART}",
        f"keda-add-ons-http-{versions.KEDA_ADD_ONS_HTTP_CHART}",
    ]
    for folder in [*kept, "keda-2.0.0"]:
        (vendor / folder).mkdir(parents=True)
        (vendor / folder / "Chart.yaml").write_text(f"name: {folder}\n")
    charts.pin(vendor=vendor)
    pins_before = charts.read_pins(vendor)
    monkeypatch.setenv("LOG", str(log))
    done = render.vendor(helm, vendor)  # the charts components/versions.py pins
    assert log.read_text().split() == [
        "pull", "keda", "--repo", versions.KEDA_REPO, "--version", versions.KEDA_CHART, "--untar", "--untardir",
        log.read_text().split()[-1],
    ]  # fmt: skip
    assert sorted(p.name for p in vendor.iterdir() if p.is_dir()) == sorted([*kept, f"keda-{versions.KEDA_CHART}"])
    assert render.vendored_version(vendor / f"keda-{versions.KEDA_CHART}") == versions.KEDA_CHART
    assert [line.split(" ", 1)[0] for line in done] == ["vendored", "removed", "pinned", "dropped"]
    assert "keda-2.0.0/" in done[1]
    # The pulled copy is pinned as pulled (its diff is what the pull request reviews); the others keep theirs.
    pins = charts.read_pins(vendor)
    assert pins == {
        **{k: pins_before[k] for k in kept},
        f"keda-{versions.KEDA_CHART}": pins[f"keda-{versions.KEDA_CHART}"],
    }
    assert charts.problems(vendor) == []


def test_a_chart_in_an_oci_registry_is_pulled_by_its_reference():
    helm = render.HELM
    assert render.pull_command(helm, "nginx-gateway-fabric", "2.1.0", "oci://ghcr.io/nginx/charts") == [
        str(helm), "pull", "oci://ghcr.io/nginx/charts/nginx-gateway-fabric", "--version", "2.1.0",
    ]  # fmt: skip


def test_a_chart_from_an_oci_registry_is_pulled_by_its_reference(tmp_path, monkeypatch):
    helm, log = stub_helm(tmp_path, "nginx-gateway-fabric")
    vendor = tmp_path / "vendor"
    for folder in (
        f"argo-cd-{versions.ARGO_CD_CHART}",
        f"keda-{versions.KEDA_CHART}",
        f"volsync-{versions.VOLSYNC_CHART}",
        f"keda-add-ons-http-{versions.KEDA_ADD_ONS_HTTP_CHART}",
    ):
        (vendor / folder).mkdir(parents=True)
    monkeypatch.setenv("LOG", str(log))
    render.vendor(helm, vendor)
    reference = f"{versions.NGINX_GATEWAY_FABRIC_REPO}/nginx-gateway-fabric"
    assert log.read_text().split()[:4] == ["pull", reference, "--version", versions.NGINX_GATEWAY_FABRIC_CHART]
    assert (vendor / f"nginx-gateway-fabric-{versions.NGINX_GATEWAY_FABRIC_CHART}").is_dir()


def test_the_vendored_charts_are_named_in_their_readme_with_their_source():
    readme = (render.VENDOR / "README.md").read_text()
    for folder in sorted(p for p in render.VENDOR.iterdir() if p.is_dir()):
        assert f"`{folder.name}/`" in readme


# --- what reaches Helm ------------------------------------------------------------------------


def test_release_values_reach_helm_with_every_secret_a_placeholder(stack):
    plan = from_recording(stack)
    (argocd,) = [r for r in render.releases(plan) if r.chart == "argo-cd"]
    (reg,) = [r for r in stack.of_type(RELEASE) if chart_name(r.values) == "argo-cd"]
    secrets = [plain(v) for v in _secret_leaves(reg.inputs["values"])]
    assert secrets, "argo-cd's values carry secrets (the admin password, the webhook secrets)"
    text = yaml.safe_dump(argocd.values)
    assert not [s for s in secrets if str(s) in text]
    assert argocd.values["configs"]["secret"]["githubSecret"] == render.SECRET_PLACEHOLDER
    assert argocd.values["controller"]["replicas"] == 1 and isinstance(argocd.values["controller"]["replicas"], int)
    assert argocd.namespace == "argocd" and argocd.vendored == ROOT / "charts/vendor/argo-cd-10.1.1"


def _secret_leaves(value):
    if is_secret(value):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _secret_leaves(v)


def test_namespaces_are_checked_at_the_level_the_program_enforces(stack):
    levels = render.namespace_levels(from_recording(stack))
    assert levels["argocd"] == levels["keda"] == levels["nginx-gateway"] == levels["volsync-system"] == "restricted"
    assert levels["api"] == "baseline"


# --- Pod Security ------------------------------------------------------------------------------


def restricted_context() -> dict:
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": True}


RESTRICTED_POD = {
    "metadata": {"labels": {"app": "x"}},
    "spec": {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "initContainers": [{"name": "init", "image": "i", "securityContext": restricted_context()}],
        "containers": [{"name": "app", "image": "a", "securityContext": restricted_context()}],
        "volumes": [{"name": "tmp", "emptyDir": {}}, {"name": "conf", "configMap": {"name": "c"}}],
    },
}


def pod_with(change) -> dict:
    pod = copy.deepcopy(RESTRICTED_POD)
    change(pod["spec"])
    return pod


def test_a_pod_that_meets_restricted_passes():
    assert checks.pod_security_violations(RESTRICTED_POD, "restricted") == []


def app(spec: dict) -> dict:
    """The securityContext of the pod's first container."""
    return spec["containers"][0]["securityContext"]


def init(spec: dict) -> dict:
    return spec["initContainers"][0]["securityContext"]


BREAKS = {
    "hostNetwork": (lambda s: s.update(hostNetwork=True), "hostNetwork"),
    "hostPID": (lambda s: s.update(hostPID=True), "hostPID"),
    "hostPath": (lambda s: s["volumes"].append({"name": "root", "hostPath": {"path": "/"}}), "hostPath"),
    "privileged": (lambda s: app(s).update(privileged=True), "privileged"),
    "hostPort": (lambda s: s["containers"][0].update(ports=[{"containerPort": 80, "hostPort": 80}]), "hostPort"),
    "SYS_ADMIN": (lambda s: app(s).update(capabilities={"add": ["SYS_ADMIN"]}), "SYS_ADMIN"),
    "seccomp Unconfined": (lambda s: s["securityContext"].update(seccompProfile={"type": "Unconfined"}), "Unconfined"),
    "unsafe sysctl": (lambda s: s["securityContext"].update(sysctls=[{"name": "kernel.msgmax"}]), "sysctl"),
}
RESTRICTED_ONLY = {
    "escalation allowed": (lambda s: app(s).pop("allowPrivilegeEscalation"), "allowPrivilegeEscalation"),
    "root allowed": (lambda s: s["securityContext"].pop("runAsNonRoot"), "runAsNonRoot"),
    "root on one container": (lambda s: init(s).update(runAsNonRoot=False), "container init: runAsNonRoot"),
    "uid 0": (lambda s: app(s).update(runAsUser=0), "runAsUser 0"),
    "no seccomp": (lambda s: s["securityContext"].pop("seccompProfile"), "seccompProfile is unset"),
    "capabilities kept": (lambda s: init(s).pop("capabilities"), "drop ALL"),
    "KILL added": (lambda s: app(s)["capabilities"].update(add=["KILL"]), "KILL"),
    "nfs volume": (lambda s: s["volumes"].append({"name": "n", "nfs": {"server": "s", "path": "/"}}), "type nfs"),
}


@pytest.mark.parametrize("name", sorted(BREAKS))
def test_baseline_and_restricted_both_refuse(name):
    change, says = BREAKS[name]
    for level in ("baseline", "restricted"):
        found = checks.pod_security_violations(pod_with(change), level)
        assert any(says in v for v in found), (level, found)
    assert checks.pod_security_violations(pod_with(change), "privileged") == []


@pytest.mark.parametrize("name", sorted(RESTRICTED_ONLY))
def test_restricted_refuses_what_baseline_admits(name):
    change, says = RESTRICTED_ONLY[name]
    assert any(says in v for v in checks.pod_security_violations(pod_with(change), "restricted"))
    assert checks.pod_security_violations(pod_with(change), "baseline") == []


def test_restricted_admits_net_bind_service_and_a_container_level_profile():
    def change(spec):
        spec["securityContext"] = {}
        for c in spec["initContainers"] + spec["containers"]:
            localhost = {"type": "Localhost", "localhostProfile": "p"}
            c["securityContext"] |= {"runAsNonRoot": True, "seccompProfile": localhost}
        spec["containers"][0]["securityContext"]["capabilities"]["add"] = ["NET_BIND_SERVICE"]

    assert checks.pod_security_violations(pod_with(change), "restricted") == []


def test_an_unknown_level_is_an_error_not_a_pass():
    with pytest.raises(ValueError, match="Restricted"):
        checks.pod_security_violations(RESTRICTED_POD, "Restricted")


def test_pod_templates_are_found_in_every_workload_kind():
    spec = {"containers": [{"name": "a"}]}
    assert checks.pod_template({"kind": "Deployment", "spec": {"template": {"spec": spec}}}) == {"spec": spec}
    assert checks.pod_template({"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}})
    assert checks.pod_template({"kind": "Pod", "spec": spec}) == {"kind": "Pod", "spec": spec}
    assert checks.pod_template({"kind": "Service", "spec": {}}) is None


# --- images, memory ----------------------------------------------------------------------------


def test_only_the_pinned_images_run_where_the_program_pins_them():
    pinned = (versions.KEDA_IMAGE, versions.KEDA_WEBHOOKS_IMAGE)
    assert checks.image_violations([versions.KEDA_IMAGE, versions.KEDA_IMAGE], pinned) == []
    (found,) = checks.image_violations(["ghcr.io/kedacore/keda:2.20.2"], pinned)
    assert "is not one the program pins" in found
    assert checks.image_violations(["registry.k8s.io/x:v1@sha256:ab"], ()) == []
    (found,) = checks.image_violations(["quay.io/backube/volsync:0.16.0"], ())
    assert "by tag" in found
    assert checks.image_violations(["quay.io/backube/volsync:0.16.0"], (), require_digest=False) == []


def test_each_chart_the_program_pins_images_for_is_checked_against_those_pins():
    assert set(render.PINNED_IMAGES["argo-cd"]) == {versions.ARGO_CD_IMAGE, versions.ARGO_CD_REDIS_IMAGE}
    assert len(render.PINNED_IMAGES["keda"]) == 3
    # NGF's images run by tag until their digests can be read (components/versions.py).
    assert render.DIGEST_REQUIRED["nginx-gateway-fabric"] is False


def test_memory_requests_count_every_container_and_replica():
    def sized(name, memory):
        return {"name": name, "resources": {"requests": {"memory": memory}}}

    spec = {"initContainers": [sized("copy", "16Mi")], "containers": [sized("app", "96Mi"), {"name": "side"}]}
    deployment = {"kind": "Deployment", "spec": {"replicas": 2, "template": {"spec": spec}}}
    assert checks.memory_requests_mi(deployment) == 224
    assert checks.memory_requests_mi({"kind": "Job", "spec": {"template": {"spec": spec}}}) == 112
    assert checks.memory_requests_mi({"kind": "ConfigMap"}) == 0
    assert checks.unsized_containers(spec) == ["side"]


# --- NetworkPolicies ---------------------------------------------------------------------------


def test_label_selectors_select_as_the_api_server_does():
    labels = {"app.kubernetes.io/name": "argocd-server", "tier": "web"}
    assert checks.selects({}, labels) and checks.selects(None, labels)
    assert checks.selects({"matchLabels": {"tier": "web"}}, labels)
    assert not checks.selects({"matchLabels": {"tier": "db"}}, labels)
    assert checks.selects({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]}, labels)
    assert not checks.selects({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]}, labels)
    assert not checks.selects({"matchExpressions": [{"key": "x", "operator": "Exists"}]}, labels)
    assert checks.selects({"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]}, labels)


def test_a_pod_is_uncovered_in_each_direction_no_policy_of_its_namespace_selects_it():
    ingress = {"metadata": {"namespace": "a"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
    egress = {"metadata": {"namespace": "a"}, "spec": {"podSelector": {"matchLabels": {"app": "x"}}, "egress": []}}
    assert checks.uncovered("a", {"app": "x"}, [ingress, egress]) == []
    assert checks.uncovered("a", {"app": "y"}, [ingress, egress]) == ["Egress"]
    assert checks.uncovered("b", {"app": "x"}, [ingress, egress]) == ["Egress", "Ingress"]


def test_check_release_reports_each_violation_of_a_rendered_pod(stack):
    plan = from_recording(stack)
    release = render.Release(
        "spitikos-keda-release", "keda", "keda", versions.KEDA_CHART, "keda", {}, render.VENDOR / "keda-2.20.2"
    )
    bare = {"name": "keda-operator", "image": "ghcr.io/kedacore/keda:2.20.2"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "keda-operator", "namespace": "keda"},
        "spec": {
            "selector": {"matchLabels": {"app": "keda"}},
            "template": {"metadata": {"labels": {"app": "keda"}}, "spec": {"containers": [bare]}},
        },
    }
    stray = copy.deepcopy(deployment) | {"metadata": {"name": "stray", "namespace": "elsewhere"}}
    wrong = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"prot": [1]}}
    custom = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "o"}}
    objects = [deployment, stray, wrong, {"apiVersion": "v1", "kind": "Nope"}, custom]
    report = render.check_release(release, objects, plan, "1.35")
    text = "\n".join(report.violations)
    assert "keda: Deployment keda-operator: Pod Security restricted: container keda-operator: runAsNonRoot" in text
    assert "Deployment stray: no NetworkPolicy of the program's selects its pods for Egress in elsewhere" in text
    assert "Deployment keda-operator: no NetworkPolicy" not in text  # keda's policies select every pod
    assert "is not one the program pins" in text and "requests no memory" in text
    assert "keda: Service s: not valid for Kubernetes 1.35: " in text
    assert "keda: Nope None: not valid for Kubernetes 1.35: v1/Nope is no kind of Kubernetes 1.35" in text
    assert "keda: ScaledObject o: keda.sh/v1alpha1/ScaledObject is a custom resource: no schema checked" in report.notes
    assert "the footprint counts" not in text
    bare["resources"] = {"requests": {"memory": "1Gi"}}  # more than the 160Mi keda's values claim
    (found,) = [v for v in render.check_release(release, [deployment], plan, "1.35").violations if "footprint" in v]
    assert found == "keda: rendered pods request 1024Mi of memory; the footprint counts 160Mi"


def test_a_program_policy_for_pods_no_chart_renders_is_reported(stack):
    plan = from_recording(stack)
    # The NGINX pod NGF provisions for the Gateway is no chart's: the program's pods count it.
    assert ("nginx-gateway", gateway.DATA_PLANE_POD) in render.program_pods(plan)
    found = sorted(render.unused_policies(plan, render.program_pods(plan)))  # registration order varies
    assert found == [
        "NetworkPolicy argocd/argocd-server-from-gateway selects none of the pods",
        "NetworkPolicy nginx-gateway/control-plane-from-nginx selects none of the pods",
    ]
    server = ("argocd", {"app.kubernetes.io/instance": "argocd", "app.kubernetes.io/name": "argocd-server"})
    control = (
        "nginx-gateway",
        {"app.kubernetes.io/instance": "nginx-gateway", "app.kubernetes.io/name": "nginx-gateway"},
    )
    assert render.unused_policies(plan, [*render.program_pods(plan), server, control]) == []


def test_the_organizations_routes_are_checked_against_the_crds_and_the_gateway(stack):
    """`make render` renders each app of the patched charts with Helm (spitikos/org_render.py);
    what it checks in each route, on hand-written ones."""
    from spitikos import org_render

    spec = stack.one("kubernetes:gateway.networking.k8s.io/v1:Gateway", "spitikos-edge-gateway").values

    def route(namespace: str, host: str, **spec_extra) -> dict:
        parent = {"name": "spitikos", "namespace": "nginx-gateway"}
        body = {"parentRefs": [parent], "hostnames": [host], "rules": [{"backendRefs": [{"name": "s", "port": 80}]}]}
        meta = {"name": "r", "namespace": namespace}
        return {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": meta,
            "spec": body | spec_extra,
        }

    assert org_render.route_problems([route("vault", "vault.taehoonlee.cloud")], spec, {}) == []
    (found,) = org_render.route_problems([route("homepage", "vault.taehoonlee.cloud")], spec, {})
    assert found.endswith("would not serve vault.taehoonlee.cloud with it (no listener for the host admits homepage)")
    (found,) = org_render.route_problems(
        [route("vault", "vault.taehoonlee.cloud", parentRefs=[{"name": "x"}])], spec, {}
    )
    assert "not the program's Gateway" in found
    broken = route("vault", "vault.taehoonlee.cloud", rules=[{"backendRefs": [{"port": 80}]}])  # no name
    assert any("'name' is a required property" in p for p in org_render.route_problems([broken], spec, {}))


def test_a_custom_resource_is_checked_against_the_crd_its_chart_renders_or_the_programs(stack):
    """A chart that renders a CRD with `--include-crds` (NGF's NginxProxy, KEDA's, Argo CD's) has its
    own custom resources checked against it; the Gateway API's kinds against the vendored CRDs."""
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "things.example.org"},
        "spec": {
            "group": "example.org",
            "names": {"kind": "Thing", "plural": "things"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer"}}}},
                        }
                    },
                }
            ],
        },
    }
    thing = {"apiVersion": "example.org/v1", "kind": "Thing", "metadata": {"name": "t"}, "spec": {"size": "big"}}
    release = render.Release("spitikos-keda-release", "x", "keda", "2.20.2", "keda", {}, render.VENDOR / "keda-2.20.2")
    report = render.check_release(release, [crd, thing], from_recording(stack), "1.35")
    assert "x: Thing t: not valid for its CRD: 'big' is not of type 'integer'" in report.violations
    gateway_class = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GatewayClass",
        "metadata": {"name": "nginx"},
        "spec": {},  # no controllerName
    }
    report = render.check_release(release, [gateway_class], from_recording(stack), "1.35")
    assert any(
        "GatewayClass nginx: not valid for its CRD: 'controllerName' is a required property" in v
        for v in report.violations
    )
