"""Public ingress: the tunnel's routes, DNS, Access, and cloudflared in the cluster."""

from __future__ import annotations

import json

import pytest
from conftest import run_main, stack_config

from components import versions
from spitikos.engine import MOCK_TUNNEL_ID, MOCK_TUNNEL_TOKEN, exposed_strings

CONFIG = "cloudflare:index/zeroTrustTunnelCloudflaredConfig:ZeroTrustTunnelCloudflaredConfig"
DNS = "cloudflare:index/dnsRecord:DnsRecord"
ACCESS_APP = "cloudflare:index/zeroTrustAccessApplication:ZeroTrustAccessApplication"
NGINX = "https://ingress-nginx-controller.ingress-nginx.svc.cluster.local:443"
PUBLIC = ["spitikos.dev", "api.spitikos.dev", "argocd.spitikos.dev"]


@pytest.fixture(scope="module")
def with_private_hostnames():
    config = {
        **stack_config(),
        "spitikos:sshHostname": "ssh.spitikos.dev",
        "spitikos:kubeApiHostname": "k8s.spitikos.dev",
        "spitikos:accessEmails": json.dumps(["owner@spitikos.dev"]),
    }
    return run_main(config)


def ingresses(recording):
    return recording.one(CONFIG).values["config"]["ingresses"]


def test_the_tunnel_is_remotely_managed_with_a_generated_secret(stack):
    tunnel = stack.one("cloudflare:index/zeroTrustTunnelCloudflared:ZeroTrustTunnelCloudflared")
    assert tunnel.values["configSrc"] == "cloudflare"
    assert tunnel.values["accountId"] == stack_config()["spitikos:cloudflareAccountId"]
    assert tunnel.input_is_secret("tunnelSecret")
    generated = stack.one("random:index/randomBytes:RandomBytes")
    assert generated.values["length"] == 32
    assert tunnel.values["tunnelSecret"] == generated.state["base64"]["value"]


def test_each_hostname_has_exactly_one_route_and_one_cname_and_they_agree(stack):
    routes = [i["hostname"] for i in ingresses(stack) if "hostname" in i]
    records = {r.values["name"]: r.values for r in stack.of_type(DNS)}
    assert sorted(routes) == sorted(PUBLIC) == sorted(records)
    for record in records.values():
        assert record["type"] == "CNAME"
        assert record["content"] == f"{MOCK_TUNNEL_ID}.cfargotunnel.com"
        assert record["proxied"] is True
        assert record["zoneId"] == stack_config()["spitikos:cloudflareZoneId"]


def test_public_routes_go_to_nginx_over_https_with_http2_for_grpc(stack):
    for rule in ingresses(stack)[:-1]:
        assert rule["service"] == NGINX
        assert rule["originRequest"] == {"noTlsVerify": True, "http2Origin": True}


def test_the_catch_all_404_rule_is_last(stack):
    rules = ingresses(stack)
    assert rules[-1] == {"service": "http_status:404"}
    assert all("hostname" in r for r in rules[:-1])


