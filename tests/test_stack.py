"""The whole program, `__main__.py`, run with the real Pulumi.pi5.yaml under mocks."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from conftest import AGENT_HOST_KEY, DUMMY_SECRETS, HOST_KEY, run_main, stack_config

from components import versions
from components.charts import chart_name
from components.kube import from_nodes
from components.platform import Platform
from components.settings import SettingsError
from spitikos.engine import MOCK_HOST_KEY, MOCK_TUNNEL_TOKEN, exposed_strings


def test_the_platform_registers_the_k3s_node_from_the_pi5_settings(stack):
    platform = stack.one("spitikos:platform:Platform", "spitikos")
    cluster = stack.one("spitikos:k3s:K3sCluster", "spitikos-k3s")
    assert cluster.parent == platform.urn
    install = stack.one("command:remote:Command", "spitikos-k3s-server-install").values
    assert install["connection"]["host"] == "10.0.0.200"
    assert install["connection"]["user"] == "ubuntu"
    assert f"want={versions.K3S_VERSION}\n" in install["create"]
    assert "--disable=traefik" in install["create"]
    assert stack.one("pulumi:providers:kubernetes").parent == cluster.urn


def test_exports_the_node_address_and_a_secret_kubeconfig(stack):
    assert stack.exports["nodeAddress"] == ("10.0.0.200", False)
    kubeconfig, secret = stack.exports["kubeconfig"]
    assert secret
    assert yaml.safe_load(kubeconfig)["clusters"][0]["cluster"]["server"] == "https://10.0.0.200:6443"
    assert stack.exports["argocdUrl"] == ("https://argocd.taehoonlee.cloud", False)


def known_secret_values(recording) -> list[str]:
    """The dummy config secrets and every secret the mocks generated."""
    return [*DUMMY_SECRETS.values(), MOCK_TUNNEL_TOKEN, *recording.generated_secrets()]


def test_no_secret_appears_in_plain_text_in_any_input_or_export(stack):
    secrets = known_secret_values(stack)
    # Placeholders, the join token, the tunnel token, and every generated password and key.
    assert len(secrets) >= len(DUMMY_SECRETS) + 2 + 8
    for reg in stack.all():
        for text in exposed_strings(reg.inputs):
            for secret in secrets:
                assert secret not in text, f"{reg.urn} exposes a secret in plain text"
    for name, (value, is_secret) in stack.exports.items():
        if not is_secret:
            for secret in secrets:
                assert secret not in json.dumps(value, default=str), f"export {name} exposes a secret"


def test_an_agent_in_the_settings_joins_the_cluster(with_agent_and_host_key):
    recording = with_agent_and_host_key
    agent = recording.one("command:remote:Command", "spitikos-k3s-agent-10-0-0-201-install")
    assert agent.input_is_secret("stdin") and not agent.input_is_secret("create"), "only the token is secret"
    assert "K3S_URL=https://10.0.0.200:6443" in agent.values["create"]
    for command in recording.of_type("command:remote:Command"):
        assert command.values["connection"]["hostKey"], f"{command.name} does not check the node's host key"
    known = known_secret_values(recording)
    for command in recording.of_type("command:remote:Command"):
        for key in ("create", "update", "delete"):
            assert not any(s in command.values.get(key, "") for s in known), f"{command.name} {key} holds a secret"


def test_each_nodes_address_and_port_show_in_the_plan(with_agent_and_host_key):
    """Only a connection's private key is secret: the plan's summary names every node's user, host and port."""
    from spitikos import plan as offline

    text = offline.render(offline.Plan("pi5", with_agent_and_host_key, []))
    summary = text.split("Summary:\n", 1)[1].split("\n\n", 1)[0]
    for node in ("spitikos-k3s-agent-pi3 ubuntu@10.0.0.202:2222", "spitikos-k3s-server ubuntu@10.0.0.200:22"):
        assert node in summary


def test_with_node_host_key_set_every_ssh_connection_to_the_server_pins_it(with_agent_and_host_key):
    commands = with_agent_and_host_key.of_type("command:remote:Command")
    server = [c for c in commands if c.values["connection"]["host"] == "10.0.0.200"]
    agent = [c for c in commands if c.values["connection"]["host"] == "10.0.0.201"]
    keyed_agent = [c for c in commands if c.values["connection"]["host"] == "10.0.0.202"]
    # preflight, install and kubeconfig; with etcd also the snapshots' drop-in and the server token
    assert len(server) == 5 and len(agent) == 2 == len(keyed_agent)
    for command in server:
        assert command.values["connection"]["hostKey"] == HOST_KEY, command.name
    # nodeHostKey is the server's key: another machine presents its own, so an agent is pinned to
    # the key written after it in `agents`, or else to the one it showed on first contact (read
    # once, kept in state), never to the server's.
    for command in agent:
        assert command.values["connection"]["hostKey"] == MOCK_HOST_KEY, command.name
    for command in keyed_agent:
        assert command.values["connection"]["hostKey"] == AGENT_HOST_KEY, command.name
    learned = sorted(c.name for c in with_agent_and_host_key.of_type("command:local:Command"))
    assert learned == ["spitikos-k3s-agent-10-0-0-201-host-key", "spitikos-k3s-server-pi6-host-key"]


