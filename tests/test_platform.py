"""The in-cluster platform as the pi5 stack builds it: what each part promises, checked on the whole program."""

from __future__ import annotations

import json

from conftest import stack_config

from components.charts import chart_name
from components.platform import Platform
from spitikos.engine import is_secret

RELEASE = "kubernetes:helm.sh/v3:Release"


def release_values(recording, chart: str) -> dict:
    return next(r for r in recording.of_type(RELEASE) if chart_name(r.values) == chart).values["values"]


def test_every_helm_release_rolls_back_and_cleans_up_when_it_fails(stack):
    releases = stack.of_type(RELEASE)
    assert len(releases) == 5
    for release in releases:
        assert release.values["atomic"] is True, f"{release.name} is not atomic"
        assert release.values["cleanupOnFail"] is True, f"{release.name} leaves a failed upgrade's objects"


def test_argocds_web_terminal_stays_off(stack):
    cm = release_values(stack, "argo-cd")["configs"]["cm"]
    assert str(cm["exec.enabled"]).lower() == "false"


def test_pulumi_takes_over_argocds_own_default_project(stack):
    default = next(p for p in stack.kubernetes("AppProject") if p.values["metadata"]["name"] == "default")
    assert default.values["metadata"]["annotations"]["pulumi.com/patchForce"] == "true"


def test_every_project_open_to_all_namespaces_denies_each_platform_namespace(stack):
    """Argo CD's projects keep applications out of what Pulumi manages, whatever the projects are called."""
    platform = Platform.platform_namespaces()
    assert {"argocd", "nginx-gateway", "redis", "keda", "cloudflared", "kube-*"} <= set(platform)
    open_projects = 0
    for project in stack.kubernetes("AppProject"):
        destinations = project.values["spec"]["destinations"]
        for allowed in (d for d in destinations if d["namespace"] == "*"):
            open_projects += 1
            for ns in platform:
                denied = {"server": allowed["server"], "namespace": f"!{ns}"}
                assert denied in destinations, f"project {project.values['metadata']['name']} lets apps into {ns}"
    assert open_projects >= 1


def test_redis_replaces_its_pod_rather_than_run_two_writers_on_one_volume(stack):
    spec = stack.one("kubernetes:apps/v1:Deployment", "spitikos-redis-deployment").values["spec"]
    claim = stack.one("kubernetes:core/v1:PersistentVolumeClaim", "spitikos-redis-data").values["spec"]
    assert claim["accessModes"] == ["ReadWriteOnce"]
    assert spec["strategy"] == {"type": "Recreate"}


def test_the_gateway_serves_https_with_http2_on_its_own_certificate_for_every_hostname(stack):
    """The tunnel speaks HTTP/2 over TLS to NGINX (gRPC needs it): every listener is HTTPS on 443,
    HTTP/2 stays on (NGF's default; the NginxProxy's `disableHTTP2` is never set), and the
    certificate NGINX serves names every hostname."""
    gateway = stack.one("kubernetes:gateway.networking.k8s.io/v1:Gateway", "spitikos-edge-gateway").values
    listeners = gateway["spec"]["listeners"]
    assert {(lst["port"], lst["protocol"]) for lst in listeners} == {(443, "HTTPS")}
    assert {lst["hostname"] for lst in listeners} == set(json.loads(stack_config()["spitikos:hostnames"]))
    for lst in listeners:
        assert lst["tls"] == {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": "gateway-tls"}]}
    assert "disableHTTP2" not in release_values(stack, "nginx-gateway-fabric")["nginx"].get("config", {})
    cert = stack.one("tls:index/selfSignedCert:SelfSignedCert", "spitikos-edge-listener-cert").values
    assert set(cert["dnsNames"]) == {lst["hostname"] for lst in listeners}
    secret = stack.one("kubernetes:core/v1:Secret", "spitikos-edge-listener-tls")
    assert secret.values["metadata"]["name"] == "gateway-tls" and secret.values["type"] == "kubernetes.io/tls"
    assert secret.input_is_secret("stringData", "tls.key")


def test_the_apis_platform_env_carries_redis_own_address_and_password_as_secrets(stack):
    env = stack.one("kubernetes:core/v1:Secret", "spitikos-api-env")
    assert env.values["metadata"] == {**env.values["metadata"], "name": "platform-env", "namespace": "api"}
    service = stack.one("kubernetes:core/v1:Service", "spitikos-redis-service").values
    port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "redis")
    address = f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local:{port}"
    auth = next(s for s in stack.kubernetes("Secret") if s.values["metadata"]["name"] == "redis-auth")
    assert auth.values["metadata"]["namespace"] == "redis"
    assert env.values["stringData"]["REDIS_ADDRESS"] == address
    assert env.values["stringData"]["REDIS_PASSWORD"] == auth.values["stringData"]["password"]
    assert stack.exports["redisAddress"] == (address, False)
    string_data = env.inputs["stringData"]
    for key in ("REDIS_ADDRESS", "REDIS_PASSWORD"):
        assert is_secret(string_data) or is_secret(string_data[key]), f"{key} is not secret"
    assert len(env.values["stringData"]["REDIS_PASSWORD"]) >= 32
