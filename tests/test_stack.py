"""The whole program, `__main__.py`, run with the real Pulumi.pi5.yaml under mocks."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import DUMMY_SECRETS, run_main, stack_config

from components import versions
from components.settings import SettingsError
from spitikos.engine import MOCK_NODE_TOKEN, MOCK_TUNNEL_TOKEN, exposed_strings


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


def known_secret_values(recording) -> list[str]:
    """The dummy config secrets and every secret the mocks generated."""
    return [*DUMMY_SECRETS.values(), MOCK_NODE_TOKEN.strip(), MOCK_TUNNEL_TOKEN, *recording.generated_secrets()]


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


HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMockServerHostKeyForTests"


@pytest.fixture(scope="module")
def with_agent_and_host_key():
    """The pi5 stack plus an agent, with the server's SSH host key pinned."""
    config = {**stack_config(), "spitikos:agents": json.dumps(["10.0.0.201"]), "spitikos:nodeHostKey": HOST_KEY}
    return run_main(config)


def test_an_agent_in_the_settings_joins_the_cluster(with_agent_and_host_key):
    recording = with_agent_and_host_key
    agent = recording.one("command:remote:Command", "spitikos-k3s-agent-10-0-0-201-install")
    assert agent.input_is_secret("create")
    assert "K3S_URL=https://10.0.0.200:6443" in agent.values["create"]


def test_with_node_host_key_set_every_ssh_connection_to_the_server_pins_it(with_agent_and_host_key):
    commands = with_agent_and_host_key.of_type("command:remote:Command")
    server = [c for c in commands if c.values["connection"]["host"] == "10.0.0.200"]
    agent = [c for c in commands if c.values["connection"]["host"] == "10.0.0.201"]
    assert len(server) == 4 and len(agent) == 2  # server: preflight, install, kubeconfig, token
    for command in server:
        assert command.values["connection"]["hostKey"] == HOST_KEY, command.name
    # nodeHostKey is the server's key: another machine presents its own, so agents are not pinned to it.
    for command in agent:
        assert command.values["connection"].get("hostKey") in (None, ""), command.name


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
        "spitikos-ingress-nginx-release",
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
    assert sorted(r.values["chart"] for r in releases) == ["argo-cd", "ingress-nginx", "keda"]
    kubeconfig = stack.one("command:remote:Command", "spitikos-k3s-server-kubeconfig")
    redis = stack.one("kubernetes:apps/v1:Deployment", "spitikos-redis-deployment")
    parallel = [*releases, redis]
    for release in parallel:
        waits_for = stack.ancestors_closure(release.urn)
        others = {r.urn for r in parallel} - {release.urn}
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


@pytest.mark.xfail(
    strict=True,
    reason="Known bug, for the components' rewrite: the Tunnel and ArgoCd components take the Kubernetes "
    "provider in `providers`, so their registration, and with it every child (Cloudflare's tunnel, routes and "
    "DNS; Argo CD's webhook secret, which GitHub's charts webhook needs), waits for the kubeconfig read from "
    "the node. Remove this marker when the test passes.",
)
def test_github_and_cloudflare_do_not_wait_for_the_node(stack):
    assert outside_waiting_for_the_node(stack) == []


def test_until_then_only_the_tunnels_children_and_the_charts_webhook_wait_for_the_node(stack):
    tunnel = stack.one("spitikos:tunnel:Tunnel")
    cloudflare = [r.name for r in stack.children(tunnel.urn) if r.type.startswith("cloudflare:")]
    assert len(cloudflare) >= 5
    assert outside_waiting_for_the_node(stack) == sorted([*cloudflare, "spitikos-github-charts-webhook"])


def own_kubernetes_objects(recording):
    """Every Kubernetes object the program writes itself: not Helm releases, not providers."""
    for reg in recording.all():
        if reg.type.startswith("kubernetes:") and reg.type != RELEASE and "argoproj.io" not in reg.type:
            yield reg


def test_objects_the_program_writes_validate_against_the_kubernetes_schema(stack):
    import kubernetes_validate

    from components import versions

    minor = versions.kubernetes_minor(versions.K3S_VERSION)
    objects = list(own_kubernetes_objects(stack))
    kinds = {o.values["kind"] for o in objects}
    assert {"Namespace", "Secret", "ConfigMap", "PersistentVolumeClaim", "Deployment", "Service"} <= kinds
    for obj in objects:
        try:
            kubernetes_validate.validate(obj.values, desired_version=minor, strict=True)
        except kubernetes_validate.ValidationError as error:
            raise AssertionError(f"{obj.name} is invalid for Kubernetes {minor}: {error}") from error


def test_every_resource_hangs_under_the_platform(stack):
    """Every child is parented to its component (STYLE): no resource escapes to the stack's root."""
    platform = stack.one("spitikos:platform:Platform", "spitikos")
    for reg in stack.all():
        if reg.urn != platform.urn:
            assert reg.parent in stack.registrations, f"{reg.name} is not parented to a component"