def test_bad_settings_fail_before_any_resource_exists():
    config = {**stack_config(), "spitikos:domain": "not a domain", "spitikos:nodeHost": "pi 5"}
    with pytest.raises(SettingsError) as raised:
        run_main(config)
    assert "spitikos:domain" in str(raised.value) and "spitikos:nodeHost" in str(raised.value)
    from pulumi.runtime import settings

    monitor = settings.SETTINGS.monitor
    assert monitor.registrations == {}


# --- the in-cluster platform -------------------------------------------------------------

RELEASE = "kubernetes:helm.sh/v3:Release"


def platform_footprint(recording):
    from spitikos.plan import Plan

    return Plan("pi5", recording, []).total_footprint()


def test_every_container_has_cpu_and_memory_requests_and_limits(stack):
    footprint = platform_footprint(stack)
    owners = {c.owner for c in footprint.containers}
    assert {
        "spitikos-edge-release",
        "spitikos-keda-release",
        "spitikos-argocd-release",
        "spitikos-redis-deployment",
        "spitikos-tunnel-deployment",
    } <= owners
    assert footprint.unsized() == []


def test_the_platform_fits_a_4gb_pi_with_2_5gb_left_for_applications(stack):
    from components.footprint import APPLICATION_RESERVE_MI, K3S_SYSTEM_MI, NODE_MEMORY_MI

    footprint = platform_footprint(stack)
    print(
        f"\nplatform memory requests: {footprint.memory_requests_mi:.0f} MiB; with k3s ({K3S_SYSTEM_MI} MiB) "
        f"{footprint.memory_requests_mi + K3S_SYSTEM_MI:.0f} of {NODE_MEMORY_MI} MiB; "
        f"left for applications: {footprint.left_for_applications_mi:.0f} MiB"
    )
    assert footprint.left_for_applications_mi >= APPLICATION_RESERVE_MI


def test_the_releases_wait_for_the_cluster_only_and_the_root_application_for_argocd(stack):
    releases = stack.of_type(RELEASE)
    assert sorted(chart_name(r.values) for r in releases) == [
        "argo-cd", "keda", "keda-add-ons-http", "nginx-gateway-fabric", "volsync"
    ]  # fmt: skip
    kubeconfig = stack.one("command:remote:Command", "spitikos-k3s-server-kubeconfig")
    redis = stack.one("kubernetes:apps/v1:Deployment", "spitikos-redis-deployment")
    parallel = [*releases, redis]
    # KEDA's HTTP add-on alone waits for a release: its chart installs a ScaledObject, KEDA's kind.
    keda = stack.one(RELEASE, "spitikos-keda-release")
    for release in parallel:
        waits_for = stack.ancestors_closure(release.urn)
        others = {r.urn for r in parallel} - {release.urn}
        if release.name == "spitikos-keda-http-release":
            assert waits_for & others == {keda.urn}, "the add-on waits for KEDA's CRDs, and nothing else"
            continue
        assert not waits_for & others, f"{release.name} waits for another release"
        assert kubeconfig.urn in waits_for, f"{release.name} does not wait for the cluster"
        assert not any(stack.registrations[u].type.startswith(("github:", "cloudflare:")) for u in waits_for)
    root = stack.one("kubernetes:argoproj.io/v1alpha1:Application", "spitikos-argocd-root-application")
    assert stack.one(RELEASE, "spitikos-argocd-release").urn in stack.ancestors_closure(root.urn)


def outside_waiting_for_the_node(recording) -> list[str]:
    """GitHub and Cloudflare resources that would wait for k3s on the node on a real `pulumi up`."""
    node = {r.urn for r in recording.of_type("command:remote:Command")}
    outside = [r for r in recording.all() if r.type.startswith(("github:", "cloudflare:"))]
    assert len(outside) > 10
    return sorted(r.name for r in outside if recording.ancestors_closure(r.urn) & node)


def test_github_and_cloudflare_do_not_wait_for_the_node(stack):
    assert outside_waiting_for_the_node(stack) == []


def own_kubernetes_objects(recording):
    """Every Kubernetes object the program writes itself: not Helm releases, not providers."""
    for reg in recording.all():
        if reg.type.startswith("kubernetes:") and reg.type != RELEASE and "argoproj.io" not in reg.type:
            if reg.type != "kubernetes:volsync.backube/v1alpha1:ReplicationSource":  # tests/test_backup.py
                # The Gateway API's kinds: against their CRDs' schemas in tests/test_gateway.py; the
                # CRDs themselves are files the provider reads (yaml/v2:ConfigGroup), no object here.
                if "gateway.networking.k8s.io" not in reg.type and not reg.type.startswith("kubernetes:yaml/"):
                    yield reg


