"""The organization's side of every contract: docs/migration/*.patch applied to the real files.

tests/fixtures/spitikos/<repo>/ holds, unmodified, the organization's files the patches touch
or these tests read (SOURCES.yaml: repository, commit, path). Each patch is applied once per
module with `git apply`, and the result is held against what the program (the pi5 stack)
creates. Helm is not installed: the root chart's Applications are rendered by tests/gotemplate.py
(the template's own subset of Go templates); the other charts are read as values, and the
`_common` templates only checked to consume the values read.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from fnmatch import fnmatchcase
from pathlib import Path

import pytest
import yaml
from conftest import ROOT
from gotemplate import render
from test_guard import admit, denying_policies
from test_stack import permits_cluster_object, permits_namespace, projects

from components import argocd, gateway, k3s
from components.github import DOCS_SYNC_ENVIRONMENT, DOCS_SYNC_TOKEN, DOCS_SYNC_URL_VARIABLE, RELEASE_ENVIRONMENT
from components.guard import ENFORCE_LABEL
from components.platform import DOCS_SYNC_PATH
from spitikos.engine import mock_zone_id
from spitikos.gateway_api import Route, serving

FIXTURES = ROOT / "tests" / "fixtures" / "spitikos"
SOURCES = yaml.safe_load((FIXTURES / "SOURCES.yaml").read_text())
# `<repo>-<commit>.patch`, then its later steps `<repo>-<commit>.<step>.patch` (the Gateway's, then
# scale to zero's), each applying on top of the ones before it.
PATCHES = sorted((ROOT / "docs" / "migration").glob("*.patch"), key=lambda p: (p.name.count("."), p.name))
ROOT_CHART = "charts/argocd"
ENV_SECRET = "spitikos-api-env"
VARIABLE = "github:index/actionsVariable:ActionsVariable"
ACTIONS_SECRET = "github:index/actionsEnvironmentSecret:ActionsEnvironmentSecret"
RELEASE_WORKFLOW = ".github/workflows/release.yaml"
RELEASE_PUSH_JOB = "update-and-commit-charts"

# What each real app installs cluster-wide, at the versions its Chart.yaml pins at charts 7b7f06e
# (read in each upstream chart's templates/ and crds/): Argo CD checks each against the project.
REAL_APP_CLUSTER_OBJECTS = {
    "api": [("", "Namespace", "api")],
    "homepage": [("", "Namespace", "homepage")],
    "vault": [  # hashicorp/vault 0.30.1: injector RBAC and webhook, server auth delegator
        ("", "Namespace", "vault"),
        ("rbac.authorization.k8s.io", "ClusterRole", "vault-agent-injector-clusterrole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding", "vault-agent-injector-binding"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding", "vault-server-binding"),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration", "vault-agent-injector-cfg"),
    ],
    "kubernetes-dashboard": [  # kubernetes-dashboard 7.13.0 (+ its kong subchart's CRDs), admin-user.yaml (patched)
        ("", "Namespace", "kubernetes-dashboard"),
        ("apiextensions.k8s.io", "CustomResourceDefinition", "kongplugins.configuration.konghq.com"),
        ("apiextensions.k8s.io", "CustomResourceDefinition", "kongclusterplugins.configuration.konghq.com"),
        ("rbac.authorization.k8s.io", "ClusterRole", "kubernetes-dashboard-metrics-scraper"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding", "kubernetes-dashboard-metrics-scraper"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding", "admin-user-view"),
    ],
    "kube-prometheus-stack": [  # kube-prometheus-stack 75.18.1 with grafana, kube-state-metrics
        ("", "Namespace", "monitoring"),
        ("apiextensions.k8s.io", "CustomResourceDefinition", "prometheuses.monitoring.coreos.com"),
        ("apiextensions.k8s.io", "CustomResourceDefinition", "servicemonitors.monitoring.coreos.com"),
        ("rbac.authorization.k8s.io", "ClusterRole", "kube-prometheus-stack-operator"),
        ("rbac.authorization.k8s.io", "ClusterRole", "kube-prometheus-stack-prometheus"),
        ("rbac.authorization.k8s.io", "ClusterRole", "kube-prometheus-stack-kube-state-metrics"),
        ("rbac.authorization.k8s.io", "ClusterRole", "kube-prometheus-stack-grafana-clusterrole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding", "kube-prometheus-stack-operator"),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration", "kube-prometheus-stack-admission"),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration", "kube-prometheus-stack-admission"),
    ],
}
KUBE_SYSTEM_EXPORTERS = ["kubeControllerManager", "kubeScheduler", "kubeEtcd", "kubeProxy", "coreDns"]


def patch_target(patch: Path) -> tuple[str, str]:
    """`charts-7b7f06e.patch` and `charts-7b7f06e.gateway.patch` -> ("charts", "7b7f06e")."""
    repo, commit = patch.name.split(".", 1)[0].rsplit("-", 1)
    return repo, commit


def vendored(repo: str, tmp: Path) -> Path:
    """A copy of the repository's vendored files, as a checkout of its commit would have them."""
    tree = tmp / repo
    shutil.copytree(FIXTURES / repo, tree)
    return tree


@pytest.fixture(scope="module")
def original() -> dict[str, Path]:
    return {repo: FIXTURES / repo for repo in SOURCES}


