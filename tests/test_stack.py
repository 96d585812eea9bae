"""The whole program, `__main__.py`, run with the real Pulumi.pi5.yaml under mocks."""

from __future__ import annotations

import json
import runpy

import pytest
import yaml
from conftest import DUMMY_SECRETS, ROOT, stack_config
from harness import MOCK_NODE_TOKEN, exposed_strings, run

from components import versions
from components.settings import SettingsError

MAIN = str(ROOT / "__main__.py")


def run_main(config=None, secret_keys=None):
    return run(
        lambda: runpy.run_path(MAIN),
        config or stack_config(),
        list(DUMMY_SECRETS) if secret_keys is None else secret_keys,
    )


@pytest.fixture(scope="module")
def stack():
    return run_main()


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
    values = [*list(DUMMY_SECRETS.values()), MOCK_NODE_TOKEN.strip()]
    for reg in recording.all():
        for key in reg.additional_secret_outputs:
            value = reg.state.get(key)
            value = value.get("value") if isinstance(value, dict) else value
            if isinstance(value, str) and len(value) >= 12 and key != "connection":
                values.append(value.strip())
    return values


def test_no_secret_appears_in_plain_text_in_any_input_or_export(stack):
    secrets = known_secret_values(stack)
    assert len(secrets) >= len(DUMMY_SECRETS) + 1
    for reg in stack.all():
        for text in exposed_strings(reg.inputs):
            for secret in secrets:
                assert secret not in text, f"{reg.urn} exposes a secret in plain text"
    for name, (value, is_secret) in stack.exports.items():
        if not is_secret:
            for secret in secrets:
                assert secret not in json.dumps(value, default=str), f"export {name} exposes a secret"


def test_an_agent_in_the_settings_joins_the_cluster():
    config = {**stack_config(), "spitikos:agents": json.dumps(["10.0.0.201"])}
    recording = run_main(config)
    agent = recording.one("command:remote:Command", "spitikos-k3s-agent-10-0-0-201-install")
    assert agent.input_is_secret("create")
    assert "K3S_URL=https://10.0.0.200:6443" in agent.values["create"]


def test_bad_settings_fail_before_any_resource_exists():
    config = {**stack_config(), "spitikos:domain": "not a domain", "spitikos:nodeHost": "pi 5"}
    with pytest.raises(SettingsError) as raised:
        run_main(config)
    assert "spitikos:domain" in str(raised.value) and "spitikos:nodeHost" in str(raised.value)
    from pulumi.runtime import settings

    monitor = settings.SETTINGS.monitor
    assert monitor.registrations == {}
