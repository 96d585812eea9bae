"""What a visitor of a scaled-to-zero application meets: the organization's charts, patched
(docs/migration/charts-7b7f06e.scale-to-zero.patch, on top of the charts patch and the Gateway's),
route the api and the homepage through KEDA's HTTP interceptor, which holds the request while the
platform's KEDA scales the Deployment from zero, and answers once a pod is ready.

The objects are the real charts' own templates, rendered by tests/gotemplate.py, and each is
checked against its CRD at the pinned version (the add-on's chart and KEDA's, vendored).
docs/decisions/0007-request-based-scale-to-zero.md says why these objects and these numbers.
"""

from __future__ import annotations

import copy
import functools
import itertools
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from gotemplate import render

from components import keda_http, versions
from components.charts import VENDOR

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "spitikos"
SOURCES = yaml.safe_load((FIXTURES / "SOURCES.yaml").read_text())
MIGRATION = ROOT / "docs" / "migration"
# The cutover's order: the charts patch, the Gateway's (0006), then this one (0007).
CHAIN = ("charts-7b7f06e.patch", "charts-7b7f06e.gateway.patch", "charts-7b7f06e.scale-to-zero.patch")
APPS = ("api", "homepage")
CLOUDFLARE_ORIGIN_WAIT_SECONDS = 100  # Cloudflare's wait for an origin's response headers (then 524)


@pytest.fixture(scope="module")
def charts(tmp_path_factory) -> Path:
    tree = tmp_path_factory.mktemp("charts") / "charts"
    shutil.copytree(FIXTURES / "charts", tree)
    subprocess.run(["git", "init", "-q", str(tree)], check=True)
    for patch in CHAIN:
        applied = subprocess.run(
            ["git", "-C", str(tree), "apply", str(MIGRATION / patch)], capture_output=True, text=True
        )
        assert applied.returncode == 0, f"{patch} does not apply on the ones before it: {applied.stderr}"
    return tree


def values(charts: Path, app: str) -> dict:
    return yaml.safe_load((charts / "charts" / app / "values.yaml").read_text())


def rendered(charts: Path, app: str, overrides: dict | None = None) -> dict[str, dict]:
    """The app's scale-to-zero objects by kind, as Argo CD would apply them (release = app name)."""
    chart_values = values(charts, app)
    for key, value in (overrides or {}).items():
        chart_values["scaleToZero"][key] = value
    template = (charts / "charts" / app / "templates" / "scale-to-zero.yaml").read_text()
    text = render(template, chart_values, Release={"Name": app, "Namespace": app})
    return {o["kind"]: o for o in yaml.safe_load_all(text) if o}


@functools.cache
def crd_schema(path: Path, version: str) -> dict:
    """A CRD's openAPIV3Schema for `version`, from a vendored chart's template (its `{{ }}` lines,
    the chart's switches and labels, dropped), with unknown fields refused: the API server prunes
    them, or refuses them under kubectl's strict field validation, and a misspelt key would be lost."""
    text = "\n".join(line for line in path.read_text().splitlines() if "{{" not in line)
    crd = yaml.safe_load(text)
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    return _strict(served["schema"]["openAPIV3Schema"])


def _strict(schema: Any) -> Any:
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema:
            if not schema.get("x-kubernetes-preserve-unknown-fields"):
                schema["additionalProperties"] = False
    elif isinstance(schema, list):
        schema = [_strict(v) for v in schema]
    return schema


INTERCEPTOR_ROUTE = VENDOR / f"keda-add-ons-http-{versions.KEDA_ADD_ONS_HTTP_CHART}" / "templates" / "crds"
SCALED_OBJECT = VENDOR / f"keda-{versions.KEDA_CHART}" / "templates" / "crds" / "crd-scaledobjects.yaml"


def schema_errors(obj: dict, schema: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(obj)]


# --- the patch ---------------------------------------------------------------------------------


def test_the_patch_touches_only_vendored_files_of_the_commit_it_names(charts):
    created = set()  # what the patches before it create (the Gateway's `_route.tpl`)
    for patch in CHAIN[:-1]:
        lines = (MIGRATION / patch).read_text().splitlines()
        created |= {b.removeprefix("+++ b/") for a, b in itertools.pairwise(lines) if a == "--- /dev/null"}
    assert SOURCES["charts"]["commit"].startswith("7b7f06e")
    for line in (MIGRATION / CHAIN[-1]).read_text().splitlines():
        if line.startswith("--- a/"):
            path = line.removeprefix("--- a/")
            assert path in SOURCES["charts"]["paths"] or path in created, f"{path}: not vendored"
    # It replaces the Prometheus-query ScaledObject: nothing left querying the edge's metrics.
    for app in APPS:
        assert "scaledobject" not in values(charts, app), f"{app} keeps a second ScaledObject"