@pytest.fixture(scope="module")
def patched(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("org")
    trees = {repo: vendored(repo, tmp) for repo in SOURCES}
    for patch in PATCHES:
        repo, _ = patch_target(patch)
        subprocess.run(["git", "init", "-q", str(trees[repo])], check=True)
        applied = subprocess.run(["git", "-C", str(trees[repo]), "apply", str(patch)], capture_output=True, text=True)
        assert applied.returncode == 0, f"{patch.name} does not apply: {applied.stderr}"
    return trees


def read_yaml(tree: Path, path: str):
    return yaml.safe_load((tree / path).read_text())


def applications(charts: Path) -> list[dict]:
    """The Applications the root chart renders from its own values."""
    template = (charts / ROOT_CHART / "templates" / "applications.yaml").read_text()
    values = read_yaml(charts, f"{ROOT_CHART}/values.yaml")
    return [doc for doc in yaml.safe_load_all(render(template, values)) if doc]


def app_routes(charts: Path, app: dict) -> list[Route]:
    """The routes an Application's chart makes (`routes` in its values, _common's _route.tpl), in
    the namespace it deploys to."""
    values = read_yaml(charts, f"{app['spec']['source']['path']}/values.yaml")
    namespace = app["spec"]["destination"]["namespace"]
    return [
        Route(r.get("kind", "HTTPRoute"), namespace, tuple(r["hostnames"]), app["metadata"]["name"])
        for r in values.get("routes") or []
    ]


def nested_ingresses(values, path: str = "") -> list[str]:
    """Every `ingress` block switched on anywhere in a chart's values (a subchart's own Ingress)."""
    found = []
    if isinstance(values, dict):
        block = values.get("ingress")
        if isinstance(block, dict) and (block.get("enabled", True) or block.get("hosts")):
            found.append(f"{path}ingress")
        for key, value in values.items():
            found += nested_ingresses(value, f"{path}{key}.") if key != "ingress" else []
    return found


# --- the patches and their sources ------------------------------------------------------------


def test_each_patch_is_made_against_its_vendored_commit_and_touches_only_vendored_files(patched):
    assert {patch_target(p)[0] for p in PATCHES} == {"charts", "api", "docs"}
    made: dict[str, set[str]] = {repo: set() for repo in SOURCES}  # files an earlier patch creates
    for patch in PATCHES:
        repo, commit = patch_target(patch)
        assert SOURCES[repo]["commit"].startswith(commit), f"{patch.name} names another commit than SOURCES.yaml"
        text = patch.read_text()
        for old, new in re.findall(r"^--- (\S+)\n\+\+\+ (\S+)$", text, re.MULTILINE):
            if old != "/dev/null":  # a changed or deleted file must be the vendored one, or an earlier patch's
                known = {*SOURCES[repo]["paths"], *made[repo]}
                assert old.removeprefix("a/") in known, f"{patch.name}: {old} is not vendored"
            else:
                made[repo].add(new.removeprefix("b/"))


def test_every_vendored_file_is_listed_with_its_commit_and_nothing_else_is_there():
    for repo, source in SOURCES.items():
        assert re.fullmatch(r"[0-9a-f]{40}", source["commit"]) and source["url"].endswith(f"/spitikos/{repo}.git")
        files = {p.relative_to(FIXTURES / repo).as_posix() for p in (FIXTURES / repo).rglob("*") if p.is_file()}
        assert files == set(source["paths"]), repo


# --- charts: the root's Applications, admitted by the program's projects --------------------


def test_the_root_renders_only_applications_the_programs_projects_admit(stack, patched, original):
    apps = applications(patched["charts"])
    names = [a["metadata"]["name"] for a in apps]
    assert names == ["api", "homepage", "vault", "kubernetes-dashboard", "kube-prometheus-stack"]
    program = projects(stack)
    root, project = program[argocd.ROOT_PROJECT], program[argocd.APPS_PROJECT]
    for app in apps:
        # The root's project: Applications, in argocd, and nothing else.
        assert app["apiVersion"] == "argoproj.io/v1alpha1" and app["kind"] == "Application"
        assert {"group": "argoproj.io", "kind": "Application"} in root["namespaceResourceWhitelist"]
        assert permits_namespace(root, app["metadata"]["namespace"])
        # Argo CD's own finalizer: a pruned Application deletes its resources instead of hanging.
        assert app["metadata"]["finalizers"] == ["resources-finalizer.argocd.argoproj.io"]
        # The apps' project: the one the program narrows, and it admits where the app goes.
        spec = app["spec"]
        assert spec["project"] == argocd.APPS_PROJECT
        assert spec["destination"]["server"] == argocd.IN_CLUSTER
        assert permits_namespace(project, spec["destination"]["namespace"]), app["metadata"]["name"]
        assert any(fnmatchcase(spec["source"]["repoURL"], repo) for repo in project["sourceRepos"])
    # The root's own Ingress (for Argo CD, which Pulumi serves) is gone with its template.
    assert not (patched["charts"] / ROOT_CHART / "templates" / "common.yaml").exists()
    assert "ingress" not in read_yaml(patched["charts"], f"{ROOT_CHART}/values.yaml")
    # Unpatched, the root would deploy what Pulumi owns now, which the project refuses.
    before = {a["metadata"]["name"]: a["spec"]["destination"]["namespace"] for a in applications(original["charts"])}
    for name in ("keda", "redis"):
        assert not permits_namespace(project, before[name])
    # ingress-nginx is no one's now: the Gateway replaces it (docs/migration/gateway-cutover.md).
    assert "ingress-nginx" in before and "ingress-nginx" not in names


def test_the_project_is_one_value_of_the_root_chart(patched):
    values = read_yaml(patched["charts"], f"{ROOT_CHART}/values.yaml")
    assert values["project"] == argocd.APPS_PROJECT
    moved = {**values, "project": "apps"}
    template = (patched["charts"] / ROOT_CHART / "templates" / "applications.yaml").read_text()
    rendered = [d for d in yaml.safe_load_all(render(template, moved)) if d]
    assert {a["spec"]["project"] for a in rendered} == {"apps"}


def test_what_each_real_app_installs_cluster_wide_is_admitted(stack, patched):
    project = projects(stack)[argocd.APPS_PROJECT]
    apps = {a["metadata"]["name"]: a for a in applications(patched["charts"])}
    assert set(REAL_APP_CLUSTER_OBJECTS) == set(apps), "list what a new app installs cluster-wide"
    for name, objects in REAL_APP_CLUSTER_OBJECTS.items():
        assert ("", "Namespace", apps[name]["spec"]["destination"]["namespace"]) in objects
        for group, kind, object_name in objects:
            assert permits_cluster_object(project, group, kind, object_name), f"{name}: {kind} {object_name}"


def test_kube_prometheus_stack_puts_nothing_in_kube_system_and_its_switches_reach_the_subchart(stack, patched):
    values = read_yaml(patched["charts"], "charts/kube-prometheus-stack/values.yaml")
    # A wrapper chart passes a dependency only what sits under the dependency's name.
    assert set(values) == {"kube-prometheus-stack", "routes"}
    for exporter in KUBE_SYSTEM_EXPORTERS:
        assert values["kube-prometheus-stack"][exporter]["enabled"] is False, exporter
    assert not permits_namespace(projects(stack)[argocd.APPS_PROJECT], "kube-system")


# --- Pod Security: each app's namespace gets the level its pods need --------------------------

# The level each real app's pods need, read in its chart and the upstream charts at the versions
# charts 7b7f06e pins (docs/migration/README.md, "Pod Security of the apps").
POD_SECURITY = {
    "api": "baseline",  # _common's Deployment; Vault's injected agent (vault-k8s 1.7.0) drops ALL, non-root
    "homepage": "baseline",  # _common's Deployment: no securityContext, host namespace or volume
    "vault": "baseline",  # vault 0.30.1: uid 100, no capability added (the chart sets disable_mlock)
    "kubernetes-dashboard": "baseline",  # 7.13.0, kong 2.46.0: non-root, drop ALL, no host access
    "kube-prometheus-stack": "privileged",  # prometheus-node-exporter 4.47.3: hostNetwork, hostPID, hostPath
}
# Upstream switches that start pods with host access, with their defaults at the pinned versions.
HOST_ACCESS_SWITCHES = {
    "kube-prometheus-stack": [("kube-prometheus-stack.nodeExporter.enabled", True)],  # node exporter
    "vault": [("vault.csi.enabled", False)],  # vault-csi-provider: hostPath to the CSI driver's sockets
}
# Baseline's capabilities (Pod Security Standards): anything else added needs `privileged`.
BASELINE_CAPABILITIES = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD"}
BASELINE_CAPABILITIES |= {"NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}


def beyond_baseline(values, path: str = "") -> list[str]:
    """Where a chart's values ask for what baseline refuses: host namespaces, ports or paths, a
    privileged container, a capability outside baseline's list."""
    found: list[str] = []
    if isinstance(values, dict):
        for key, value in values.items():
            at = f"{path}.{key}" if path else str(key)
            if key in ("hostNetwork", "hostPID", "hostIPC", "privileged") and value is True:
                found.append(at)
            elif key in ("hostPath", "hostPort") and value:
                found.append(at)
            elif key == "capabilities" and isinstance(value, dict):
                found += [f"{at}.add: {c}" for c in value.get("add") or [] if c not in BASELINE_CAPABILITIES]
            else:
                found += beyond_baseline(value, at)
    elif isinstance(values, list):
        for i, item in enumerate(values):
            found += beyond_baseline(item, f"{path}[{i}]")
    return found


def switched_on(values, path: str, default: bool) -> bool:
    """A dotted path's value in a chart's values, or the upstream default where they leave it out."""
    for key in path.split("."):
        if not isinstance(values, dict) or key not in values:
            return default
        values = values[key]
    return bool(values)


def needed_level(charts: Path, app: dict) -> str:
    values = read_yaml(charts, f"{app['spec']['source']['path']}/values.yaml")
    host_access = beyond_baseline(values) or [
        path
        for path, default in HOST_ACCESS_SWITCHES.get(app["metadata"]["name"], [])
        if switched_on(values, path, default)
    ]
    return "privileged" if host_access else "baseline"


def namespace_labels(app: dict) -> dict[str, str]:
    """What Argo CD puts on the destination namespace (Argo CD v3.4 sync-options.md, "Namespace
    Metadata": spec.syncPolicy.managedNamespaceMetadata, only with CreateNamespace=true)."""
    policy = app["spec"]["syncPolicy"]
    if "CreateNamespace=true" not in policy.get("syncOptions", []):
        return {}
    return (policy.get("managedNamespaceMetadata") or {}).get("labels") or {}


def applied_namespace(app: dict) -> dict:
    """The Namespace Argo CD's controller applies for an Application's managedNamespaceMetadata (the
    API server adds the name label; Argo CD, its server-side-apply annotation: controller/sync_namespace.go)."""
    name = app["spec"]["destination"]["namespace"]
    metadata = app["spec"]["syncPolicy"]["managedNamespaceMetadata"]
    labels = {"kubernetes.io/metadata.name": name, **metadata.get("labels", {})}
    annotations = {**metadata.get("annotations", {}), "argocd.argoproj.io/sync-options": "ServerSideApply=true"}
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
    }


def pi5_privileged_namespaces() -> list[str]:
    return yaml.safe_load((ROOT / "Pulumi.pi5.yaml").read_text())["config"]["spitikos:privilegedNamespaces"]


def test_each_apps_namespace_enforces_the_pod_security_level_its_pods_need(stack, patched):
    apps = {a["metadata"]["name"]: a for a in applications(patched["charts"])}
    assert set(POD_SECURITY) == set(apps), "find what Pod Security level a new app's pods need"
    default = json.loads(k3s.pod_security_config())["plugins"][0]["configuration"]["defaults"]["enforce"]
    # The program's namespaces that set a level (a patch that only makes sure Vault's exists, for its
    # backups, sets none: the default or Argo CD's label applies there).
    program = {
        r.values["metadata"]["name"]: r.values["metadata"]["labels"][ENFORCE_LABEL]
        for r in stack.kubernetes("Namespace")
        if ENFORCE_LABEL in r.values["metadata"].get("labels", {})
    }
    for name, app in apps.items():
        assert needed_level(patched["charts"], app) == POD_SECURITY[name], name
        namespace = app["spec"]["destination"]["namespace"]
        labels = namespace_labels(app)
        if namespace in program:  # the program's namespace (api): its label, which Argo CD must not fight
            assert "managedNamespaceMetadata" not in app["spec"]["syncPolicy"], name
        enforced = labels.get(ENFORCE_LABEL) or program.get(namespace) or default
        assert enforced == POD_SECURITY[name], f"{name}: namespace {namespace} enforces {enforced}"
    # Unpatched, nothing labels monitoring: the node exporter would be refused under the default.
    assert default == "baseline"
    assert "managedNamespaceMetadata" not in str(read_yaml(FIXTURES / "charts", f"{ROOT_CHART}/values.yaml"))


def test_the_beyond_baseline_check_sees_host_access_in_values(patched, tmp_path):
    """The check above fails when an app's values turn host access on."""
    assert beyond_baseline({"a": {"hostNetwork": True, "capabilities": {"add": ["IPC_LOCK", "CHOWN"]}}}) == [
        "a.hostNetwork",
        "a.capabilities.add: IPC_LOCK",
    ]
    assert beyond_baseline({"volumes": [{"hostPath": {"path": "/"}}], "hostPort": 0, "hostPID": False}) == [
        "volumes[0].hostPath"
    ]
    vault = {"spec": {"source": {"path": "charts/vault"}}, "metadata": {"name": "vault"}}
    values = read_yaml(patched["charts"], "charts/vault/values.yaml")
    assert not switched_on(values, "vault.csi.enabled", False)
    values["vault"]["csi"] = {"enabled": True}
    (tmp_path / "charts/vault").mkdir(parents=True)
    (tmp_path / "charts/vault/values.yaml").write_text(yaml.safe_dump(values))
    assert needed_level(tmp_path, vault) == "privileged"


def test_argocd_may_label_privileged_exactly_the_namespaces_pi5_lists(stack, fresh, patched):
    apps = applications(patched["charts"])
    labelling = [a for a in apps if "managedNamespaceMetadata" in a["spec"]["syncPolicy"]]
    privileged = {
        a["spec"]["destination"]["namespace"]
        for a in labelling
        if namespace_labels(a).get(ENFORCE_LABEL) == "privileged"
    }
    assert privileged == {"monitoring"} and privileged <= set(pi5_privileged_namespaces())
    policies = denying_policies(stack)
    for app in labelling:
        # Argo CD ignores managedNamespaceMetadata without CreateNamespace=true.
        assert "CreateNamespace=true" in app["spec"]["syncPolicy"]["syncOptions"]
        namespace = applied_namespace(app)
        for operation in ("CREATE", "UPDATE"):  # a new namespace, or the one the hand-made root made
            assert admit(policies, namespace, operation=operation).allowed, app["metadata"]["name"]
        if namespace["metadata"]["name"] in privileged:
            # A stack that lists nothing refuses the same request.
            assert not admit(denying_policies(fresh), namespace).allowed


def test_an_application_labelling_an_unlisted_namespace_privileged_is_refused(stack, patched):
    values = read_yaml(patched["charts"], f"{ROOT_CHART}/values.yaml")
    vault = next(a for a in values["applications"] if a["name"] == "vault")
    assert vault["namespace"] not in pi5_privileged_namespaces()
    vault["managedNamespaceMetadata"] = {"labels": {ENFORCE_LABEL: "privileged"}}
    template = (patched["charts"] / ROOT_CHART / "templates" / "applications.yaml").read_text()
    rendered = [d for d in yaml.safe_load_all(render(template, values)) if d]
    app = next(a for a in rendered if a["metadata"]["name"] == "vault")
    verdict = admit(denying_policies(stack), applied_namespace(app), operation="UPDATE")
    assert not verdict.allowed and "privilegedNamespaces" in verdict.message


# --- KEDA's query has data: Prometheus scrapes the platform's NGINX ----------------------------


def test_prometheus_scrapes_the_gateways_nginx_and_keda_queries_a_metric_it_exports(stack, patched):
    apps = {a["metadata"]["name"]: a for a in applications(patched["charts"])}
    monitoring = apps["kube-prometheus-stack"]["spec"]
    namespace, release = monitoring["destination"]["namespace"], monitoring["source"]["helm"]["releaseName"]
    folder = patched["charts"] / "charts/kube-prometheus-stack/templates"
    assert not (folder / "ingress-nginx-servicemonitor.yaml").exists(), "ingress-nginx is gone"
    template = folder / "nginx-gateway-podmonitor.yaml"
    monitor = yaml.safe_load(render(template.read_text(), {}, Release={"Name": release, "Namespace": namespace}))
    assert monitor["kind"] == "PodMonitor" and monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["namespace"] == namespace
    # kube-prometheus-stack's Prometheus selects PodMonitors labelled with its release.
    assert monitor["metadata"]["labels"]["release"] == release
    # The NGINX pods NGF provisions for the program's Gateway: their labels and the container
    # port NGF names `metrics` (provisioner/objects.go, buildContainerPortsAndAnnotations).
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [gateway.NAMESPACE]}
    assert monitor["spec"]["selector"]["matchLabels"].items() <= gateway.DATA_PLANE_POD.items()
    assert [e["port"] for e in monitor["spec"]["podMetricsEndpoints"]] == ["metrics"]
    # The metric KEDA asks for between the Gateway's patch and scale to zero's: NGF's NGINX (OSS)
    # exports `nginx_http_requests_total`, the whole NGINX's count (docs.nginx.com, NGF "Monitoring
    # with Prometheus"); no per-route counter. Scale to zero's patch then replaces both queries
    # (tests/test_scale_to_zero.py), so the Gateway's step is read in its own patch.
    step = (ROOT / "docs" / "migration" / "charts-7b7f06e.gateway.patch").read_text()
    for app in ("api", "homepage"):
        values = step.split(f"diff --git a/charts/{app}/values.yaml")[1].split("diff --git")[0]
        assert "+    query: 'sum(rate(nginx_http_requests_total{namespace=\"nginx-gateway\"}[2m]))'" in values, app
        assert "nginx_ingress_controller" not in read_yaml(patched["charts"], f"charts/{app}/values.yaml").__repr__()
    # The platform's NetworkPolicy admits exactly that namespace's pods to NGINX's metrics port.
    policy = stack.one("kubernetes:networking.k8s.io/v1:NetworkPolicy", "spitikos-edge-nginx-network-policy")
    assert policy.values["spec"]["podSelector"] == {"matchLabels": gateway.DATA_PLANE_POD}
    metrics = [r for r in policy.values["spec"]["ingress"] if {"protocol": "TCP", "port": 9113} in r["ports"]]
    assert gateway.METRICS_PORT == 9113 and gateway.METRICS_CLIENT_NAMESPACE == namespace
    assert [r["from"] for r in metrics] == [
        [
            {
                "namespaceSelector": {
                    "matchExpressions": [
                        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": [namespace]}
                    ]
                }
            }
        ]
    ]


