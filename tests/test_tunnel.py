"""Public ingress: the tunnel's routes, DNS, Access, and cloudflared in the cluster."""

from __future__ import annotations

import json

import pytest
from conftest import stack_config

from components import versions
from spitikos.engine import MOCK_TEAM, MOCK_TUNNEL_ID, MOCK_TUNNEL_TOKEN, exposed_strings, mock_zone_id

CONFIG = "cloudflare:index/zeroTrustTunnelCloudflaredConfig:ZeroTrustTunnelCloudflaredConfig"
DNS = "cloudflare:index/dnsRecord:DnsRecord"
ACCESS_APP = "cloudflare:index/zeroTrustAccessApplication:ZeroTrustAccessApplication"
NGINX = "https://spitikos-nginx.nginx-gateway.svc.cluster.local:443"
# The real organization's nine hostnames, in its two zones.
REAL_HOSTNAMES = [
    "taehoonlee.cloud",
    "spitikos.dev",
    "api.spitikos.dev",
    *(f"{h}.taehoonlee.cloud" for h in ("api", "argocd", "grafana", "prometheus", "kube", "vault")),
]
ADMIN_HOSTNAMES = [f"{h}.taehoonlee.cloud" for h in ("argocd", "grafana", "prometheus", "kube", "vault")]


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
    # The id the operator looks the tunnel up by, and the token cloudflared runs with is this tunnel's.
    assert stack.exports["tunnelId"] == (MOCK_TUNNEL_ID, False)
    (token,) = [i for i in stack.invokes if i.token.endswith(":getZeroTrustTunnelCloudflaredToken")]
    assert token.args == {"accountId": tunnel.values["accountId"], "tunnelId": MOCK_TUNNEL_ID}


def test_every_cloudflare_resource_and_lookup_uses_the_configured_account_and_token(stack):
    """Not the default provider (which reads CLOUDFLARE_API_TOKEN from the environment), and never
    another account: each would fail, or act on the wrong account, only on a real `pulumi up`."""
    provider = stack.one("pulumi:providers:cloudflare")
    account = stack_config()["spitikos:cloudflareAccountId"]
    resources = [r for r in stack.all() if r.type.startswith("cloudflare:")]
    lookups = [i for i in stack.invokes if i.token.startswith("cloudflare:")]
    assert len(resources) > 15 and {i.token.rsplit(":", 1)[1] for i in lookups} == {
        "getZeroTrustOrganization",
        "getZone",
        "getZeroTrustTunnelCloudflaredToken",
        "getAccountApiTokenPermissionGroups",  # the backup bucket's token (components/r2.py)
    }
    for reg in resources:
        assert reg.provider.startswith(provider.urn + "::"), reg.urn
        assert reg.values.get("accountId", account) == account, reg.urn
        assert reg.type == DNS or "accountId" in reg.values, f"{reg.urn} names no account"
    for zone in [i for i in lookups if i.token.endswith(":getZone")]:
        # A zone of the same name in another account the token can read is not ours: name and account must match.
        assert zone.args["filter"]["match"] == "all" and set(zone.args["filter"]) == {"name", "match", "account"}
    for lookup in lookups:
        assert lookup.provider.startswith(provider.urn + "::"), lookup.token
        assert lookup.args.get("accountId", lookup.args.get("filter", {}).get("account", {}).get("id")) == account
    assert stack.one(CONFIG).name == "spitikos-tunnel-config", "a renamed config is a deleted one on `pulumi up`"


def test_every_real_hostname_has_a_route_and_a_cname_in_its_own_zone(stack):
    rules = ingresses(stack)
    routed = {i["hostname"] for i in rules if "hostname" in i}
    records = {r.values["name"]: r.values for r in stack.of_type(DNS)}
    assert set(REAL_HOSTNAMES) <= routed
    assert routed == set(records), "every routed hostname has exactly one record, and no record is unrouted"
    assert len(stack.of_type(DNS)) == len(records)
    for name, record in records.items():
        assert record["type"] == "CNAME"
        assert record["content"] == f"{MOCK_TUNNEL_ID}.cfargotunnel.com"
        assert record["proxied"] is True
        zone = "spitikos.dev" if name.endswith("spitikos.dev") else "taehoonlee.cloud"
        assert record["zoneId"] == mock_zone_id(zone), f"{name} is not in the zone {zone}"


def test_a_wildcard_is_one_route_and_one_record_matched_after_every_explicit_hostname(stack):
    rules = ingresses(stack)
    names = [r.get("hostname") for r in rules]
    assert names.count("*.taehoonlee.cloud") == 1
    wildcard = names.index("*.taehoonlee.cloud")
    assert all(not n.startswith("*.") for n in names[:wildcard])
    assert names[wildcard + 1 :] == [None], "only the catch-all follows the wildcard"
    assert rules[wildcard]["originRequest"] == {"noTlsVerify": True, "http2Origin": True, "matchSnItoHost": True}


