"""The in-cluster platform components, each built alone on a stand-in cluster provider."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components import versions
from components.argocd import SERVER_POD, SERVER_SERVICE, ArgoCd, ArgoCdArgs, RepositoryCredential, RootSource
from components.ingress_nginx import IngressNginx, IngressNginxArgs
from components.keda import Keda, KedaArgs
from components.redis import Redis, RedisArgs
from spitikos.engine import plain, resolve, run

RELEASE = "kubernetes:helm.sh/v3:Release"
CENTRAL = "git@github.com:spitikos/spitikos.git"
CHARTS = "git@github.com:spitikos/charts.git"
DEPLOY_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nDEPLOY-KEY-FOR-TEST\n-----END OPENSSH PRIVATE KEY-----"


def program():
    provider = k8s.Provider("cluster", kubeconfig=pulumi.Output.secret("stand-in"))
    ingress = IngressNginx("ingress", IngressNginxArgs(provider=provider))
    return {
        "ingress": ingress,
        "redis": Redis("redis", RedisArgs(provider=provider)),
        "keda": Keda("keda", KedaArgs(provider=provider)),
        "argocd": ArgoCd(
            "argocd",
            ArgoCdArgs(
                provider=provider,
                hostname="argocd.spitikos.dev",
                root=RootSource(CENTRAL, "argocd/apps"),
                owner="spitikos",
                ingress_controller=ingress.release,
                repositories=[
                    RepositoryCredential("spitikos", CENTRAL, pulumi.Output.secret(DEPLOY_KEY)),
                    RepositoryCredential("charts", CHARTS, pulumi.Output.secret(DEPLOY_KEY)),
                ],
                platform_namespaces=["redis", "ingress-nginx", "kube-*"],
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


def test_ingress_nginx_chart_serves_https_with_forwarded_headers_and_metrics(rec):
    release = rec.one(RELEASE, "ingress-release").values
    assert (release["chart"], release["version"]) == ("ingress-nginx", versions.INGRESS_NGINX_CHART)
    assert release["repositoryOpts"]["repo"] == "https://kubernetes.github.io/ingress-nginx"
    assert release["namespace"] == "ingress-nginx"
    controller = release["values"]["controller"]
    assert controller["config"]["use-forwarded-headers"] == "true"
    assert controller["service"]["enableHttps"] is True and controller["service"]["type"] == "ClusterIP"
    assert controller["metrics"]["enabled"] is True
    assert controller["ingressClassResource"] == {"name": "nginx", "default": True}
    assert rec.result["ingress"].service_url == "https://ingress-nginx-controller.ingress-nginx.svc.cluster.local:443"
    # The service name in that address is fixed by fullnameOverride.
    assert release["values"]["fullnameOverride"] == "ingress-nginx"


def test_keda_chart_sizes_operator_metrics_server_and_webhooks(rec):
    release = rec.one(RELEASE, "keda-release").values
    assert (release["chart"], release["version"], release["namespace"]) == ("keda", versions.KEDA_CHART, "keda")
    sized = release["values"]["resources"]
    for part in ("operator", "metricServer", "webhooks"):
        assert set(sized[part]) == {"requests", "limits"}
        assert sized[part]["limits"]["memory"].endswith("Mi")


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
    assert (release["chart"], release["version"], release["namespace"]) == (
        "argo-cd",
        versions.ARGO_CD_CHART,
        "argocd",
    )
    assert release["repositoryOpts"]["repo"] == versions.ARGO_CD_REPO
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


def test_argocd_ui_ingress_waits_for_nginx_while_the_release_does_not(rec):
    """NGINX's admission webhook would reject an Ingress made mid-install, and `atomic` would then
    roll back all of Argo CD: the Ingress is its own resource, after NGINX; the release is not."""
    ingress = rec.one("kubernetes:networking.k8s.io/v1:Ingress", "argocd-ingress")
    nginx = rec.one(RELEASE, "ingress-release")
    assert nginx.urn in rec.ancestors_closure(ingress.urn)
    assert nginx.urn not in rec.ancestors_closure(rec.one(RELEASE, "argocd-release").urn)
    assert rec.one(RELEASE, "argocd-release").values["values"]["server"]["ingress"] == {"enabled": False}
    rule = ingress.values["spec"]["rules"][0]
    assert rule["host"] == "argocd.spitikos.dev"
    path = rule["http"]["paths"][0]
    # The whole host goes to the server; the API server refuses any other spelling of `Prefix`.
    assert (path["path"], path["pathType"]) == ("/", "Prefix")
    assert path["backend"]["service"] == {"name": "argocd-server", "port": {"name": "http"}}
    assert ingress.values["spec"]["ingressClassName"] == "nginx"


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
    assert names == ["argocd", "ingress-nginx", "keda", "redis"]


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
    and a child waits for its parent, so KEDA's release waits for ingress-nginx's though only the
    KEDA component names the ingress component."""

    def keda_after_ingress():
        provider = k8s.Provider("cluster", kubeconfig=pulumi.Output.secret("stand-in"))
        ingress = IngressNginx("ingress", IngressNginxArgs(provider=provider))
        Keda("keda", KedaArgs(provider=provider), opts=pulumi.ResourceOptions(depends_on=[ingress]))

    recording = run(keda_after_ingress)
    ingress_release = recording.one(RELEASE, "ingress-release")
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
    assert len(releases) == 3
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
