"""The k3s node component: what it runs on the node, and what it hands back."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pulumi
import pytest
import yaml

from components.k3s import TOKEN_FILE, K3sCluster, K3sClusterArgs, NodeArgs, install_script, preflight_script
from spitikos.engine import MOCK_HOST_KEY, plain, resolve, run

VERSION = "v1.35.5+k3s1"
COMMAND = "command:remote:Command"


def cluster(agents=(), version=VERSION, host_key=None, **options):
    key = pulumi.Output.secret("-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----")
    node = lambda host: NodeArgs(host=host, user="ubuntu", port=22, private_key=key, host_key=host_key)  # noqa: E731
    return K3sCluster(
        "t",
        K3sClusterArgs(
            server=node("10.0.0.200"),
            agents=[node(a) for a in agents],
            version=version,
            tls_sans=["k8s.spitikos.dev"],
            **options,
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


def test_version_change_upgrades_in_place_and_delete_leaves_k3s_alone(recorded):
    install = recorded.one(COMMAND, "t-server-install")
    # An update runs the same idempotent script; a version in `triggers` would replace.
    assert install.values["update"] == install.values["create"]
    assert VERSION not in str(install.values.get("triggers", []))
    # A rename, a new parent or a rewritten agent replaces the resource: that must not wipe a node.
    for command in recorded.of_type(COMMAND):
        assert "uninstall" not in command.values.get("delete", ""), f"{command.name} uninstalls k3s when deleted"
    preflight = recorded.one(COMMAND, "t-server-preflight")
    assert preflight.urn in install.dependencies


def test_uninstalling_is_an_explicit_opt_in():
    opted = run(lambda: cluster(agents=["10.0.0.201"], uninstall_on_destroy=True))
    assert "k3s-uninstall.sh" in opted.one(COMMAND, "t-server-install").values["delete"]
    assert "k3s-agent-uninstall.sh" in opted.one(COMMAND, "t-agent-10-0-0-201-install").values["delete"]


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


def test_the_kubeconfig_is_read_again_on_upgrade_and_on_request():
    def triggers(version, renewal=""):
        rec = run(lambda: cluster(version=version, kubeconfig_renewal=renewal))
        return rec.one(COMMAND, "t-server-kubeconfig").values["triggers"]

    assert triggers(VERSION) != triggers("v1.35.6+k3s1"), "an upgrade must read the kubeconfig again"
    assert triggers(VERSION) != triggers(VERSION, "2027-01-01"), "a renewal nonce must read it again"


def test_agents_join_with_an_agent_only_token_that_is_never_in_a_command(recorded):
    server = recorded.one(COMMAND, "t-server-install")
    agent = recorded.one(COMMAND, "t-agent-10-0-0-201-install")
    token = recorded.one("random:index/randomPassword:RandomPassword", "t-agent-token")
    secret = plain(token.state["result"])
    assert f"--agent-token-file={TOKEN_FILE}" in server.values["create"]
    for install in (server, agent):
        assert install.values["stdin"] == secret and install.input_is_secret("stdin")
        assert f"cat > {TOKEN_FILE}" in install.values["create"] and "umask 077" in install.values["create"]
    create = agent.values["create"]
    assert f"K3S_TOKEN_FILE={TOKEN_FILE}" in create and "K3S_TOKEN=" not in create
    assert "K3S_URL=https://10.0.0.200:6443" in create
    assert "INSTALL_K3S_EXEC=agent" in create
    for command in recorded.of_type(COMMAND):
        for key in ("create", "update", "delete"):
            assert secret not in command.values.get(key, ""), f"{command.name} carries the token in its {key}"
    assert server.urn in agent.dependencies, "an agent joins a running server"
    assert recorded.one(COMMAND, "t-agent-10-0-0-201-preflight").urn in agent.dependencies


def test_every_connection_pins_the_nodes_host_key(recorded):
    """Without a configured key, the key seen on first contact is kept and required afterwards."""
    for command in recorded.of_type(COMMAND):
        connection = command.values["connection"]
        if command.name.endswith("-host-key"):
            assert not connection.get("hostKey"), "first contact has nothing to compare with"
            continue
        assert connection["hostKey"] == MOCK_HOST_KEY, f"{command.name} does not check the host key"
    pinned = run(lambda: cluster(host_key="ssh-ed25519 AAAAC3Configured"))
    assert not [c for c in pinned.of_type(COMMAND) if c.name.endswith("-host-key")]
    for command in pinned.of_type(COMMAND):
        assert command.values["connection"]["hostKey"] == "ssh-ed25519 AAAAC3Configured", command.name


def test_remote_commands_have_time_limits(recorded):
    install = recorded.one(COMMAND, "t-server-install").values["create"]
    assert "curl -sfL --max-time" in install and "timeout 900 env" in install and "timeout 300 sh -c" in install


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


def _run_install(tmp_path, k3s_before, k3s_after, curl="", active=True):
    """The install script with stub k3s, curl, systemctl and sudo; the "installer" curl fetches
    records the environment it ran with, then swaps in the k3s it installed."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "k3s").write_text(k3s_before)
    env = _stub_bin(
        tmp_path,
        {
            "k3s": f"cat {state}/k3s",
            "curl": curl
            or (
                f'out=""; while [ $# -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done; '
                f'printf \'echo "ran $INSTALL_K3S_VERSION: $INSTALL_K3S_EXEC"; '
                f'echo "{k3s_after}" > {state}/k3s\' > "$out"'
            ),
            "systemctl": "exit 0" if active else "exit 3",
            "sudo": f'shift; shift; sh -c "$(echo "$2" | sed "s|/etc/rancher/k3s|{state}|g")"',
            # The real timeout, cut to 3 s, so a service that never starts ends the test quickly.
            "timeout": 'shift; exec /usr/bin/timeout 3 "$@"',
        },
    )
    script = install_script(VERSION, ["server", "--disable=traefik"], token_file="/etc/rancher/k3s/token")
    result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, input="TOKEN-ON-STDIN")
    return result, state


