"""The k3s node component: what it runs on the node, and what it hands back."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pulumi
import pytest
import yaml

from components.k3s import K3sCluster, K3sClusterArgs, NodeArgs, install_script, preflight_script
from spitikos.engine import MOCK_NODE_TOKEN, resolve, run

VERSION = "v1.35.5+k3s1"
COMMAND = "command:remote:Command"


def cluster(agents=()):
    key = pulumi.Output.secret("-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----")
    node = lambda host: NodeArgs(host=host, user="ubuntu", port=22, private_key=key)  # noqa: E731
    return K3sCluster(
        "t",
        K3sClusterArgs(
            server=node("10.0.0.200"), agents=[node(a) for a in agents], version=VERSION, tls_sans=["k8s.spitikos.dev"]
        ),
    )


@pytest.fixture(scope="module")
def recorded():
    return run(lambda: cluster(agents=["10.0.0.201"]))


def test_install_carries_the_pinned_version_and_the_flags(recorded):
    install = recorded.one(COMMAND, "t-server-install").values
    create = install["create"]
    assert "want=v1.35.5+k3s1\n" in create
    assert "https://raw.githubusercontent.com/k3s-io/k3s/v1.35.5%2Bk3s1/install.sh" in create
    for flag in ("--disable=traefik", "--tls-san=10.0.0.200", "--tls-san=k8s.spitikos.dev", "--secrets-encryption"):
        assert flag in create
    assert "INSTALL_K3S_EXEC='server " in create


def test_version_change_upgrades_in_place_and_delete_uninstalls(recorded):
    install = recorded.one(COMMAND, "t-server-install")
    # An update runs the same idempotent script; a version in `triggers` would replace,
    # and replacing runs `delete` (the uninstall) first.
    assert install.values["update"] == install.values["create"]
    assert VERSION not in str(install.values.get("triggers", []))
    assert "k3s-uninstall.sh" in install.values["delete"]
    preflight = recorded.one(COMMAND, "t-server-preflight")
    assert preflight.urn in install.dependencies


def test_kubeconfig_is_secret_and_points_at_the_node(recorded):
    k3s = recorded.result
    value, secret = resolve(k3s.kubeconfig)
    assert secret
    assert yaml.safe_load(value)["clusters"][0]["cluster"]["server"] == "https://10.0.0.200:6443"
    read = recorded.one(COMMAND, "t-server-kubeconfig")
    assert read.values["logging"] == "none"
    assert "stdout" in read.additional_secret_outputs
    provider = recorded.one("pulumi:providers:kubernetes")
    assert provider.input_is_secret("kubeconfig")
    assert read.urn in provider.dependencies


def test_agents_join_with_the_servers_token_kept_secret(recorded):
    agent = recorded.one(COMMAND, "t-agent-10-0-0-201-install")
    assert agent.input_is_secret("create") and agent.input_is_secret("update")
    create = agent.values["create"]
    assert f"K3S_TOKEN={MOCK_NODE_TOKEN}" in create
    assert "K3S_URL=https://10.0.0.200:6443" in create
    assert "INSTALL_K3S_EXEC=agent" in create
    assert "k3s-agent-uninstall.sh" in agent.values["delete"]
    token_read = recorded.one(COMMAND, "t-server-token")
    assert token_read.urn in agent.dependencies
    assert recorded.one(COMMAND, "t-agent-10-0-0-201-preflight").urn in agent.dependencies


def test_every_command_is_a_child_of_the_component(recorded):
    component = recorded.one("spitikos:k3s:K3sCluster")
    for command in recorded.of_type(COMMAND):
        assert command.parent == component.urn, command.name


def _stub_bin(tmp_path: Path, scripts: dict[str, str]) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin"}


def test_install_script_does_nothing_when_the_version_already_runs(tmp_path):
    env = _stub_bin(tmp_path, {"k3s": f"echo 'k3s version {VERSION} (abc)'", "curl": "echo CURL-CALLED >&2; exit 9"})
    result = subprocess.run(["sh", "-c", install_script(VERSION, ["server"])], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "already installed" in result.stdout and "CURL-CALLED" not in result.stderr


def test_install_script_upgrades_when_another_version_runs(tmp_path):
    env = _stub_bin(
        tmp_path,
        {
            "k3s": "echo 'k3s version v1.34.1+k3s1 (abc)'",
            # The "installer" that curl returns reports the environment the pipe gave it.
            "curl": (
                f"echo 'echo installer ran with $INSTALL_K3S_VERSION: $INSTALL_K3S_EXEC'; echo \"$@\" > {tmp_path}/url"
            ),
        },
    )
    result = subprocess.run(
        ["sh", "-c", install_script(VERSION, ["server", "--disable=traefik"])], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert f"installer ran with {VERSION}: server --disable=traefik" in result.stdout
    assert "(was: v1.34.1+k3s1)" in result.stdout
    assert "v1.35.5%2Bk3s1/install.sh" in (tmp_path / "url").read_text()


def test_preflight_rejects_a_node_that_is_not_arm64(tmp_path):
    env = _stub_bin(tmp_path, {"uname": "echo x86_64", "hostname": "echo pi"})
    result = subprocess.run(["sh", "-c", preflight_script("server")], env=env, capture_output=True, text=True)
    assert result.returncode == 1
    assert "this node is x86_64, but the platform needs arm64" in result.stderr


def test_preflight_says_how_to_enable_the_memory_cgroup():
    script = preflight_script("server")
    assert "cgroup_enable=memory cgroup_memory=1" in script and "/boot/firmware/cmdline.txt" in script