# --- the api: platform-env reaches its config --------------------------------------------------


def bound_env(api: Path) -> dict[str, str]:
    """The api's viper bindings: config key -> environment variable (internal/config/config.go)."""
    source = (api / "internal/config/config.go").read_text()
    block = source.split("var envs = map[string]string{", 1)[1].split("}", 1)[0]
    return dict(re.findall(r'"([\w.]+)":\s*"(\w+)"', block))


def test_the_api_gets_its_platform_env_keys_and_binds_each_to_its_config(stack, patched):
    platform_env = stack.one("kubernetes:core/v1:Secret", ENV_SECRET).values
    api = read_yaml(patched["charts"], "charts/api/values.yaml")
    wired = {}
    for entry in api["deployment"]["env"]:
        ref = entry["valueFrom"]["secretKeyRef"]
        assert ref["name"] == platform_env["metadata"]["name"] and ref["key"] in platform_env["stringData"]
        wired[entry["name"]] = ref["key"]
    assert wired == {
        "REDIS_ADDRESS": "REDIS_ADDRESS",
        "REDIS_PASSWORD": "REDIS_PASSWORD",
        DOCS_SYNC_TOKEN: DOCS_SYNC_TOKEN,
    }
    # The chart's Deployment template renders exactly that list as the container's env.
    deployment = (patched["charts"] / "charts/_common/templates/_deployment.tpl").read_text()
    assert "{{- with .Values.deployment.env }}\n          env:\n            {{- toYaml . | nindent 12 }}" in deployment
    # The api reads each from the environment into the config its clients use.
    bound = bound_env(patched["api"])
    assert bound["redis.password"] == "REDIS_PASSWORD" and bound["redis.address"] == "REDIS_ADDRESS"
    assert bound["docs.syncToken"] == DOCS_SYNC_TOKEN and bound["github.token"] == "GITHUB_TOKEN"
    assert set(wired) <= set(bound.values())
    assert "v.BindEnv(key, env)" in (patched["api"] / "internal/config/config.go").read_text()
    # Unpatched, nothing but the GitHub token came from the environment.
    assert "redis" not in (FIXTURES / "api/internal/config/config.go").read_text().split("var envs", 1)[1].split("}")[0]