def test_install_runs_the_installer_even_when_the_version_already_runs(tmp_path):
    """A same-version run still applies new flags, a new token or a restart (install.sh is idempotent)."""
    installed = f"k3s version {VERSION} (abc)"
    result, state = _run_install(tmp_path, installed, installed)
    assert f"ran {VERSION}: server --disable=traefik" in result.stdout, result.stderr
    assert (state / "token").read_text() == "TOKEN-ON-STDIN"
    assert oct((state / "token").stat().st_mode & 0o777) == "0o600"


def test_install_upgrades_when_another_version_runs(tmp_path):
    result, _ = _run_install(tmp_path, "k3s version v1.34.1+k3s1 (abc)", f"k3s version {VERSION} (abc)")
    assert result.returncode == 0, result.stderr
    assert "(was: v1.34.1+k3s1)" in result.stdout


def test_install_fails_when_the_download_fails(tmp_path):
    result, _ = _run_install(tmp_path, "", "", curl="exit 22")
    assert result.returncode == 1
    assert "could not download the k3s installer" in result.stderr
    assert "installed" not in result.stdout


def test_install_fails_when_the_service_does_not_come_up(tmp_path):
    result, _ = _run_install(tmp_path, "", f"k3s version {VERSION} (abc)", active=False)
    assert result.returncode == 1
    assert "k3s is not active" in result.stderr and "journalctl -u k3s" in result.stderr


def test_preflight_rejects_a_node_that_is_not_arm64(tmp_path):
    env = _stub_bin(tmp_path, {"uname": "echo x86_64", "hostname": "echo pi"})
    result = subprocess.run(["sh", "-c", preflight_script("server")], env=env, capture_output=True, text=True)
    assert result.returncode == 1
    assert "this node is x86_64, but the platform needs arm64" in result.stderr


def test_preflight_says_how_to_enable_the_memory_cgroup():
    script = preflight_script("server")
    assert "cgroup_enable=memory cgroup_memory=1" in script and "/boot/firmware/cmdline.txt" in script