def test_objects_the_program_writes_validate_against_the_kubernetes_schema(stack):
    from components import versions
    from spitikos.render import schema_problem  # the check `make render` runs on the charts' objects

    minor = versions.kubernetes_minor(versions.K3S_VERSION)
    objects = list(own_kubernetes_objects(stack))
    kinds = {o.values["kind"] for o in objects}
    assert {"Namespace", "Secret", "ConfigMap", "PersistentVolumeClaim", "Deployment", "Service"} <= kinds
    assert {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} <= kinds, "the guard is validated too"
    problems = {obj.name: schema_problem(obj.values, minor) for obj in objects}
    assert not {name: p for name, p in problems.items() if p}, f"not valid for Kubernetes {minor}"


# --- the real organization (issue: bootstrap spitikos) -----------------------------------

# Argo CD v3.4's AppProject rules (app_project_types.go): a destination is permitted when an
# allow entry matches it and no `!` entry rejects it; a cluster-scoped object when a whitelist
# entry matches it and no blacklist entry does; `name` and `namespace` are globs.


def _glob(pattern, value):
    from fnmatch import fnmatchcase

    return fnmatchcase(value, pattern)


def permits_namespace(project, namespace):
    destinations = project["destinations"]
    allowed = any(not d["namespace"].startswith("!") and _glob(d["namespace"], namespace) for d in destinations)
    denied = any(d["namespace"].startswith("!") and _glob(d["namespace"][1:], namespace) for d in destinations)
    return allowed and not denied


def permits_cluster_object(project, group, kind, name):
    def matches(entry):
        return entry["group"] == group and entry["kind"] == kind and _glob(entry.get("name", "*"), name)

    white = any(matches(e) for e in project.get("clusterResourceWhitelist", []))
    return white and not any(matches(e) for e in project.get("clusterResourceBlacklist", []))


def projects(recording):
    return {r.values["metadata"]["name"]: r.values["spec"] for r in recording.kubernetes("AppProject")}