def test_the_api_asks_prometheus_in_the_cluster(patched):
    apps = {a["metadata"]["name"]: a["spec"] for a in applications(patched["charts"])}
    monitoring = apps["kube-prometheus-stack"]
    service = f"{monitoring['source']['helm']['releaseName']}-prometheus"  # the chart's `<fullname>-prometheus`
    address = f"http://{service}.{monitoring['destination']['namespace']}.svc.cluster.local:9090"
    api = read_yaml(patched["charts"], "charts/api/values.yaml")
    assert api["configmap"]["data"]["prometheus"]["address"] == address


def test_sync_refuses_a_request_without_the_token_before_touching_the_cache(patched):
    service = (patched["api"] / "internal/services/docs/service.go").read_text()
    sync = service.split("func (s *Service) Sync(", 1)[1].split("\nfunc ", 1)[0]
    assert sync.index('authorized(req.Header().Get("Authorization"), s.cfg.Docs.SyncToken)') < sync.index("s.redis")
    assert "connect.CodeUnauthenticated" in sync
    check = service.split("func authorized(", 1)[1]
    assert "subtle.ConstantTimeCompare" in check and 'token != ""' in check and "==" not in check.split("&&")[0]
    docs_config = (patched["api"] / "internal/config/docs.go").read_text()
    assert (
        '`mapstructure:"syncToken"`' in docs_config
        and "DOCS_SYNC_TOKEN environment variable is required" in docs_config
    )
    assert "&cfg.Docs," in (patched["api"] / "internal/config/config.go").read_text()