def test_cloudflared_runs_two_pinned_replicas_over_http2_and_is_ready_on_metrics(stack):
    deployment = stack.one("kubernetes:apps/v1:Deployment", "spitikos-tunnel-deployment").values
    assert deployment["metadata"]["namespace"] == "cloudflared"
    assert deployment["spec"]["replicas"] == 2
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == versions.CLOUDFLARED_IMAGE and "latest" not in container["image"]
    args = container["args"]
    assert args[0] == "tunnel" and args[-1] == "run"
    assert "--no-autoupdate" in args and args[args.index("--protocol") + 1] == "http2"
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "metrics"}
    # The image's user is named, so runAsNonRoot needs a numeric uid to be verifiable.
    pod_security = deployment["spec"]["template"]["spec"]["securityContext"]
    assert pod_security["runAsNonRoot"] is True and pod_security["runAsUser"] == 65532
    metrics_port = int(args[args.index("--metrics") + 1].rsplit(":", 1)[1])
    assert {"name": "metrics", "containerPort": metrics_port} in container["ports"]
    assert set(container["resources"]) == {"requests", "limits"}
    pdb = stack.one("kubernetes:policy/v1:PodDisruptionBudget").values["spec"]
    assert pdb["minAvailable"] == 1
    assert pdb["selector"]["matchLabels"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_the_tunnel_token_reaches_cloudflared_only_as_a_secret(stack):
    secret = stack.one("kubernetes:core/v1:Secret", "spitikos-tunnel-token")
    assert secret.input_is_secret("stringData")
    assert secret.values["stringData"] == {"token": MOCK_TUNNEL_TOKEN}
    env = stack.one("kubernetes:apps/v1:Deployment", "spitikos-tunnel-deployment").values["spec"]["template"]["spec"][
        "containers"
    ][0]["env"]
    assert env == [
        {"name": "TUNNEL_TOKEN", "valueFrom": {"secretKeyRef": {"name": "cloudflared-token", "key": "token"}}}
    ]
    for reg in stack.all():
        assert not any(MOCK_TUNNEL_TOKEN in text for text in exposed_strings(reg.inputs)), reg.urn
    for name, (value, is_secret) in stack.exports.items():
        assert is_secret or MOCK_TUNNEL_TOKEN not in json.dumps(value, default=str), name


def test_no_access_application_without_private_hostnames(stack):
    assert stack.of_type(ACCESS_APP) == []


def test_ssh_and_kube_api_hostnames_exist_only_behind_access(with_private_hostnames):
    rec = with_private_hostnames
    apps = {a.values["domain"]: a for a in rec.of_type(ACCESS_APP)}
    assert sorted(apps) == ["k8s.spitikos.dev", "ssh.spitikos.dev"]
    policy = rec.one("cloudflare:index/zeroTrustAccessPolicy:ZeroTrustAccessPolicy")
    assert policy.values["decision"] == "allow"
    assert policy.values["includes"] == [{"email": {"email": "owner@spitikos.dev"}}]
    for app in apps.values():
        assert app.values["type"] == "self_hosted"
        assert [p["id"] for p in app.values["policies"]] == [policy.state.get("id", f"{policy.name}-id")]
    services = {i.get("hostname"): i["service"] for i in ingresses(rec)}
    assert services["ssh.spitikos.dev"] == "ssh://10.0.0.200:22"
    assert services["k8s.spitikos.dev"] == "tcp://kubernetes.default.svc:443"
    config = rec.one(CONFIG)
    for hostname, app in apps.items():
        record = next(r for r in rec.of_type(DNS) if r.values["name"] == hostname)
        assert app.urn in record.dependencies, f"the DNS record of {hostname} does not wait for its Access app"
        assert app.urn in config.dependencies
    assert ingresses(rec)[-1] == {"service": "http_status:404"}
    # The API server's certificate names the hostname kubectl uses.
    install = rec.one("command:remote:Command", "spitikos-k3s-server-install").values["create"]
    assert "--tls-san=k8s.spitikos.dev" in install


def test_cloudflared_listens_for_probes_on_all_addresses_and_its_probes_use_that_port(stack):
    """On 127.0.0.1 the kubelet, probing the pod's IP, would find nothing and restart it forever."""
    container = stack.one("kubernetes:apps/v1:Deployment", "spitikos-tunnel-deployment").values["spec"]["template"][
        "spec"
    ]["containers"][0]
    args = container["args"]
    host, port = args[args.index("--metrics") + 1].rsplit(":", 1)
    assert host == "0.0.0.0"  # noqa: S104 - exactly what is asserted
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("readinessProbe", "livenessProbe"):
        target = container[probe]["httpGet"]
        assert target["path"] == "/ready"
        assert ports.get(target["port"], target["port"]) == int(port), f"{probe} probes another port"


def test_dns_records_keep_names_derived_from_their_hostnames(stack):
    """A renamed resource is a deleted and re-created record on the next `pulumi up`."""
    names = sorted(r.name for r in stack.of_type(DNS))
    assert names == [
        "spitikos-tunnel-dns-api-spitikos-dev",
        "spitikos-tunnel-dns-argocd-spitikos-dev",
        "spitikos-tunnel-dns-spitikos-dev",
    ]


def test_access_applications_stay_out_of_the_app_launcher(with_private_hostnames):
    for app in with_private_hostnames.of_type(ACCESS_APP):
        assert app.values["appLauncherVisible"] is False, app.name