# --- the objects, against the add-on's and KEDA's CRDs at the pinned versions ------------------


@pytest.mark.parametrize("app", APPS)
def test_each_apps_objects_are_valid_for_the_pinned_crds(charts, app):
    objects = rendered(charts, app)
    assert set(objects) == {"InterceptorRoute", "ScaledObject"}
    route, scaled = objects["InterceptorRoute"], objects["ScaledObject"]
    assert route["apiVersion"] == "http.keda.sh/v1beta1" and scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert schema_errors(route, crd_schema(INTERCEPTOR_ROUTE / "crd-interceptorroutes.yaml", "v1beta1")) == []
    assert schema_errors(scaled, crd_schema(SCALED_OBJECT, "v1alpha1")) == []
    # The CRD's CEL rules (x-kubernetes-validations), which a JSON schema cannot say: exactly one of
    # port and portName; at least one scaling metric.
    target = route["spec"]["target"]
    assert ("port" in target) != ("portName" in target)
    assert set(route["spec"]["scalingMetric"]) & {"concurrency", "requestRate"}


def test_the_schema_check_refuses_a_misspelt_or_mistyped_field(charts):
    """The check above can fail: a key the CRD does not know, or a string for a number."""
    objects = rendered(charts, "homepage")
    schema = crd_schema(SCALED_OBJECT, "v1alpha1")
    misspelt = copy.deepcopy(objects["ScaledObject"])
    misspelt["spec"]["scaledownPeriod"] = 900  # the HTTPScaledObject's word, not the ScaledObject's
    assert any("scaledownPeriod" in e for e in schema_errors(misspelt, schema))
    route = copy.deepcopy(objects["InterceptorRoute"])
    route["spec"]["scalingMetric"]["concurrency"]["targetValue"] = "ten"
    assert schema_errors(route, crd_schema(INTERCEPTOR_ROUTE / "crd-interceptorroutes.yaml", "v1beta1"))


def test_no_http_scaled_object_the_platform_would_leave_unscaled(charts):
    """The platform runs no add-on operator, which alone turns an HTTPScaledObject into scaling."""
    assert keda_http.chart_values()["operator"] == {"replicas": 0}
    for app in APPS:
        for template in (charts / "charts" / app / "templates").iterdir():
            assert "HTTPScaledObject" not in template.read_text(), template.name


# --- what a visitor sees -------------------------------------------------------------------------


@pytest.mark.parametrize("app", APPS)
def test_a_request_to_an_idle_app_reaches_the_interceptor_which_wakes_it(stack, charts, app):
    """The visitor's request: the edge's route sends the app's hostnames to the interceptor; the
    interceptor knows them (its InterceptorRoute) and the app's Service; KEDA scales the app's
    Deployment from zero on the interceptor's counts; the platform lets the route cross into
    `keda-http`, and the interceptor reach the app."""
    chart_values = values(charts, app)
    objects = rendered(charts, app)
    route, scaled = objects["InterceptorRoute"], objects["ScaledObject"]
    hostnames = [h for r in chart_values["routes"] for h in r["hostnames"]]
    for r in chart_values["routes"]:
        backend = (r["serviceName"], r["serviceNamespace"], r["servicePort"])
        assert backend == (keda_http.PROXY_SERVICE, keda_http.NAMESPACE, keda_http.PROXY_PORT)
    (rule,) = route["spec"]["rules"]
    assert rule["hosts"] == hostnames, "a hostname the interceptor does not know answers 404"
    assert route["spec"]["target"] == {"service": app, "port": chart_values["service"]["port"]}
    assert scaled["spec"]["scaleTargetRef"] == {"name": f"{app}-deployment"}  # _common's Deployment
    assert scaled["spec"]["minReplicaCount"] == 0, "scaled to zero when idle"
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger == {
        "type": "external-push",
        "metadata": {"scalerAddress": f"{keda_http.SCALER_SERVICE}.{keda_http.NAMESPACE}:{keda_http.SCALER_PORT}",
                     "interceptorRoute": route["metadata"]["name"]},
    }  # fmt: skip
    # The platform's side: the interceptor may forward to the app's namespace.
    (egress,) = [
        p.values["spec"]["egress"]
        for p in stack.kubernetes("NetworkPolicy")
        if p.values["metadata"]["namespace"] == keda_http.NAMESPACE and p.values["spec"]["policyTypes"] == ["Egress"]
    ]
    reachable = {
        v
        for r in egress
        for peer in r.get("to", [])
        for e in peer.get("namespaceSelector", {}).get("matchExpressions", [])
        for v in e["values"]
    }
    assert app in reachable, f"the interceptor may not reach {app}: add it to scaleFromZeroNamespaces"