# --- docs: the real workflow, with what the program sets ---------------------------------------


def test_docs_sync_workflow_calls_the_api_with_what_the_program_sets(stack, patched):
    workflow = read_yaml(patched["docs"], ".github/workflows/sync.yaml")
    assert set(workflow[True]) == {"push", "workflow_dispatch"} and workflow[True]["push"]["branches"] == ["main"]
    job = workflow["jobs"]["send-webhook"]
    assert job["permissions"] == {"contents": "read"}
    assert job["environment"] == DOCS_SYNC_ENVIRONMENT  # where the token is, for main only
    step = next(s for s in job["steps"] if s.get("name") == "Send Sync Request")
    variable = stack.one(VARIABLE, "spitikos-github-docs-sync-url").values
    secret = stack.one(ACTIONS_SECRET, "spitikos-github-docs-docs-sync-token").values
    assert variable["repository"] == secret["repository"] == "docs" and secret["environment"] == job["environment"]
    assert step["env"]["SYNC_URL"] == "${{ vars." + variable["variableName"] + " }}"
    assert step["env"]["SYNC_TOKEN"] == "${{ secrets." + secret["secretName"] + " }}"
    assert variable["variableName"] == DOCS_SYNC_URL_VARIABLE and secret["secretName"] == DOCS_SYNC_TOKEN
    assert variable["value"] == f"https://{api_hostname(stack)}{DOCS_SYNC_PATH}"
    assert DOCS_SYNC_PATH == "/docs.DocsService/Sync"
    run = step["run"]
    assert '--header "Authorization: Bearer ${SYNC_TOKEN}"' in run and '"${SYNC_URL}"' in run
    # A refused sync fails the run; nothing prints the header.
    assert "--fail-with-body" in run and "--verbose" not in run
    assert_actionlint_passes(patched["docs"] / ".github/workflows/sync.yaml")


