"""The in-cluster platform components, each built alone on a stand-in cluster provider."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components import gateway, versions
from components.argocd import (
    SERVER_POD,
    SERVER_SERVICE,
    ArgoCd,
    ArgoCdArgs,
    GatewayRef,
    RepositoryCredential,
    RootSource,
)
from components.charts import chart_name
from components.gateway import Edge, EdgeArgs
from components.keda import Keda, KedaArgs
from components.keda_http import READINESS_TIMEOUT_SECONDS, KedaHttp, KedaHttpArgs
from components.redis import Redis, RedisArgs
from spitikos.engine import plain, resolve, run

RELEASE = "kubernetes:helm.sh/v3:Release"
CENTRAL = "git@github.com:spitikos/spitikos.git"
CHARTS = "git@github.com:spitikos/charts.git"
OWNERS = {"argocd.spitikos.dev": "argocd"}
DEPLOY_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nDEPLOY-KEY-FOR-TEST\n-----END OPENSSH PRIVATE KEY-----"


def program():
    provider = k8s.Provider("cluster", kubeconfig=pulumi.Output.secret("stand-in"))
    edge = Edge("edge", EdgeArgs(provider=provider, hostnames=["argocd.spitikos.dev"], route_namespaces=OWNERS))
    return {
        "edge": edge,
        "redis": Redis("redis", RedisArgs(provider=provider)),
        "keda": Keda("keda", KedaArgs(provider=provider)),
        # A stand-in for the Gateway API's CRDs (components/gateway.py once the edge is a Gateway).
        "keda_http": KedaHttp(
            "keda-http",
            KedaHttpArgs(
                provider=provider,
                edge_namespace="nginx-gateway",
                app_namespaces=["api", "homepage"],
                gateway_api=k8s.core.v1.ConfigMap("gateway-api-crds", opts=pulumi.ResourceOptions(provider=provider)),
            ),
        ),
        "argocd": ArgoCd(
            "argocd",
            ArgoCdArgs(
                provider=provider,
                hostname="argocd.spitikos.dev",
                root=RootSource(CENTRAL, "argocd/apps"),
                owner="spitikos",
                gateway=GatewayRef("nginx-gateway", "spitikos", gateway.DATA_PLANE_POD, edge.gateway),
                repositories=[
                    RepositoryCredential("spitikos", CENTRAL, pulumi.Output.secret(DEPLOY_KEY)),
                    RepositoryCredential("charts", CHARTS, pulumi.Output.secret(DEPLOY_KEY)),
                ],
                platform_namespaces=["redis", "nginx-gateway", "kube-*"],
            ),
        ),
    }


@pytest.fixture(scope="module")
def rec():
    return run(program)


def test_every_kubernetes_object_uses_the_cluster_provider(rec):
    provider = rec.one("pulumi:providers:kubernetes", "cluster")
    objects = [r for r in rec.all() if r.type.startswith("kubernetes:")]
    assert len(objects) > 10
    for obj in objects:
        assert obj.provider.startswith(provider.urn), obj.urn


def test_nginx_gateway_fabric_is_the_vendored_chart_with_nginx_behind_a_cluster_ip(rec):
    release = rec.one(RELEASE, "edge-release").values
    assert (chart_name(release), release["version"]) == ("nginx-gateway-fabric", versions.NGINX_GATEWAY_FABRIC_CHART)
    assert release["chart"] == f"./charts/vendor/nginx-gateway-fabric-{versions.NGINX_GATEWAY_FABRIC_CHART}"
    assert "repositoryOpts" not in release, "the vendored chart, not one downloaded at deploy time"
    assert release["namespace"] == "nginx-gateway"
    values = release["values"]
    assert values["nginx"]["service"] == {"type": "ClusterIP"}, "no LoadBalancer, no node port"
    assert values["nginxGateway"]["snippets"] == {"enable": False}
    assert values["nginxGateway"]["productTelemetry"] == {"enable": False}
    assert rec.result["edge"].service_url == "https://spitikos-nginx.nginx-gateway.svc.cluster.local:443"


def test_keda_chart_sizes_operator_and_metrics_server_and_runs_no_webhooks(rec):
    release = rec.one(RELEASE, "keda-release").values
    assert (chart_name(release), release["version"], release["namespace"]) == ("keda", versions.KEDA_CHART, "keda")
    sized = release["values"]["resources"]
    for part in ("operator", "metricServer"):
        assert set(sized[part]) == {"requests", "limits"}
        assert sized[part]["limits"]["memory"].endswith("Mi")
    # Their 32Mi go to the HTTP add-on (docs/decisions/0007); they failed open anyway.
    assert release["values"]["webhooks"] == {"enabled": False} and "webhooks" not in sized


def test_redis_uses_the_official_pinned_image_not_bitnami(rec):
    deployment = rec.one("kubernetes:apps/v1:Deployment", "redis-deployment").values
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == versions.REDIS_IMAGE
    assert container["image"].startswith("docker.io/library/redis:") and ":latest" not in container["image"]
    assert "bitnami" not in str(rec.registrations)


def test_redis_is_a_password_protected_cache_with_probes(rec):
    config = rec.one("kubernetes:core/v1:ConfigMap", "redis-config").values["data"]["redis.conf"]
    assert "maxmemory 128mb" in config and "maxmemory-policy allkeys-lru" in config
    assert "include /etc/redis/auth/auth.conf" in config
    secret = rec.one("kubernetes:core/v1:Secret", "redis-auth")
    assert secret.input_is_secret("stringData")
    password, password_is_secret = resolve(rec.result["redis"].password)
    assert password_is_secret
    assert secret.values["stringData"] == {
        "password": password,
        "auth.conf": f"user default on >{password} ~* &* +@all -@dangerous +info\n",
    }
    container = rec.one("kubernetes:apps/v1:Deployment", "redis-deployment").values["spec"]["template"]["spec"][
        "containers"
    ][0]
    # The password never reaches a command line, where `ps` would show it.
    assert password not in str(container["command"]) and "args" not in container
    assert container["readinessProbe"]["exec"]["command"][-1].startswith("redis-cli")
    assert "livenessProbe" in container
    assert rec.result["redis"].address == "redis.redis.svc.cluster.local:6379"


def test_redis_data_lives_on_a_protected_local_path_claim(rec):
    claim = rec.one("kubernetes:core/v1:PersistentVolumeClaim", "redis-data")
    assert claim.protect
    assert claim.values["spec"]["storageClassName"] == "local-path"
    volumes = rec.one("kubernetes:apps/v1:Deployment", "redis-deployment").values["spec"]["template"]["spec"]["volumes"]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "redis-data"}} in volumes


def test_argocd_chart_is_trimmed_for_one_pi(rec):
    release = rec.one(RELEASE, "argocd-release").values
    assert (chart_name(release), release["version"], release["namespace"]) == (
        "argo-cd",
        versions.ARGO_CD_CHART,
        "argocd",
    )
    assert release["chart"] == f"./charts/vendor/argo-cd-{versions.ARGO_CD_CHART}"
    assert "repositoryOpts" not in release, "the vendored chart, not one downloaded at deploy time"
    # The release name makes the chart's object names, which the Ingress and the server's policy name.
    assert release["name"] == "argocd"
    assert (SERVER_SERVICE, SERVER_POD["app.kubernetes.io/instance"]) == ("argocd-server", "argocd")
    values = release["values"]
    assert values["dex"]["enabled"] is False and values["redis-ha"]["enabled"] is False
    for part in ("controller", "server", "repoServer", "applicationSet"):
        assert values[part]["replicas"] == 1
    assert values["global"]["domain"] == "argocd.spitikos.dev"


def test_argocd_serves_plain_http_behind_nginx_with_only_the_admin_login_and_no_exec_or_badges(rec):
    """argocd-cm and argocd-cmd-params-cm (argo-helm 10.1.1 `configs.cm`, `configs.params`): the admin
    login the exported password is for; no terminal into pods; no status badge telling anyone the
    state of an application; and plain HTTP behind NGINX, which ends TLS (else a redirect loop)."""
    configs = rec.one(RELEASE, "argocd-release").values["values"]["configs"]
    assert configs["cm"] == {
        "exec.enabled": False,
        "admin.enabled": True,
        "statusbadge.enabled": False,
        "application.sync.impersonation.enabled": True,
    }
    assert configs["params"] == {"server.insecure": True}


def test_argocd_admin_password_is_generated_and_only_its_hash_reaches_the_chart(rec):
    release = rec.one(RELEASE, "argocd-release")
    password = rec.one("random:index/randomPassword:RandomPassword", "argocd-admin-password")
    chart_secret = release.values["values"]["configs"]["secret"]
    assert chart_secret["argocdServerAdminPassword"] == password.state["bcryptHash"]["value"]
    # The hash is a secret leaf of the values: hidden in previews and state, the rest reviewable.
    assert release.input_is_secret("values", "configs", "secret", "argocdServerAdminPassword")
    assert not release.input_is_secret("values", "configs", "cm")
    plain_password, secret = resolve(rec.result["argocd"].admin_password)
    assert secret and plain_password not in str(release.values)


def test_argocd_webhook_secret_is_generated_secret_and_given_to_the_chart(rec):
    webhook_secret, secret = resolve(rec.result["argocd"].webhook_secret)
    assert secret and len(webhook_secret) >= 32
    release = rec.one(RELEASE, "argocd-release")
    assert release.values["values"]["configs"]["secret"]["githubSecret"] == webhook_secret
    assert release.input_is_secret("values", "configs", "secret", "githubSecret")


def test_argocd_repository_secrets_carry_the_deploy_keys(rec):
    for name, url in (("spitikos", CENTRAL), ("charts", CHARTS)):
        repo = rec.one("kubernetes:core/v1:Secret", f"argocd-repo-{name}")
        assert repo.values["metadata"]["labels"]["argocd.argoproj.io/secret-type"] == "repository"
        assert repo.values["stringData"] == {"type": "git", "name": name, "url": url, "sshPrivateKey": DEPLOY_KEY}
        assert repo.input_is_secret("stringData")


def test_root_application_watches_argocd_apps_after_the_crds_exist(rec):
    root = rec.one("kubernetes:argoproj.io/v1alpha1:Application", "argocd-root-application")
    spec = root.values["spec"]
    assert spec["source"] == {"repoURL": CENTRAL, "targetRevision": "main", "path": "argocd/apps"}
    assert spec["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    # A sync applies only what changed: a Pi's API server is not re-sent every Application.
    assert spec["syncPolicy"]["syncOptions"] == ["ApplyOutOfSyncOnly=true"]
    assert spec["project"] == "root"
    assert spec["destination"] == {"server": "https://kubernetes.default.svc", "namespace": "argocd"}
    assert rec.one(RELEASE, "argocd-release").urn in root.dependencies


def test_root_application_cannot_manage_what_pulumi_manages(rec):
    projects = {r.values["metadata"]["name"]: r.values["spec"] for r in rec.kubernetes("AppProject")}
    assert sorted(projects) == ["default", "root"]
    root = projects["root"]
    assert root["sourceRepos"] == [CENTRAL]
    assert root["namespaceResourceWhitelist"] == [{"group": "argoproj.io", "kind": "Application"}]
    assert root["clusterResourceWhitelist"] == []
    assert root["destinations"] == [{"server": "https://kubernetes.default.svc", "namespace": "argocd"}]
    for project in rec.kubernetes("AppProject"):
        assert rec.one(RELEASE, "argocd-release").urn in project.dependencies


def test_argocd_ui_route_waits_for_the_gateway_while_the_release_does_not(rec):
    """The route is a kind the Gateway API's CRDs define: it waits for them and the Gateway; Argo
    CD's release, on the deploy's critical path, waits for neither."""
    route = rec.one("kubernetes:gateway.networking.k8s.io/v1:HTTPRoute", "argocd-route")
    gateway_urn = rec.one("kubernetes:gateway.networking.k8s.io/v1:Gateway", "edge-gateway").urn
    assert gateway_urn in rec.ancestors_closure(route.urn)
    assert rec.one("kubernetes:yaml/v2:ConfigGroup", "edge-gateway-api-crds").urn in rec.ancestors_closure(route.urn)
    release = rec.one(RELEASE, "argocd-release")
    assert gateway_urn not in rec.ancestors_closure(release.urn)
    assert release.values["values"]["server"]["ingress"] == {"enabled": False}
    spec = route.values["spec"]
    assert spec["hostnames"] == ["argocd.spitikos.dev"]
    assert spec["parentRefs"] == [{"name": "spitikos", "namespace": "nginx-gateway"}]
    # The whole host, `/api/webhook` included, goes to the server's plain-HTTP Service port.
    assert spec["rules"] == [{"backendRefs": [{"name": "argocd-server", "port": 80}]}]


def test_argocd_refuses_unsigned_webhooks_of_every_provider_it_does_not_use(rec):
    secret = rec.one(RELEASE, "argocd-release").values["values"]["configs"]["secret"]
    release = rec.one(RELEASE, "argocd-release")
    for key in ("githubSecret", "gitlabSecret", "bitbucketServerSecret", "gogsSecret", "bitbucketUUID"):
        assert secret[key] and len(secret[key]) >= 32, key
    # Azure DevOps: basic auth, checked only when both halves are set (argocd-secret.yaml, chart 10.1.1).
    azure = secret["azureDevops"]
    assert set(azure) == {"username", "password"}
    for part in ("username", "password"):
        assert azure[part] and len(azure[part]) >= 32, f"azureDevops.{part}"
    values = [secret[k] for k in ("githubSecret", "gitlabSecret", "bitbucketServerSecret", "gogsSecret")]
    values += [azure["username"], azure["password"]]
    assert len(set(values)) == 6, "each provider has its own secret"
    for key in ("githubSecret", "gitlabSecret", "bitbucketServerSecret", "gogsSecret"):
        assert release.input_is_secret("values", "configs", "secret", key), key
    for part in ("username", "password"):
        assert release.input_is_secret("values", "configs", "secret", "azureDevops", part), part


def test_each_component_lives_in_its_own_namespace(rec):
    names = sorted(r.values["metadata"]["name"] for r in rec.kubernetes("Namespace"))
    assert names == ["argocd", "keda", "keda-http", "nginx-gateway", "redis"]


def test_rotating_the_admin_password_revokes_older_sessions():
    def admin(rotated_at):
        def program():
            provider = k8s.Provider("cluster", kubeconfig=pulumi.Output.secret("stand-in"))
            root = RootSource(CENTRAL, "argocd/apps")
            ArgoCd("argocd", ArgoCdArgs(provider, "argocd.a.b", root, "o", admin_password_rotated_at=rotated_at))

        rec = run(program)
        mtime = rec.one(RELEASE, "argocd-release").values["values"]["configs"]["secret"]
        password = rec.one("random:index/randomPassword:RandomPassword", "argocd-admin-password")
        return mtime["argocdServerAdminPasswordMtime"], password.values.get("keepers")

    assert admin("") == ("2026-01-01T00:00:00Z", None)
    mtime, keepers = admin("2026-12-01T09:30:00Z")
    assert mtime == "2026-12-01T09:30:00Z", "sessions issued before the rotation must be refused"
    assert keepers == {"rotatedAt": "2026-12-01T09:30:00Z"}, "a new time must generate a new password"


def test_a_depends_on_a_component_makes_every_child_wait_for_the_components_children():
    """What a real `pulumi up` does: the SDK expands a dependency on a component into its children,
    and a child waits for its parent, so KEDA's release waits for NGF's though only the KEDA
    component names the edge component."""

    def keda_after_ingress():
        provider = k8s.Provider("cluster", kubeconfig=pulumi.Output.secret("stand-in"))
        edge = Edge("edge", EdgeArgs(provider=provider, hostnames=["a.b"], route_namespaces={}))
        Keda("keda", KedaArgs(provider=provider), opts=pulumi.ResourceOptions(depends_on=[edge]))

    recording = run(keda_after_ingress)
    ingress_release = recording.one(RELEASE, "edge-release")
    keda_release = recording.one(RELEASE, "keda-release")
    assert ingress_release.urn in recording.one("spitikos:autoscaling:Keda").dependencies
    assert ingress_release.urn not in keda_release.dependencies
    assert ingress_release.urn in recording.ancestors_closure(keda_release.urn)
    assert recording.one("kubernetes:core/v1:Namespace", "keda-namespace").urn in recording.ancestors_closure(
        keda_release.urn
    )


def test_without_a_depends_on_the_releases_wait_for_the_cluster_only(rec):
    provider = rec.one("pulumi:providers:kubernetes", "cluster").urn
    releases = rec.of_type(RELEASE)
    assert len(releases) == 4
    for release in releases:
        waits_for = rec.ancestors_closure(release.urn)
        assert provider in waits_for
        assert not waits_for & {r.urn for r in releases}, f"{release.name} waits for another release"


def test_an_apps_env_secret_is_secret_even_when_every_value_given_is_plain():
    from components.apps import AppNamespace, AppNamespaceArgs

    def app():
        provider = k8s.Provider("cluster", kubeconfig=pulumi.Output.secret("stand-in"))
        env = {"REDIS_ADDRESS": "redis.redis.svc.cluster.local:6379"}
        AppNamespace("api", AppNamespaceArgs(provider=provider, namespace="api", env=env))

    secret = run(app).one("kubernetes:core/v1:Secret", "api-env")
    assert secret.values["metadata"]["name"] == "platform-env"
    assert secret.values["stringData"] == {"REDIS_ADDRESS": "redis.redis.svc.cluster.local:6379"}
    assert secret.input_is_secret("stringData")


def test_a_new_redis_password_restarts_the_pod_which_reads_it_only_at_start(rec):
    import hashlib

    template = rec.one("kubernetes:apps/v1:Deployment", "redis-deployment").values["spec"]["template"]
    password = plain(rec.one("random:index/randomPassword:RandomPassword", "redis-password").state["result"])
    checksum = template["metadata"]["annotations"]["checksum/auth"]
    assert checksum == hashlib.sha256(password.encode()).hexdigest()
    assert password not in str(template), "only the hash is in the pod template, never the password"


def test_applications_cannot_wipe_or_reconfigure_redis(rec):
    """The password apps hold logs in as the default user, whose ACL leaves out Redis's
    @dangerous commands (FLUSHALL, FLUSHDB, CONFIG, DEBUG, KEYS, SHUTDOWN, ...)."""
    auth = rec.one("kubernetes:core/v1:Secret", "redis-auth").values["stringData"]["auth.conf"]
    rules = auth.split()
    assert rules[:3] == ["user", "default", "on"] and "requirepass" not in auth
    assert rules.index("-@dangerous") > rules.index("+@all"), "the later rule wins"
    assert not [r for r in rules if r.startswith("+") and r.lower() in ("+flushall", "+flushdb", "+config", "+@admin")]
    assert set(rules[-3:]) == {"+@all", "-@dangerous", "+info"}
    assert auth.count("\n") == 1, "one ACL line: a newline in it would start another directive"


# --- KEDA's HTTP add-on (docs/decisions/0007-request-based-scale-to-zero.md) ---------------------


def test_the_http_add_on_holds_a_request_60_seconds_at_most_with_no_total_deadline(rec):
    release = rec.one(RELEASE, "keda-http-release").values
    assert (chart_name(release), release["version"], release["namespace"]) == (
        "keda-add-ons-http", versions.KEDA_ADD_ONS_HTTP_CHART, "keda-http"
    )  # fmt: skip
    interceptor = release["values"]["interceptor"]
    # The chart's default (unset: KEDA_HTTP_READINESS_TIMEOUT 0) would hold a request for ever.
    assert interceptor["readinessTimeout"] == f"{READINESS_TIMEOUT_SECONDS}s" and READINESS_TIMEOUT_SECONDS < 100
    # A total deadline would cut the api's gRPC streams; the old variable names would override ours.
    assert not {"requestTimeout", "extraEnvs"} & set(interceptor) and "waitTimeout" not in interceptor["replicas"]


def test_the_http_add_on_runs_one_interceptor_one_scaler_and_no_operator(rec):
    values = rec.one(RELEASE, "keda-http-release").values["values"]
    assert values["operator"] == {"replicas": 0}, "the operator would write every namespace's ScaledObjects"
    assert values["interceptor"]["replicas"] == {"min": 1, "max": 1} and values["scaler"]["replicas"] == 1
    pod = values["podSecurityContext"]
    assert pod["runAsNonRoot"] is True and pod["seccompProfile"] == {"type": "RuntimeDefault"}


def test_each_opted_in_namespace_may_route_to_the_interceptor_service_alone(rec):
    crds = rec.one("kubernetes:core/v1:ConfigMap", "gateway-api-crds")
    grants = {
        g.values["metadata"]["name"]: g for g in rec.of_type("kubernetes:gateway.networking.k8s.io/v1:ReferenceGrant")
    }
    assert set(grants) == {"routes-from-api", "routes-from-homepage"}
    for app in ("api", "homepage"):
        grant = grants[f"routes-from-{app}"]
        assert grant.values["metadata"]["namespace"] == "keda-http"
        assert grant.values["spec"] == {
            "from": [
                {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": app},
                {"group": "gateway.networking.k8s.io", "kind": "GRPCRoute", "namespace": app},
            ],
            "to": [{"group": "", "kind": "Service", "name": "keda-add-ons-http-interceptor-proxy"}],
        }
        assert crds.urn in rec.ancestors_closure(grant.urn), "created before the Gateway API's CRDs exist"


def test_only_the_edge_reaches_the_interceptors_proxy_port(rec):
    policy = rec.one("kubernetes:networking.k8s.io/v1:NetworkPolicy", "keda-http-network-policy").values["spec"]
    proxy = [r for r in policy["ingress"] if {"protocol": "TCP", "port": 8080} in r.get("ports", [])]
    (rule,) = proxy
    (peer,) = rule["from"]
    assert peer["namespaceSelector"]["matchExpressions"][0]["values"] == ["nginx-gateway"]