def test_public_routes_go_to_nginx_over_https_with_http2_for_grpc(stack):
    to_nginx = [rule for rule in ingresses(stack)[:-1] if rule["service"] == NGINX]
    assert len(to_nginx) > 10
    for rule in to_nginx:
        assert rule["originRequest"]["noTlsVerify"] is True and rule["originRequest"]["http2Origin"] is True
        # NGINX picks a Gateway listener by SNI and answers 421 when the Host is another name.
        assert rule["originRequest"]["matchSnItoHost"] is True


def test_admin_hostnames_are_behind_access_and_cloudflared_checks_the_token(stack):
    apps = {a.values["domain"]: a for a in stack.of_type(ACCESS_APP)}
    policy = stack.one("cloudflare:index/zeroTrustAccessPolicy:ZeroTrustAccessPolicy", "spitikos-tunnel-access-policy")
    assert policy.values["decision"] == "allow"
    assert policy.values["includes"] == [{"email": {"email": "ethantlee21@gmail.com"}}]
    rules = {(r.get("hostname"), r.get("path")): r for r in ingresses(stack)}
    for hostname in ADMIN_HOSTNAMES:
        app = apps[hostname]
        assert [p["id"] for p in app.values["policies"]] == [f"{policy.name}-id"]
        access = rules[(hostname, None)]["originRequest"]["access"]
        assert access["required"] is True and access["teamName"] == MOCK_TEAM
        assert access["audTags"] == [app.state["aud"]], "cloudflared must check this application's tokens"
        record = next(r for r in stack.of_type(DNS) if r.values["name"] == hostname)
        assert app.urn in record.dependencies, f"the record of {hostname} does not wait for its Access app"
    for hostname in ("api.taehoonlee.cloud", "taehoonlee.cloud", "spitikos.dev", "*.taehoonlee.cloud"):
        assert hostname not in apps
        assert "access" not in rules[(hostname, None)]["originRequest"]