def assert_actionlint_passes(workflow: Path) -> None:
    # The venv's actionlint, found from the interpreter: mutmut runs the tests in a copy without .venv/.
    actionlint = Path(sys.executable).with_name("actionlint")
    lint = subprocess.run([str(actionlint), str(workflow)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout


def api_hostname(stack) -> str:
    from conftest import stack_config

    return stack_config().get("spitikos:apiHostname") or f"api.{stack_config()['spitikos:domain']}"


# --- charts: the release workflow reads GHA_PAT from the caller's `release` environment ---------


def release_workflow(charts: Path) -> dict:
    return read_yaml(charts, RELEASE_WORKFLOW)


def gha_pat_readers(workflow: dict) -> list[str]:
    return [job for job, spec in workflow["jobs"].items() if "secrets.GHA_PAT" in str(spec)]


def test_the_release_workflow_pushes_to_charts_only_from_the_environment_that_holds_gha_pat(stack, patched):
    workflow = release_workflow(patched["charts"])
    # The one job that reads the token is the one that checks out charts with it and pushes.
    assert gha_pat_readers(workflow) == [RELEASE_PUSH_JOB]
    job = workflow["jobs"][RELEASE_PUSH_JOB]
    checkout = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"] == {"repository": "spitikos/charts", "token": "${{ secrets.GHA_PAT }}"}
    assert "git push" in job["steps"][-1]["run"]
    # It names the environment the program puts GHA_PAT in, on every repository that calls it.
    holders = [s.values for s in stack.of_type(ACTIONS_SECRET) if s.values["secretName"] == "GHA_PAT"]
    assert {h["repository"] for h in holders} == {"api", "homepage"}
    assert {h["environment"] for h in holders} == {job["environment"]} == {RELEASE_ENVIRONMENT}
    # A caller's `secrets: inherit` finds no GHA_PAT now: a required one would fail every call.
    secret = workflow[True]["workflow_call"]["secrets"]["GHA_PAT"]
    assert secret["required"] is False
    assert_actionlint_passes(patched["charts"] / RELEASE_WORKFLOW)


def test_the_release_workflow_changes_nothing_else(patched, original):
    before, after = release_workflow(original["charts"]), release_workflow(patched["charts"])
    assert before["jobs"][RELEASE_PUSH_JOB].get("environment") is None
    assert before[True]["workflow_call"]["secrets"]["GHA_PAT"]["required"] is True
    # Actions move to the seeded workflow's pinned commits (node 24; actionlint refuses node 20).
    seeded = dict(re.findall(r"uses: ([\w./-]+)@([0-9a-f]{40})", (ROOT / "components/seed/release.yaml").read_text()))
    for job in after["jobs"].values():
        for step in job["steps"]:
            if "uses" in step:
                action, ref = step["uses"].split("@")
                assert ref == seeded[action], step["uses"]
                step["uses"] = action
    for job in before["jobs"].values():
        for step in job["steps"]:
            if "uses" in step:
                step["uses"] = step["uses"].split("@")[0]
    del after["jobs"][RELEASE_PUSH_JOB]["environment"]
    after[True]["workflow_call"]["secrets"]["GHA_PAT"]["required"] = True
    assert after == before


def test_every_caller_inherits_its_secrets_and_releases_from_main(patched):
    """homepage's CI (the api's at 06777fa is not readable here: see SOURCES.yaml)."""
    caller = read_yaml(patched["homepage"], ".github/workflows/ci.yaml")
    assert caller[True]["push"] == {"branches": ["main"]}
    (job,) = caller["jobs"].values()
    assert job["uses"] == f"spitikos/charts/{RELEASE_WORKFLOW}@main"
    # Passes nothing by name (it has no GHA_PAT), but inherits: the environment's secret is
    # reported empty in a called workflow without it (actions/runner#4453).
    assert job["secrets"] == "inherit"
    # The key the workflow bumps is where each application's chart keeps its tag.
    bump = next(
        s["run"] for s in release_workflow(patched["charts"])["jobs"][RELEASE_PUSH_JOB]["steps"] if "yq" in str(s)
    )
    assert ".deployment.image.tag = " in bump
    for app in ("api", "homepage"):
        assert read_yaml(patched["charts"], f"charts/{app}/values.yaml")["deployment"]["image"]["tag"]


# --- every hostname the organization uses is routed -----------------------------------------------


def org_hostnames(stack, charts: Path, homepage: Path) -> dict[str, str]:
    """hostname -> who uses it: each deployed app's Ingresses, and the hosts the apps' code calls."""
    hosts: dict[str, str] = {}
    for app in applications(charts):
        for route in app_routes(charts, app):
            for host in route.hostnames:
                hosts[host] = f"charts: {app['metadata']['name']}'s {route.kind}"
    for host in re.findall(r"https://([a-z0-9.-]+)", (homepage / "src/lib/config.ts").read_text()):
        hosts[host] = "homepage's code"
    hosts[api_hostname(stack)] = "docs' sync workflow"
    return hosts


def test_every_hostname_the_organization_uses_is_routed_in_its_zone(stack, patched):
    rules = stack.one("cloudflare:index/zeroTrustTunnelCloudflaredConfig:ZeroTrustTunnelCloudflaredConfig")
    routed = {r["hostname"] for r in rules.values["config"]["ingresses"] if "hostname" in r}
    records = {r.values["name"]: r.values["zoneId"] for r in stack.of_type("cloudflare:index/dnsRecord:DnsRecord")}
    zones = yaml.safe_load((ROOT / "Pulumi.pi5.yaml").read_text())["config"]["spitikos:zones"]
    hosts = org_hostnames(stack, patched["charts"], patched["homepage"])
    assert {"api.spitikos.dev", "spitikos.dev", "api.taehoonlee.cloud", "vault.taehoonlee.cloud"} <= set(hosts)
    for host, user in hosts.items():
        # An explicit route, or a wildcard one label up (what Cloudflare's edge certificate covers).
        route = host if host in routed else "*." + host.split(".", 1)[1]
        assert route in routed, f"{host} ({user}) has no tunnel route"
        zone = next(z for z in zones if host == z or host.endswith("." + z))
        assert records[route] == mock_zone_id(zone), f"{host} ({user}) has no record in {zone}"


def test_the_api_route_answers_every_host_the_homepage_calls(patched, original):
    called = set(re.findall(r"https://([a-z0-9.-]+)", (patched["homepage"] / "src/lib/config.ts").read_text()))
    assert called == {"api.spitikos.dev"}
    template = (patched["charts"] / "charts/_common/templates/_route.tpl").read_text()
    assert "{{- range $route.hostnames }}\n    - {{ . | quote }}" in template
    (route,) = read_yaml(patched["charts"], "charts/api/values.yaml")["routes"]
    assert route["kind"] == "GRPCRoute" and called <= set(route["hostnames"])
    assert not called <= set(read_yaml(original["charts"], "charts/api/values.yaml")["ingress"]["hosts"])


def test_the_api_answers_cors_for_the_origins_and_headers_its_ingress_listed(patched, original):
    """A GRPCRoute has no CORS filter (Gateway API 1.5.1): what ingress-nginx's annotations said,
    the api's own handler says, word for word."""
    annotations = read_yaml(original["charts"], "charts/api/values.yaml")["ingress"]["annotations"]
    source = (patched["api"] / "internal/cors/cors.go").read_text()
    origins = re.search(r"var Origins = \[\]string\{(.*)\}", source)[1]
    listed = annotations["nginx.ingress.kubernetes.io/cors-allow-origin"].split(",")
    assert re.findall(r'"([^"]+)"', origins) == listed
    for annotation, constant in (
        ("cors-allow-methods", "allowMethods"),
        ("cors-allow-headers", "allowHeaders"),
        ("cors-expose-headers", "exposeHeaders"),
    ):
        value = re.search(rf'{constant} += "([^"]+)"', source)[1]
        words = [w.strip() for w in annotations[f"nginx.ingress.kubernetes.io/{annotation}"].split(",")]
        assert [w.strip() for w in value.split(",")] == words, annotation
    assert "Vary" in source and "http.StatusNoContent" in source
    # And the charts ask NGINX for none of it any more.
    api = read_yaml(patched["charts"], "charts/api/values.yaml")
    assert "ingress" not in api and api["routes"][0]["kind"] == "GRPCRoute"


# --- every real hostname is served at the Gateway, by its own namespace ---------------------------


def test_every_real_hostname_is_served_by_a_route_the_patched_charts_create(stack, patched):
    """Each hostname of the pi5 stack but the wildcard reaches exactly one route: the patched
    charts' own, or the program's for Argo CD; each from the namespace the Gateway admits for it."""
    spec = stack.one("kubernetes:gateway.networking.k8s.io/v1:Gateway", "spitikos-edge-gateway").values
    argocd_route = stack.one("kubernetes:gateway.networking.k8s.io/v1:HTTPRoute", "spitikos-argocd-route").values
    routes = [Route("HTTPRoute", "argocd", tuple(argocd_route["spec"]["hostnames"]), "argocd (the program's)")]
    for app in applications(patched["charts"]):
        routes += app_routes(patched["charts"], app)
    hostnames = yaml.safe_load((ROOT / "Pulumi.pi5.yaml").read_text())["config"]["spitikos:hostnames"]
    explicit = [h for h in hostnames if not h.startswith("*.")]
    assert len(explicit) == 9
    for host in explicit:
        (served,) = serving(spec, routes, host) or [None]
        assert served is not None, f"no route serves {host}"
    by_host = {h: serving(spec, routes, h)[0].name for h in explicit}
    assert by_host == {
        "taehoonlee.cloud": "homepage",
        "spitikos.dev": "homepage",
        "api.taehoonlee.cloud": "api",
        "api.spitikos.dev": "api",
        "argocd.taehoonlee.cloud": "argocd (the program's)",
        "grafana.taehoonlee.cloud": "kube-prometheus-stack",
        "prometheus.taehoonlee.cloud": "kube-prometheus-stack",
        "kube.taehoonlee.cloud": "kubernetes-dashboard",
        "vault.taehoonlee.cloud": "vault",
    }
    # No Ingress is left: not the library's template, and no subchart's own.
    assert not (patched["charts"] / "charts/_common/templates/_ingress.tpl").exists()
    for app in applications(patched["charts"]):
        values = read_yaml(patched["charts"], f"{app['spec']['source']['path']}/values.yaml")
        assert nested_ingresses(values) == [], app["metadata"]["name"]
    # Unpatched, nothing would attach: the charts made Ingresses only.
    assert "ingress" in read_yaml(FIXTURES / "charts", "charts/vault/values.yaml")


# prometheus-node-exporter 4.47.3 (kube-prometheus-stack 75.18.1's dependency), values.yaml: the
# pod's and the container's securityContext defaults; Helm merges the org's values over them.
NODE_EXPORTER_POD_CONTEXT = {"fsGroup": 65534, "runAsGroup": 65534, "runAsNonRoot": True, "runAsUser": 65534}
NODE_EXPORTER_CONTAINER_CONTEXT = {"readOnlyRootFilesystem": True}


def node_exporter(charts: Path) -> dict:
    """The node exporter's DaemonSet as prometheus-node-exporter 4.47.3's templates/daemonset.yaml
    makes it of the org's values (kubeRBACProxy off, hostRootFsMount on: the chart's defaults), in
    the fields the Pod Security levels and the guard read."""
    values = read_yaml(charts, "charts/kube-prometheus-stack/values.yaml")["kube-prometheus-stack"]
    own = values.get("prometheus-node-exporter") or {}
    pod_context = NODE_EXPORTER_POD_CONTEXT | (own.get("securityContext") or {})
    container_context = NODE_EXPORTER_CONTAINER_CONTEXT | (own.get("containerSecurityContext") or {})
    labels = {"app.kubernetes.io/name": "prometheus-node-exporter"}
    mounts = [
        {"name": "proc", "mountPath": "/host/proc", "readOnly": True},
        {"name": "sys", "mountPath": "/host/sys", "readOnly": True},
        {"name": "root", "mountPath": "/host/root", "mountPropagation": "HostToContainer", "readOnly": True},
    ]
    container = {
        "name": "node-exporter",
        "image": "quay.io/prometheus/node-exporter:v1.9.1",
        "securityContext": container_context,
        "ports": [{"name": "http-metrics", "containerPort": 9100, "protocol": "TCP"}],
        "volumeMounts": mounts,
    }
    volumes = [{"name": n, "hostPath": {"path": p}} for n, p in (("proc", "/proc"), ("sys", "/sys"), ("root", "/"))]
    spec = {
        "automountServiceAccountToken": False,
        "securityContext": pod_context,
        "serviceAccountName": "kube-prometheus-stack-prometheus-node-exporter",
        "containers": [container],
        "hostNetwork": True,
        "hostPID": True,
        "hostIPC": False,
        "volumes": volumes,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "kube-prometheus-stack-prometheus-node-exporter", "namespace": "monitoring"},
        "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": spec}},
    }