def test_the_wait_is_bounded_below_cloudflares_and_the_window_fits_a_homelab(stack, charts):
    """A held request answers within the interceptor's bound (then 504), before Cloudflare gives up
    (524); an app goes back to zero a quarter of an hour after its last request, not within
    minutes of a visitor reading a page, nor hours later."""
    (release,) = [r for r in stack.of_type("kubernetes:helm.sh/v3:Release") if r.values["name"] == "keda-add-ons-http"]
    timeout = release.values["values"]["interceptor"]["readinessTimeout"]
    assert timeout == f"{keda_http.READINESS_TIMEOUT_SECONDS}s"
    assert keda_http.READINESS_TIMEOUT_SECONDS < CLOUDFLARE_ORIGIN_WAIT_SECONDS
    for app in APPS:
        scaled = rendered(charts, app)["ScaledObject"]
        assert 600 <= scaled["spec"]["cooldownPeriod"] <= 3600, app
        # No route asks for a longer wait than the platform's bound.
        assert "timeouts" not in rendered(charts, app)["InterceptorRoute"]["spec"]


def test_the_api_keeps_grpc_through_the_interceptor(charts):
    """The interceptor speaks h2c to a port whose appProtocol says so, HTTP/1.1 otherwise (0.15.0):
    the api's gRPC needs it, the homepage does not."""
    assert values(charts, "api")["service"]["appProtocol"] == "kubernetes.io/h2c"
    assert "appProtocol" not in values(charts, "homepage")["service"]
    (route,) = values(charts, "api")["routes"]
    assert route["kind"] == "GRPCRoute"
    service = (charts / "charts" / "_common" / "templates" / "_service.tpl").read_text()
    assert "appProtocol: {{ . }}" in service


def test_minimum_one_turns_the_cold_start_off(charts):
    """The runbook's switch (docs/operations.md, "Scale to zero"): still behind the interceptor,
    never at zero."""
    scaled = rendered(charts, "homepage", {"minReplicas": 1})["ScaledObject"]
    assert scaled["spec"]["minReplicaCount"] == 1
    assert rendered(charts, "homepage", {"enabled": False}) == {}
    # Pruned, the ScaledObject hands the Deployment back at its own replicas, not at zero (Argo CD
    # ignores `spec.replicas` of these Deployments: charts/argocd's ignoreDifferences).
    assert scaled["spec"]["advanced"] == {"restoreToOriginalReplicaCount": True}


def test_argo_cds_deployer_may_apply_and_prune_these_objects(charts):
    """Argo CD applies the charts as the applications' deployer (components/deployers.py): RBAC
    would refuse a kind it holds no rule for, and the sync would fail."""
    from components import deployers

    def holds(group: str, resource: str, verb: str) -> bool:
        return any(
            group in r["apiGroups"] and resource in r["resources"] and ({"*", verb} & set(r["verbs"]))
            for r in deployers.APPS_NAMESPACED_RULES
        )

    kinds = {"InterceptorRoute": ("http.keda.sh", "interceptorroutes"), "ScaledObject": ("keda.sh", "scaledobjects")}
    for app in APPS:
        for kind in rendered(charts, app):
            for verb in ("get", "create", "patch", "delete"):
                assert holds(*kinds[kind], verb), (app, kind, verb)
    assert not holds("http.keda.sh", "httpscaledobjects", "create"), "nothing here would act on one"


def test_the_platform_page_states_the_contract_the_code_keeps():
    """What an application writes to scale from zero (docs/platform.md) is what the platform runs."""
    page = (ROOT / "docs" / "platform.md").read_text()
    (row,) = [line for line in page.splitlines() if line.startswith("| scale from zero |")]
    assert f"`{keda_http.PROXY_SERVICE}` in `{keda_http.NAMESPACE}`, port `{keda_http.PROXY_PORT}`" in row
    assert f"`scalerAddress: {keda_http.SCALER_SERVICE}.{keda_http.NAMESPACE}:{keda_http.SCALER_PORT}`" in row
    assert f"at most {keda_http.READINESS_TIMEOUT_SECONDS} s" in row