def test_github_still_reaches_argocds_webhook_and_only_that_path(stack):
    rules = ingresses(stack)
    keys = [(r.get("hostname"), r.get("path")) for r in rules]
    webhook = keys.index(("argocd.taehoonlee.cloud", "^/api/webhook$"))
    assert webhook < keys.index(("argocd.taehoonlee.cloud", None)), "the path route must match first"
    assert "access" not in rules[webhook]["originRequest"]
    bypass = stack.one(ACCESS_APP, "spitikos-tunnel-access-argocd-taehoonlee-cloud-api-webhook")
    assert bypass.values["domain"] == "argocd.taehoonlee.cloud/api/webhook"
    everyone = stack.one(
        "cloudflare:index/zeroTrustAccessPolicy:ZeroTrustAccessPolicy", "spitikos-tunnel-access-bypass-policy"
    )
    assert everyone.values["decision"] == "bypass" and everyone.values["includes"] == [{"everyone": {}}]
    assert [p["id"] for p in bypass.values["policies"]] == [f"{everyone.name}-id"]
    assert [k for k in keys if k[1] is not None] == [("argocd.taehoonlee.cloud", "^/api/webhook$")]


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
    # The namespace enforces the restricted Pod Security level, which admits only these profiles.
    assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}
    # cloudflared never talks to the Kubernetes API: no service-account token in its pods.
    assert deployment["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    # Two replicas on two nodes when there are two: one node's loss leaves the tunnel up.
    (spread,) = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert (spread["maxSkew"], spread["topologyKey"]) == (1, "kubernetes.io/hostname")
    assert spread["whenUnsatisfiable"] in ("ScheduleAnyway", "DoNotSchedule"), "the API refuses anything else"
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert spread["labelSelector"]["matchLabels"].items() <= pod_labels.items()
    metrics_port = int(args[args.index("--metrics") + 1].rsplit(":", 1)[1])
    assert {"name": "metrics", "containerPort": metrics_port} in container["ports"]
    assert set(container["resources"]) == {"requests", "limits"}
    pdb_object = stack.one("kubernetes:policy/v1:PodDisruptionBudget").values
    assert pdb_object["metadata"]["namespace"] == "cloudflared", "a budget elsewhere guards no cloudflared pod"
    pdb = pdb_object["spec"]
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
    assert secret.values["metadata"]["name"] == "cloudflared-token", "the pods would wait for a Secret never created"
    deployment = stack.one("kubernetes:apps/v1:Deployment", "spitikos-tunnel-deployment")
    assert secret.urn in deployment.dependencies, "the pods name the Secret: it must exist before them"
    for reg in stack.all():
        assert not any(MOCK_TUNNEL_TOKEN in text for text in exposed_strings(reg.inputs)), reg.urn
    for name, (value, is_secret) in stack.exports.items():
        assert is_secret or MOCK_TUNNEL_TOKEN not in json.dumps(value, default=str), name


def test_no_access_application_when_nothing_is_protected(fresh):
    """A new operator's account need not have Zero Trust set up: nothing of Access is created or looked up."""
    assert fresh.of_type(ACCESS_APP) == []
    assert fresh.of_type("cloudflare:index/zeroTrustAccessPolicy:ZeroTrustAccessPolicy") == []
    assert not [i for i in fresh.invokes if i.token.endswith(":getZeroTrustOrganization")]
    assert all("access" not in (r.get("originRequest") or {}) for r in ingresses(fresh))


def test_ssh_and_kube_api_hostnames_exist_only_behind_access(stack):
    apps = {a.values["domain"]: a for a in stack.of_type(ACCESS_APP)}
    assert {"ssh.taehoonlee.cloud", "k8s.taehoonlee.cloud"} <= set(apps)
    services = {i.get("hostname"): i for i in ingresses(stack)}
    assert services["ssh.taehoonlee.cloud"]["service"] == "ssh://10.0.0.200:22"
    assert services["k8s.taehoonlee.cloud"]["service"] == "tcp://kubernetes.default.svc:443"
    for hostname in ("ssh.taehoonlee.cloud", "k8s.taehoonlee.cloud"):
        assert services[hostname]["originRequest"]["access"]["required"] is True
        record = next(r for r in stack.of_type(DNS) if r.values["name"] == hostname)
        assert apps[hostname].urn in record.dependencies
        assert apps[hostname].urn in stack.one(CONFIG).dependencies
    # The API server's certificate names the hostname kubectl uses.
    install = stack.one("command:remote:Command", "spitikos-k3s-server-install").values["create"]
    assert "--tls-san=k8s.taehoonlee.cloud" in install


def test_a_protected_wildcard_is_behind_access_and_a_public_path_only_bypasses_a_protected_hostname():
    from components.tunnel import TunnelArgs, routes

    args = TunnelArgs(
        cloudflare=None, kubernetes=None, account_id="0" * 32, zones=["a.b"], ingress_url=NGINX,
        hostnames=["a.b", "*.a.b"], node_address="10.0.0.200", protected_hostnames=["*.a.b"],
        public_paths={"a.b": ["/hook"]},
    )  # fmt: skip
    assert [(r.hostname, r.path, r.protected) for r in routes(args)] == [("a.b", None, False), ("*.a.b", None, True)]


def test_the_ssh_route_uses_the_nodes_ssh_port_and_brackets_ipv6():
    from components.tunnel import TunnelArgs, routes

    args = TunnelArgs(
        cloudflare=None, kubernetes=None, account_id="0" * 32, zones=["a.b"], ingress_url=NGINX,
        hostnames=["a.b"], node_address="fd00::200", node_ssh_port=2222, ssh_hostname="ssh.a.b",
    )  # fmt: skip
    assert [r.service for r in routes(args) if r.hostname == "ssh.a.b"] == ["ssh://[fd00::200]:2222"]


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


def test_dns_records_keep_names_derived_from_their_hostnames(fresh, stack):
    """A renamed resource is a deleted and re-created record on the next `pulumi up`."""
    names = sorted(r.name for r in fresh.of_type(DNS))
    assert names == [
        "spitikos-tunnel-dns-api-example-org",
        "spitikos-tunnel-dns-argocd-example-org",
        "spitikos-tunnel-dns-example-org",
    ]
    real = {r.values["name"]: r.name for r in stack.of_type(DNS)}
    assert real["*.taehoonlee.cloud"] == "spitikos-tunnel-dns-wildcard-taehoonlee-cloud"
    assert real["k8s.taehoonlee.cloud"] == "spitikos-tunnel-dns-k8s-taehoonlee-cloud"


def test_access_applications_stay_out_of_the_app_launcher(stack):
    assert stack.of_type(ACCESS_APP)
    for app in stack.of_type(ACCESS_APP):
        assert app.values["appLauncherVisible"] is False, app.name
        # A self-hosted application is what puts Access in front of a hostname of this account.
        assert app.values["type"] == "self_hosted", app.name
        # The dashboard lists applications by name: each says which domain it guards.
        assert app.values["domain"].split("/")[0] in app.values["name"], app.name


def test_cloudflared_runs_on_the_cluster_not_on_the_ambient_kubeconfig(stack):
    cluster = stack.one("pulumi:providers:kubernetes", "spitikos-k3s-kubernetes")
    tunnel = stack.one("spitikos:tunnel:Tunnel")
    objects = [r for r in stack.children(tunnel.urn) if r.type.startswith("kubernetes:")]
    assert {r.type.rsplit(":", 1)[1] for r in objects} >= {"Namespace", "Secret", "Deployment", "PodDisruptionBudget"}
    for obj in objects:
        assert obj.provider.startswith(cluster.urn + "::"), obj.urn


def test_protecting_a_hostname_without_zero_trust_stops_with_what_to_do():
    from components.tunnel import team_name

    assert team_name("spitikos.cloudflareaccess.com") == "spitikos"
    for missing in ("", None):
        with pytest.raises(ValueError) as raised:
            team_name(missing)
        assert str(raised.value) == (
            "the Cloudflare account has no Zero Trust organization, which protected hostnames need: "
            "open the dashboard > Zero Trust once and choose a team name (the free plan will do)"
        )


def test_a_protected_hostname_is_protected_whatever_its_case():
    from components.tunnel import TunnelArgs, routes

    args = TunnelArgs(
        cloudflare=None,
        kubernetes=None,
        account_id="0" * 32,
        zones=["example.com"],
        ingress_url="https://nginx:443",
        hostnames=["Argocd.Example.com", "*.example.com"],
        node_address="10.0.0.1",
        protected_hostnames=["argocd.example.COM"],
        public_paths={"ARGOCD.example.com": ["/api/webhook"]},
    )
    by_host = [(r.hostname, r.path, r.protected) for r in routes(args)]
    assert by_host == [
        ("argocd.example.com", "^/api/webhook$", False),
        ("argocd.example.com", None, True),
        ("*.example.com", None, False),
    ]


# --- CI's way in: service tokens admitted on the SSH and API hostnames only (docs/decisions/0005) ---

SERVICE_TOKEN = "cloudflare:index/zeroTrustAccessServiceToken:ZeroTrustAccessServiceToken"
ACCESS_POLICY = "cloudflare:index/zeroTrustAccessPolicy:ZeroTrustAccessPolicy"


def ci_policy(recording):
    (policy,) = [p for p in recording.of_type(ACCESS_POLICY) if p.values["decision"] == "non_identity"]
    return policy


def test_ci_has_two_service_tokens_that_never_expire_by_themselves(stack):
    tokens = {t.values["name"]: t for t in stack.of_type(SERVICE_TOKEN)}
    assert sorted(tokens) == ["spitikos ci (main)", "spitikos ci (preview)"]
    for token in tokens.values():
        # An expiry would stop CI without a word a year on; `ciTokenRotatedAt` rotates it instead.
        assert token.values["duration"] == "forever"
        assert token.values["accountId"] == stack_config()["spitikos:cloudflareAccountId"]
        assert "clientSecretVersion" not in token.values and "previousClientSecretExpiresAt" not in token.values
        # The SDK marks the secret (additionalSecretOutputs): it is secret in the state from birth.
        assert "clientSecret" in token.additional_secret_outputs


def test_ci_tokens_are_admitted_on_exactly_the_ssh_and_api_applications(stack):
    policy = ci_policy(stack)
    tokens = {t.urn: t for t in stack.of_type(SERVICE_TOKEN)}
    # Only a service token gets in by this policy, and only these two: no email, no IP range, no `everyone`.
    # In either order: the two tokens register concurrently, so the record's order is not the program's.
    assert sorted(policy.values["includes"], key=str) == sorted(
        ({"serviceToken": {"tokenId": t.state["id"]}} for t in tokens.values()), key=str
    )
    assert policy.property_dependencies["includes"] == set(tokens)
    assert "requires" not in policy.values and "excludes" not in policy.values
    admitted = {
        a.values["domain"]: a for a in stack.of_type(ACCESS_APP) if policy.urn in a.property_dependencies["policies"]
    }
    assert sorted(admitted) == ["k8s.taehoonlee.cloud", "ssh.taehoonlee.cloud"]
    operators = next(p for p in stack.of_type(ACCESS_POLICY) if p.values["decision"] == "allow")
    for app in admitted.values():
        assert app.values["policies"] == [
            {"id": f"{operators.name}-id", "precedence": 1},
            {"id": f"{policy.name}-id", "precedence": 2},
        ]


def test_a_stack_without_the_ssh_and_api_hostnames_makes_no_ci_token(fresh):
    assert fresh.of_type(SERVICE_TOKEN) == []
    assert [p for p in fresh.of_type(ACCESS_POLICY) if p.values["decision"] == "non_identity"] == []


def test_rotating_ci_tokens_raises_their_version_and_keeps_the_old_secret_three_days():
    from components.tunnel import ci_token_rotation

    assert ci_token_rotation("") == {}
    first, later = ci_token_rotation("2026-12-07T09:30:00Z"), ci_token_rotation("2026-12-08T00:00:00Z")
    assert first == {"client_secret_version": 1796635800, "previous_client_secret_expires_at": "2026-12-10T09:30:00Z"}
    # Cloudflare rotates when the version goes up: a later time is always a higher one.
    assert later["client_secret_version"] > first["client_secret_version"]