def webhook_configurations(charts: Path) -> dict[tuple[str, str], dict]:
    """The apps' admission webhook configurations, by (kind, name), as their charts render them of
    the org's values: vault 0.30.1's templates/injector-mutating-webhook.yaml (its namespaceSelector
    from the values), and kube-prometheus-stack 75.18.1's admission-webhooks/
    mutatingWebhookConfiguration.yaml and validatingWebhookConfiguration.yaml (patch Jobs on: the
    failure policy `Ignore`; the operator's Service), each in the fields the guard reads."""
    injector = read_yaml(charts, "charts/vault/values.yaml")["vault"]["injector"]
    # vault 0.30.1: `injector.webhook.namespaceSelector`, else the deprecated `injector.namespaceSelector`.
    selector = (injector.get("webhook") or {}).get("namespaceSelector") or injector.get("namespaceSelector")
    vault = {
        "name": "vault.hashicorp.com",
        "failurePolicy": "Ignore",
        "matchPolicy": "Exact",
        "sideEffects": "None",
        "timeoutSeconds": 30,
        "admissionReviewVersions": ["v1", "v1beta1"],
        "clientConfig": {"service": {"name": "vault-agent-injector-svc", "namespace": "vault", "path": "/mutate"}},
        "rules": [
            {"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}
            | {"scope": "Namespaced"}
        ],
        # The chart's default objectSelector: not the injector's own pods.
        "objectSelector": {
            "matchExpressions": [
                {"key": "app.kubernetes.io/name", "operator": "NotIn", "values": ["vault-agent-injector"]}
            ]
        },
    }
    if selector:
        vault["namespaceSelector"] = selector
    configurations = {("MutatingWebhookConfiguration", "vault-agent-injector-cfg"): [vault]}
    for kind, verb in (("MutatingWebhookConfiguration", "mutate"), ("ValidatingWebhookConfiguration", "validate")):
        service = {"namespace": "monitoring", "name": "kube-prometheus-stack-operator"}
        rule = {"apiGroups": ["monitoring.coreos.com"], "apiVersions": ["*"], "resources": ["prometheusrules"]}
        webhook = {
            "name": "prometheusrulemutate.monitoring.coreos.com",
            "failurePolicy": "Ignore",
            "rules": [rule | {"operations": ["CREATE", "UPDATE"]}],
            "clientConfig": {"service": service | {"path": f"/admission-prometheusrules/{verb}"}},
            "timeoutSeconds": 10,
            "admissionReviewVersions": ["v1", "v1beta1"],
            "sideEffects": "None",
        }
        configurations[(kind, "kube-prometheus-stack-admission")] = [webhook]
    return {
        key: {"apiVersion": "admissionregistration.k8s.io/v1", "kind": key[0], "metadata": {"name": key[1]}}
        | {"webhooks": webhooks}
        for key, webhooks in configurations.items()
    }


def dashboard_login(charts: Path) -> list[dict]:
    """charts/kubernetes-dashboard/templates/admin-user.yaml as Helm renders it (its labels aside):
    the login's ServiceAccount and its ClusterRoleBinding."""
    text = (charts / "charts/kubernetes-dashboard/templates/admin-user.yaml").read_text()
    text = re.sub(r"\{\{-? ?/\*.*?\*/ ?-?\}\}", "", text, flags=re.DOTALL)
    text = re.sub(r"\n *labels:\n *\{\{- include [^}]*\}\}", "", text)
    account = read_yaml(charts, "charts/kubernetes-dashboard/values.yaml")["serviceAccount"]["name"]
    text = text.replace("{{ .Values.serviceAccount.name }}", account)
    text = text.replace("{{ .Release.Namespace }}", "kubernetes-dashboard")
    assert "{{" not in text, "admin-user.yaml: a template action this reading does not know"
    return [doc for doc in yaml.safe_load_all(text) if doc]


def test_the_dashboards_login_reads_the_cluster_and_no_pair_names_cluster_admin(patched, original):
    """A pod running as the login's ServiceAccount holds what its binding grants: `view` since the
    patch (no Secrets, no writes), cluster-admin before it. The setting pairs the new binding with
    `view`, and nothing with cluster-admin (attack 60)."""
    _, binding = dashboard_login(patched["charts"])
    assert (binding["metadata"]["name"], binding["roleRef"]["name"]) == ("admin-user-view", "view")
    login = {"kind": "ServiceAccount", "name": "admin-user", "namespace": "kubernetes-dashboard"}
    assert binding["subjects"] == [login]
    _, before = dashboard_login(original["charts"])
    assert (before["metadata"]["name"], before["roleRef"]["name"]) == ("admin-user-binding", "cluster-admin")
    listed = yaml.safe_load((ROOT / "Pulumi.pi5.yaml").read_text())["config"]["spitikos:allowedAdminBindings"]
    pairs = dict(entry.split("=") for entry in listed)
    assert pairs["ClusterRoleBinding/admin-user-view"] == "view"
    assert "cluster-admin" not in pairs.values()


def test_the_dashboard_route_checks_kongs_certificate_against_the_ca_made_beside_it(patched):
    """kubernetes-dashboard's kong proxy speaks HTTPS only (7.13.0: proxy.http off): the route's
    BackendTLSPolicy names the CA and the host, and kong serves the certificate that CA signed."""
    values = read_yaml(patched["charts"], "charts/kubernetes-dashboard/values.yaml")
    (route,) = values["routes"]
    assert (route["serviceName"], route["servicePort"]) == ("kubernetes-dashboard-kong-proxy", 443)
    tls = route["backendTLS"]
    assert tls == {
        "hostname": "kubernetes-dashboard-kong-proxy.kubernetes-dashboard.svc",
        "caConfigMap": "kubernetes-dashboard-kong-ca",
    }
    made = (patched["charts"] / "charts/kubernetes-dashboard/templates/kong-tls.yaml").read_text()
    assert "genSignedCert $host nil (list $host) 3650 $ca" in made and "name: kubernetes-dashboard-kong-ca" in made
    kong = values["kubernetes-dashboard"]["kong"]
    assert kong["secretVolumes"] == ["kubernetes-dashboard-kong-tls"]
    assert kong["env"]["ssl_cert"] == "/etc/secrets/kubernetes-dashboard-kong-tls/tls.crt"
    # Made once: the Application keeps what the first sync wrote.
    apps = {a["metadata"]["name"]: a["spec"] for a in applications(patched["charts"])}
    dashboard = apps["kubernetes-dashboard"]
    assert "RespectIgnoreDifferences=true" in dashboard["syncPolicy"]["syncOptions"]
    ignored = {(d["kind"], d.get("name")) for d in dashboard["ignoreDifferences"]}
    assert {("Secret", "kubernetes-dashboard-kong-tls"), ("ConfigMap", "kubernetes-dashboard-kong-ca")} <= ignored


# --- refreshing the fixtures is one command ------------------------------------------------------


def test_refresh_fixtures_rewrites_every_file_at_the_commit_it_is_moved_to(tmp_path, monkeypatch, capsys):
    """`make refresh-fixtures MOVE=...`, on one repository (docs) with a local stand-in for GitHub's."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("refresh_fixtures", ROOT / "tools" / "refresh_fixtures.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    fixtures, origin = tmp_path / "fixtures", tmp_path / "origin" / "docs"
    shutil.copytree(FIXTURES / "docs", fixtures / "docs")
    manifest = "# kept\n" + yaml.safe_dump({"docs": SOURCES["docs"]}, sort_keys=False)
    (fixtures / "SOURCES.yaml").write_text(manifest)
    monkeypatch.setattr(tool, "FIXTURES", fixtures)
    monkeypatch.setattr(tool, "MANIFEST", fixtures / "SOURCES.yaml")
    monkeypatch.setenv("SOURCE", str(tmp_path / "origin" / "{repo}"))
    (path,) = SOURCES["docs"]["paths"]
    (origin / path).parent.mkdir(parents=True)
    (origin / path).write_text("moved\n")
    git = ["git", "-C", str(origin), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "moved"], check=True)

    assert tool.main([]) == 1  # the manifest's commit is not in the stand-in
    assert "nothing was written" in capsys.readouterr().err
    assert (fixtures / "SOURCES.yaml").read_text() == manifest

    assert tool.main(["docs=HEAD"]) == 0
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    refreshed = (fixtures / "SOURCES.yaml").read_text()
    assert refreshed == manifest.replace(SOURCES["docs"]["commit"], head)  # the comments stay
    assert (fixtures / "docs" / path).read_text() == "moved\n"