# The real charts/argocd applications' namespaces, and what their charts install.
REAL_APP_NAMESPACES = ["api", "homepage", "vault", "kubernetes-dashboard", "monitoring"]
REAL_CLUSTER_OBJECTS = [
    ("apiextensions.k8s.io", "CustomResourceDefinition", "prometheuses.monitoring.coreos.com"),
    ("rbac.authorization.k8s.io", "ClusterRole", "kube-prometheus-stack-operator"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding", "admin-user-view"),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration", "vault-agent-injector-cfg"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration", "kube-prometheus-stack-admission"),
    ("", "Namespace", "monitoring"),
]


def test_an_app_routes_on_the_platforms_gateway_and_makes_none_of_its_own(stack):
    """Argo CD refuses a namespaced kind the project blacklists (app_project_types.go,
    IsGroupKindPermitted): a Gateway, a ListenerSet, NGF's NginxProxy and snippets; routes pass."""
    default = projects(stack)["default"]
    refused = {(k["group"], k["kind"]) for k in default["namespaceResourceBlacklist"]}
    assert ("gateway.networking.k8s.io", "Gateway") in refused
    assert ("gateway.networking.k8s.io", "ListenerSet") in refused
    assert {("gateway.nginx.org", "NginxProxy"), ("gateway.nginx.org", "SnippetsFilter")} <= refused
    for kind in ("HTTPRoute", "GRPCRoute", "BackendTLSPolicy", "ReferenceGrant"):
        assert ("gateway.networking.k8s.io", kind) not in refused, kind
    assert "namespaceResourceWhitelist" not in default, "every other namespaced kind stays admitted"


def test_the_default_project_admits_the_real_apps_and_refuses_the_platforms_namespaces(stack):
    default = projects(stack)["default"]
    for namespace in REAL_APP_NAMESPACES:
        assert permits_namespace(default, namespace), f"the real app in {namespace} would be refused"
    for namespace in ("keda", "redis", "nginx-gateway", "argocd", "cloudflared", "kube-system", "kube-public"):
        assert not permits_namespace(default, namespace), f"an app could deploy into {namespace}"
    for pattern in Platform.platform_namespaces():
        namespace = pattern.replace("*", "system")
        assert not permits_namespace(default, namespace)
        assert not permits_cluster_object(default, "", "Namespace", namespace)
    for group, kind, name in REAL_CLUSTER_OBJECTS:
        assert permits_cluster_object(default, group, kind, name), f"{kind} {name} would be refused"
    refused = [
        ("", "Namespace", "keda"),
        ("apiextensions.k8s.io", "CustomResourceDefinition", "applications.argoproj.io"),
        ("rbac.authorization.k8s.io", "ClusterRole", "argocd-application-controller"),
        ("networking.k8s.io", "IngressClass", "nginx"),
        # The edge: a route kind redefined, or a GatewayClass of one's own with its own controller.
        ("apiextensions.k8s.io", "CustomResourceDefinition", "httproutes.gateway.networking.k8s.io"),
        ("apiextensions.k8s.io", "CustomResourceDefinition", "nginxproxies.gateway.nginx.org"),
        ("gateway.networking.k8s.io", "GatewayClass", "nginx"),
        ("rbac.authorization.k8s.io", "ClusterRole", "nginx-gateway"),
        ("apiregistration.k8s.io", "APIService", "v1beta1.external.metrics.k8s.io"),
        ("storage.k8s.io", "StorageClass", "local-path"),
        # k3s's CRDs: a HelmChart object in kube-system installs any chart as cluster-admin.
        ("apiextensions.k8s.io", "CustomResourceDefinition", "helmcharts.helm.cattle.io"),
        ("apiextensions.k8s.io", "CustomResourceDefinition", "helmchartconfigs.helm.cattle.io"),
        ("apiextensions.k8s.io", "CustomResourceDefinition", "addons.k3s.cattle.io"),
        ("apiextensions.k8s.io", "CustomResourceDefinition", "etcdsnapshotfiles.k3s.cattle.io"),
        # Kubernetes' and k3s's roles and bindings: rewriting one rewrites who holds its rights.
        *(
            ("rbac.authorization.k8s.io", kind, name)
            for kind in ("ClusterRole", "ClusterRoleBinding")
            for name in ("cluster-admin", "admin", "edit", "view", "system:node", "system:coredns")
        ),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding", "local-path-provisioner-bind"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding", "kube-apiserver-kubelet-admin"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding", "metrics-server:system:auth-delegator"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding", "k3s-cloud-controller-manager"),
        # VolSync's manager holds Secrets and Jobs cluster-wide; the snapshot CRDs are the platform's.
        ("rbac.authorization.k8s.io", "ClusterRole", "volsync-manager"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding", "volsync-manager"),
        ("apiextensions.k8s.io", "CustomResourceDefinition", "replicationsources.volsync.backube"),
        ("apiextensions.k8s.io", "CustomResourceDefinition", "volumesnapshots.snapshot.storage.k8s.io"),
    ]
    for group, kind, name in refused:
        assert not permits_cluster_object(default, group, kind, name), f"{kind} {name} is the platform's"
    assert default["sourceRepos"] == ["https://github.com/spitikos/*", "git@github.com:spitikos/*"]


def permits_namespaced_kind(project, group, kind):
    """Argo CD's `IsGroupKindPermitted` for a namespaced kind: no whitelist admits every kind, and
    `namespaceResourceBlacklist` (filepath.Match on group and kind) refuses."""
    white = project.get("namespaceResourceWhitelist")
    if white is not None and not any(_glob(e["group"], group) and _glob(e["kind"], kind) for e in white):
        return False
    return not any(
        _glob(e["group"], group) and _glob(e["kind"], kind) for e in project.get("namespaceResourceBlacklist", [])
    )


def test_the_default_project_refuses_k3s_objects_and_hand_written_endpoints_in_any_namespace(stack):
    """A HelmChart is installed by k3s as cluster-admin; an EndpointSlice listing argocd-server's
    address behind a selector-less Service publishes it under an app's hostname (issue 24)."""
    default = projects(stack)["default"]
    for group, kind in [
        ("helm.cattle.io", "HelmChart"),
        ("helm.cattle.io", "HelmChartConfig"),
        ("k3s.cattle.io", "Addon"),
        ("", "Endpoints"),
        ("discovery.k8s.io", "EndpointSlice"),
        ("networking.k8s.io", "Ingress"),
    ]:
        assert not permits_namespaced_kind(default, group, kind), kind
    for group, kind in [
        ("apps", "Deployment"),
        ("", "Service"),
        ("", "Secret"),
        ("gateway.networking.k8s.io", "HTTPRoute"),
        ("gateway.networking.k8s.io", "GRPCRoute"),
        ("monitoring.coreos.com", "ServiceMonitor"),
        ("keda.sh", "ScaledObject"),
        ("rbac.authorization.k8s.io", "RoleBinding"),
    ]:
        assert permits_namespaced_kind(default, group, kind), kind


def test_the_root_project_stays_narrow(stack):
    root = projects(stack)["root"]
    assert root["sourceRepos"] == ["git@github.com:spitikos/charts.git"]
    assert [d["namespace"] for d in root["destinations"]] == ["argocd"]
    assert root["namespaceResourceWhitelist"] == [{"group": "argoproj.io", "kind": "Application"}]
    assert not any(permits_cluster_object(root, g, k, n) for g, k, n in REAL_CLUSTER_OBJECTS)


def test_the_root_application_renders_the_live_app_of_apps_chart(stack, fresh):
    def source(recording):
        root = recording.one("kubernetes:argoproj.io/v1alpha1:Application", "spitikos-argocd-root-application")
        return root.values["spec"]["source"]

    assert source(stack) == {
        "repoURL": "git@github.com:spitikos/charts.git",
        "path": "charts/argocd",
        "targetRevision": "main",
    }
    assert source(fresh)["path"] == "argocd/apps" and source(fresh)["repoURL"].endswith("/spitikos.git")


def test_redis_answers_where_the_real_apps_look(stack):
    services = {s.values["metadata"]["name"]: s.values for s in stack.kubernetes("Service")}
    alias, main = services["redis-master"], services["redis"]
    assert alias["metadata"]["namespace"] == main["metadata"]["namespace"] == "redis"
    assert alias["spec"] == main["spec"], "the alias reaches the same pod on the same port"


def test_the_contract_table_lists_exactly_what_platform_env_holds(stack):
    import re

    from conftest import ROOT

    env = stack.one("kubernetes:core/v1:Secret", "spitikos-api-env")
    keys = set(env.values["stringData"])
    page = (ROOT / "docs" / "platform.md").read_text()
    section = page.split("## What an application gets", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`platform-env` key `([A-Z_]+)`", section))
    assert documented == keys
    url = env.values["stringData"]["REDIS_URL"]
    password = env.values["stringData"]["REDIS_PASSWORD"]
    assert url == f"redis://:{password}@redis.redis.svc.cluster.local:6379/0"
    assert env.input_is_secret("stringData")


# --- containment (issue: harden the node, the secrets, the edge) --------------------------


def test_every_namespace_enforces_a_pod_security_level(stack):
    levels = {}
    # A NamespacePatch (components/backup.py) only makes sure an application's namespace exists.
    for ns in [n for n in stack.kubernetes("Namespace") if not n.type.endswith("Patch")]:
        labels = ns.values["metadata"]["labels"]
        levels[ns.values["metadata"]["name"]] = labels["pod-security.kubernetes.io/enforce"]
        assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    assert levels == {
        "argocd": "restricted",
        "nginx-gateway": "restricted",
        "keda": "restricted",
        "keda-http": "restricted",
        "redis": "restricted",
        "cloudflared": "restricted",
        "volsync-system": "restricted",
        "api": "baseline",  # the api's pods carry Vault's injected agent, which the platform does not write
    }


def ingress_policies(recording):
    return [p for p in recording.kubernetes("NetworkPolicy") if p.values["spec"]["policyTypes"] == ["Ingress"]]


def egress_policies(recording) -> dict[str, list[dict]]:
    """Each namespace's `egress` policy's rules."""
    policies = [p.values for p in recording.kubernetes("NetworkPolicy") if "Egress" in p.values["spec"]["policyTypes"]]
    assert all(p["metadata"]["name"] == "egress" and p["spec"]["podSelector"] == {} for p in policies)
    return {p["metadata"]["namespace"]: p["spec"]["egress"] for p in policies}


def test_only_application_namespaces_reach_redis(stack):
    (policy,) = [p.values for p in ingress_policies(stack) if p.values["metadata"]["namespace"] == "redis"]
    spec = policy["spec"]
    assert spec["podSelector"] == {} and spec["policyTypes"] == ["Ingress"]
    (rule,) = spec["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 6379}]
    (peer,) = rule["from"]
    (expression,) = peer["namespaceSelector"]["matchExpressions"]
    assert expression["key"] == "kubernetes.io/metadata.name" and expression["operator"] == "NotIn"
    assert set(expression["values"]) == {
        "argocd", "nginx-gateway", "keda", "keda-http", "cloudflared", "volsync-system", *K3S
    }  # fmt: skip
    assert "api" not in expression["values"]


K3S = ("kube-system", "kube-public", "kube-node-lease")


def test_platform_namespaces_refuse_what_they_do_not_need(stack):
    by_name = {
        (p.values["metadata"]["namespace"], p.values["metadata"]["name"]): p.values["spec"]
        for p in ingress_policies(stack)
    }
    policies = {namespace: spec for (namespace, _), spec in by_name.items()}
    assert policies["cloudflared"] == {"policyTypes": ["Ingress"], "podSelector": {}}
    assert policies["keda"]["ingress"][0] == {"from": [{"podSelector": {}}]}
    # The edge: a default deny, NGINX open to cloudflared on 443 alone, the control plane to NGINX's
    # agents on 8443 alone; Prometheus on the metrics port; the nodes' kubelets on the probes' port.
    gateway = {name: spec for (namespace, name), spec in by_name.items() if namespace == "nginx-gateway"}
    assert gateway.pop("default-deny-ingress") == {"policyTypes": ["Ingress"], "podSelector": {}}
    nginx, control = gateway.pop("nginx-from-cloudflared"), gateway.pop("control-plane-from-nginx")
    assert gateway == {}
    data_plane = {"gateway.networking.k8s.io/gateway-name": "spitikos", "app.kubernetes.io/name": "spitikos-nginx"}
    assert nginx["podSelector"] == {"matchLabels": data_plane}
    assert control["podSelector"] == {
        "matchLabels": {"app.kubernetes.io/name": "nginx-gateway", "app.kubernetes.io/instance": "nginx-gateway"}
    }

    def peers(spec: dict) -> dict[int, list]:
        return {p["port"]: r["from"] for r in spec["ingress"] for p in r["ports"]}

    tunnel = [{"namespaceSelector": {"matchExpressions": [{"key": NS, "operator": "In", "values": ["cloudflared"]}]}}]
    prometheus = [
        {"namespaceSelector": {"matchExpressions": [{"key": NS, "operator": "In", "values": ["monitoring"]}]}}
    ]
    kubelet = from_nodes()  # every node /24's flannel.1 and cni0 (decision 0003)
    assert peers(nginx) == {443: tunnel, 9113: prometheus, 8081: kubelet}
    assert peers(control) == {8443: [{"podSelector": {"matchLabels": data_plane}}], 9113: prometheus, 8081: kubelet}


NS = "kubernetes.io/metadata.name"


def test_only_the_gateways_nginx_pods_reach_argocd_server(stack):
    """The chart's server policy (argo-cd 10.1.1) admits every pod; it must not render, and ours
    admits the Gateway's NGINX pods to the server's port, and nothing else, behind a default deny."""
    values = stack.one(RELEASE, "spitikos-argocd-release").values["values"]
    # argocd-server/networkpolicy.yaml renders when `server.networkPolicy.create` or the global one is.
    assert not values["global"]["networkPolicy"]["create"]
    assert not values["server"].get("networkPolicy", {}).get("create")
    for component in ("controller", "repoServer", "redis"):
        assert values[component]["networkPolicy"] == {"create": True}, f"{component} lost its own policy"
    policies = [
        p.values
        for p in stack.kubernetes("NetworkPolicy")
        if p.values["metadata"]["namespace"] == "argocd" and "Ingress" in p.values["spec"]["policyTypes"]
    ]
    by_selector = {json.dumps(p["spec"]["podSelector"], sort_keys=True): p["spec"] for p in policies}
    assert by_selector.pop("{}") == {"policyTypes": ["Ingress"], "podSelector": {}}, "a default deny for every pod"
    (server,) = by_selector.values()
    assert server["policyTypes"] == ["Ingress"]
    assert server["podSelector"] == {
        "matchLabels": {"app.kubernetes.io/name": "argocd-server", "app.kubernetes.io/instance": "argocd"}
    }
    (rule,) = server["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8080}]
    (peer,) = rule["from"]
    assert peer["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "nginx-gateway"}}
    # The labels NGF gives the NGINX pods it provisions for the Gateway `spitikos` of class `nginx`
    # (provisioner/objects.go: the Gateway's name label, `app.kubernetes.io/name` `<gateway>-<class>`).
    assert peer["podSelector"]["matchLabels"] == {
        "gateway.networking.k8s.io/gateway-name": "spitikos",
        "app.kubernetes.io/name": "spitikos-nginx",
    }
    gateway = stack.one("kubernetes:gateway.networking.k8s.io/v1:Gateway", "spitikos-edge-gateway").values
    assert (gateway["metadata"]["name"], gateway["metadata"]["namespace"]) == ("spitikos", "nginx-gateway")
    assert gateway["spec"]["gatewayClassName"] == "nginx"
    ngf = stack.one(RELEASE, "spitikos-edge-release").values
    assert ngf["namespace"] == "nginx-gateway" and ngf["values"]["nginxGateway"]["gatewayClassName"] == "nginx"


def test_the_edge_is_a_maintained_nginx_with_snippets_off(stack):
    """NGF 2.6.7 ships NGINX 1.31.3 (docs/decisions/0006): no route in Git writes raw NGINX."""
    release = stack.one(RELEASE, "spitikos-edge-release").values
    assert release["version"] == "2.6.7"
    values = release["values"]["nginxGateway"]
    assert values["snippets"] == {"enable": False} and values["snippetsFilters"] == {"enable": False}
    assert not values.get("gwAPIExperimentalFeatures", {}).get("enable")


def test_every_resource_hangs_under_the_platform(stack):
    """Every child is parented to its component (STYLE): no resource escapes to the stack's root."""
    platform = stack.one("spitikos:platform:Platform", "spitikos")
    for reg in stack.all():
        if reg.urn != platform.urn:
            assert reg.parent in stack.registrations, f"{reg.name} is not parented to a component"


def test_every_child_is_named_after_its_component(stack):
    """Children are named from the component's `name` (STYLE): a name is a URN, and another one is
    a deleted resource and a new one on `pulumi up`."""
    children = [r for r in stack.all() if r.parent in stack.registrations]
    assert len(children) > 100
    for child in children:
        assert child.name.startswith(stack.registrations[child.parent].name), child.urn


def test_every_object_the_program_writes_says_it_is_the_platforms(stack):
    """`kubectl get -l app.kubernetes.io/managed-by=pulumi` finds them, and no one takes one for an app's."""
    from components.kube import PLATFORM_LABELS

    # Not the patch that only makes sure an application's namespace exists for its backups (Argo CD's).
    objects = [
        r
        for r in stack.all()
        if r.type.startswith("kubernetes:")
        and "helm.sh" not in r.type
        and r.type != "kubernetes:core/v1:NamespacePatch"
        and not r.type.startswith("kubernetes:yaml/")  # the Gateway API's CRDs: upstream's files, unchanged
    ]
    assert len(objects) > 30
    for obj in objects:
        assert PLATFORM_LABELS.items() <= obj.values["metadata"].get("labels", {}).items(), obj.urn


def test_argo_cds_projects_and_root_application_are_where_argo_cd_reads_them(stack):
    """Argo CD reads AppProjects and Applications in its own namespace only; elsewhere they do nothing."""
    written = [*stack.kubernetes("AppProject"), *stack.kubernetes("Application")]
    assert sorted(r.values["metadata"]["name"] for r in written) == ["default", "root", "root"]
    assert {r.values["metadata"]["namespace"] for r in written} == {"argocd"}


def test_a_misspelt_setting_stops_the_program_naming_it_and_the_closest_key():
    config = {**stack_config(), "spitikos:nodehost": "10.0.0.200"}
    with pytest.raises(SettingsError) as raised:
        run_main(config)
    assert "spitikos:nodehost: is not a setting of this stack: did you mean 'nodeHost'?" in raised.value.problems


def test_the_docs_write_the_kubeconfig_readable_by_its_owner_only():
    from conftest import ROOT

    for doc in (ROOT / "README.md", ROOT / "docs" / "operations.md"):
        text = doc.read_text()
        writes = [i for i in range(len(text)) if text.startswith("pulumi stack output kubeconfig --show-secrets >", i)]
        assert writes, doc.name
        for at in writes:
            block = text[text.rfind("```", 0, at) : at]
            assert "umask 077" in block, f"{doc.name}: cluster-admin credentials written without umask 077"


def test_every_kubernetes_object_name_is_one_the_api_server_accepts(stack):
    """Lower-case DNS-1123 names: the mocks accept any string, the API server refuses the object."""
    name = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
    named = [r for r in stack.all() if r.type.startswith("kubernetes:") and isinstance(r.values.get("metadata"), dict)]
    assert len(named) > 20
    for reg in named:
        for key in ("name", "namespace"):
            value = reg.values["metadata"].get(key)
            assert value is None or name.fullmatch(value), f"{reg.urn}: {key} {value!r}"
    pods = [r.values["spec"]["template"]["spec"] for r in named if "template" in r.values.get("spec", {})]
    assert pods
    for pod in pods:
        for container in pod["containers"]:
            assert re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", container["name"]), container["name"]


def test_nginx_refuses_external_name_backends(stack):
    """An ExternalName Service in an app's chart would publish any address (argocd-server, Vault).
    NGF 2.6.7 resolves one only with a DNS resolver in the NginxProxy (graph/backend_refs.go:
    "ExternalName service requires DNS resolver configuration"): none is set, whatever else is."""
    nginx = stack.one(RELEASE, "spitikos-edge-release").values["values"]["nginx"]
    assert "dnsResolver" not in nginx.get("config", {})


def test_keda_starts_without_internet_and_keeps_its_crds(stack):
    values = stack.one(RELEASE, "spitikos-keda-release").values["values"]
    assert values["image"]["pullPolicy"] == "IfNotPresent"
    for component in ("keda", "metricsApiServer", "webhooks"):
        image = values["image"][component]
        reference = f"{image['registry']}/{image['repository']}:{image['tag']}"
        # the chart's own version (its appVersion): a chart bump without new images fails here
        version = re.escape(versions.KEDA_CHART)
        assert re.fullmatch(rf"ghcr\.io/kedacore/[a-z-]+:{version}@sha256:[0-9a-f]{{64}}", reference), reference
    assert values["crds"]["install"] is True
    assert values["crds"]["additionalAnnotations"] == {"helm.sh/resource-policy": "keep"}


def test_the_platform_runs_its_own_and_argo_cds_images_by_digest(stack):
    digest = r"@sha256:[0-9a-f]{64}$"
    images = [
        c["image"] for d in stack.kubernetes("Deployment") for c in d.values["spec"]["template"]["spec"]["containers"]
    ]
    assert {i.split("/")[-1].split(":")[0] for i in images} == {"redis", "cloudflared"}
    assert all(re.search(digest, i) for i in images), images
    values = stack.one(RELEASE, "spitikos-argocd-release").values["values"]
    argocd, redis = values["global"]["image"], values["redis"]["image"]
    assert f"{argocd['repository']}:{argocd['tag']}" == versions.ARGO_CD_IMAGE
    assert f"{redis['repository']}:{redis['tag']}" == versions.ARGO_CD_REDIS_IMAGE
    assert re.search(digest, argocd["tag"]) and re.search(digest, redis["tag"])
    assert values["redis"]["resources"], "the pin keeps the Redis values beside it"


# The first release of each line with no known critical vulnerability left (release notes):
# Redis 8.2.3 fixed CVE-2025-62507, 8.2.6 and 8.2.8 remote code execution, 8.2.10 cluster and ACL
# issues (2026-09-18); cloudflared 2026.8.0 a gRPC vulnerability and request-path handling.
PATCHED = {"redis": (8, 2, 10), "cloudflared": (2026, 8, 0)}


def release_numbers(image: str) -> tuple[int, ...]:
    tag = image.split("@")[0].rsplit(":", 1)[1]
    return tuple(int(n) for n in re.match(r"v?(\d+)\.(\d+)\.(\d+)", tag).groups())


def test_redis_and_cloudflared_run_releases_past_their_known_critical_fixes(stack):
    values = stack.one(RELEASE, "spitikos-argocd-release").values["values"]["redis"]["image"]
    images = [
        c["image"] for d in stack.kubernetes("Deployment") for c in d.values["spec"]["template"]["spec"]["containers"]
    ]
    images.append(f"{values['repository']}:{values['tag']}")  # Argo CD's own Redis
    assert len(images) == 3
    for image in images:
        name = image.split("@")[0].rsplit(":", 1)[0].split("/")[-1]
        assert release_numbers(image) >= PATCHED[name], f"{image} is older than {PATCHED[name]}"


DNS_RULE = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ],
    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
}
API_RULES = [
    {"to": [{"ipBlock": {"cidr": "10.43.0.1/32"}}], "ports": [{"protocol": "TCP", "port": 443}]},
    {"ports": [{"protocol": "TCP", "port": 6443}]},
]


def public(*ports):
    """Rules to these TCP ports on public addresses; a rule that also reaches a private one fails."""
    return {
        "to": [
            {
                "ipBlock": {
                    "cidr": "0.0.0.0/0",
                    "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16"],
                }
            },
            {"ipBlock": {"cidr": "::/0", "except": ["fc00::/7", "fe80::/10"]}},
        ],
        "ports": [{"protocol": "TCP", "port": p} for p in ports],
    }


def test_every_platform_namespace_sends_only_what_it_needs(stack):
    """A compromised platform pod reaches only its own peers: Redis dials nothing; cloudflared the
    edge, NGINX and the node's SSH and API; NGINX its backends but not Redis or KEDA; KEDA the API
    and Prometheus; Argo CD the API, its pods and GitHub (SSH, HTTPS) on public addresses."""
    egress = egress_policies(stack)
    assert set(egress) == {"redis", "cloudflared", "nginx-gateway", "keda", "keda-http", "argocd", "volsync-system"}
    assert egress["volsync-system"] == API_RULES, "VolSync's controller calls the API server alone"
    assert egress["redis"] == []
    assert egress["cloudflared"] == [
        DNS_RULE,
        public(7844, 443),
        {
            "to": [
                {
                    "namespaceSelector": {
                        "matchExpressions": [
                            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["nginx-gateway"]}
                        ]
                    }
                }
            ],
            "ports": [{"protocol": "TCP", "port": 443}],
        },
        # pi5 publishes the node's SSH and the Kubernetes API through the tunnel (behind Access)
        {"to": [{"ipBlock": {"cidr": "10.0.0.200/32"}}], "ports": [{"protocol": "TCP", "port": 22}]},
        *API_RULES,
    ]
    nginx = egress["nginx-gateway"]
    assert nginx[:3] == [DNS_RULE, *API_RULES]
    (backends,) = nginx[3:]
    (expression,) = backends["to"][0]["namespaceSelector"]["matchExpressions"]
    assert expression["operator"] == "NotIn" and "ports" not in backends
    assert {"redis", "keda", "cloudflared", "kube-system"} <= set(expression["values"])
    # argocd-server and the HTTP interceptor are backends; NGINX's agents dial the control plane in
    # their own namespace.
    assert not {"argocd", "api", "nginx-gateway", "keda-http"} & set(expression["values"]), "a backend refused"
    same_namespace = {"to": [{"podSelector": {}}]}

    def pods_in(*namespaces: str, port: int | None = None) -> dict:
        selector = {
            "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": [*namespaces]}]
        }
        return {
            "to": [{"namespaceSelector": selector}],
            **({"ports": [{"protocol": "TCP", "port": port}]} if port else {}),
        }

    prometheus, http_scaler = pods_in("monitoring", port=9090), pods_in("keda-http", port=9090)
    assert egress["keda"] == [DNS_RULE, *API_RULES, same_namespace, prometheus, http_scaler]
    # The interceptor forwards to the applications that scale from zero (pi5: the api and the
    # homepage), on their own ports, and to no other namespace; the scaler reads its admin port.
    admin = {"to": [{"podSelector": {}}], "ports": [{"protocol": "TCP", "port": 9090}]}
    assert egress["keda-http"] == [DNS_RULE, *API_RULES, admin, pods_in("api", "homepage")]
    assert egress["argocd"] == [DNS_RULE, *API_RULES, same_namespace, public(22, 443)]


def test_a_fresh_stack_without_ssh_or_api_hostnames_lets_cloudflared_reach_neither(fresh):
    rules = egress_policies(fresh)["cloudflared"]
    assert len(rules) == 3 and not any("6443" in str(r) or "'port': 22}" in str(r) for r in rules)
