"""The k3s node component: what it runs on the node, and what it hands back."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pulumi
import pytest
import yaml

from components.k3s import (
    CMDLINE_FIX,
    MIN_FREE_DISK_KIB,
    MIN_MEMORY_KIB,
    POD_SECURITY_FILE,
    TOKEN_FILE,
    K3sCluster,
    K3sClusterArgs,
    NodeArgs,
    install_script,
    pod_security_config,
    pod_security_script,
    preflight_script,
    rewrite_kubeconfig,
)
from spitikos.engine import MOCK_HOST_KEY, is_secret, plain, resolve, run

VERSION = "v1.35.5+k3s1"
COMMAND = "command:remote:Command"
KEYSCAN = "command:local:Command"


KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----"


def cluster(agents=(), version=VERSION, host_key=None, port=22, **options):
    key = pulumi.Output.secret(KEY)
    node = lambda host: NodeArgs(host=host, user="ubuntu", port=port, private_key=key, host_key=host_key)  # noqa: E731
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
    # Whole arguments, not substrings: `XX--disable=traefikXX` is an unknown flag, and Traefik would
    # then take ports 80/443 from NGINX.
    exec_args = re.search(r"INSTALL_K3S_EXEC='([^']*)'", create).group(1).split()
    assert exec_args[0] == "server"
    for flag in ("--disable=traefik", "--tls-san=10.0.0.200", "--tls-san=k8s.spitikos.dev", "--secrets-encryption"):
        assert flag in exec_args
    # Nothing runs as cluster-admin on an object's behalf: no Helm controller (a HelmChart in any
    # namespace), no ServiceLB (a LoadBalancer Service on the node's ports).
    assert {"--disable=servicelb", "--disable-helm-controller"} <= set(exec_args)
    # k3s reads a token with `::` as `<ca-hash>::<credentials>`: the generated one is letters and digits only.
    token = recorded.one("random:index/randomPassword:RandomPassword", "t-agent-token").values
    assert token["special"] is False and token["length"] >= 32
    # The agent token is written to a directory the install creates first, readable by root only.
    save = "sudo -n sh -c 'umask 077 && mkdir -p /etc/rancher/k3s && cat > /etc/rancher/k3s/spitikos-agent-token'\n"
    assert save in create
    kubeconfig = recorded.one(COMMAND, "t-server-kubeconfig").values["create"]
    assert kubeconfig == "sudo -n cat /etc/rancher/k3s/k3s.yaml", "where k3s writes the admin kubeconfig"


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


def test_uninstalling_is_an_explicit_opt_in(uninstalling):
    opted = uninstalling
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
    # The installer's environment is exactly the server's URL and the token file, as separate words.
    installer_env = re.search(r"\benv (.*) INSTALL_K3S_VERSION=", create).group(1).split()
    assert installer_env == ["K3S_URL=https://10.0.0.200:6443", f"K3S_TOKEN_FILE={TOKEN_FILE}"]
    # An agent runs the `k3s-agent` unit: waiting for `k3s` would time out on every agent.
    assert "until systemctl is-active --quiet k3s-agent;" in create
    for command in recorded.of_type(COMMAND):
        for key in ("create", "update", "delete"):
            assert secret not in command.values.get(key, ""), f"{command.name} carries the token in its {key}"
    assert server.urn in agent.dependencies, "an agent joins a running server"
    preflight = recorded.one(COMMAND, "t-server-preflight")
    assert preflight.values["create"] == preflight_script("server"), "a server needs more than an agent"
    agent_preflight = recorded.one(COMMAND, "t-agent-10-0-0-201-preflight")
    assert agent_preflight.urn in agent.dependencies
    assert agent_preflight.values["create"] == preflight_script("agent")


def test_every_connection_pins_the_nodes_host_key(recorded):
    """Without a configured key, the key seen on first contact is kept and required afterwards."""
    for command in recorded.of_type(COMMAND):
        connection = command.values["connection"]
        assert connection["hostKey"] == MOCK_HOST_KEY, f"{command.name} does not check the host key"
    # Named after its node: a renamed first-contact read is a new one, trusting whatever key the node shows then.
    first_contacts = recorded.of_type(KEYSCAN)
    assert sorted(c.name for c in first_contacts) == ["t-agent-10-0-0-201-host-key", "t-server-host-key"]
    pinned = run(lambda: cluster(host_key="ssh-ed25519 AAAAC3Configured", port=2222))
    assert not pinned.of_type(KEYSCAN)
    for command in pinned.of_type(COMMAND):
        assert command.values["connection"]["hostKey"] == "ssh-ed25519 AAAAC3Configured", command.name
        # The node's own SSH port, and the operator's key, kept secret.
        assert command.values["connection"]["port"] == 2222, command.name
        connection = command.inputs["connection"]
        assert command.values["connection"]["privateKey"] == KEY and is_secret(connection), command.name


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


def _run_install(tmp_path, k3s_before, k3s_after, curl="", active=True, script=None):
    """The install script with stub k3s, curl, systemctl and sudo; the "installer" curl fetches
    records the environment it ran with, then swaps in the k3s it installed."""
    state = tmp_path / "state"
    state.mkdir(parents=True)
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
            # The real timeout, cut to 50 ms, so a service that never starts ends the test quickly.
            "timeout": 'shift; exec /usr/bin/timeout 0.05 "$@"',
        },
    )
    script = script or install_script(VERSION, ["server", "--disable=traefik"], token_file="/etc/rancher/k3s/token")
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


def test_preflight_says_how_to_enable_the_memory_cgroup():
    script = preflight_script("server")
    assert "cgroup_enable=memory cgroup_memory=1" in script and "/boot/firmware/cmdline.txt" in script


def test_the_server_installer_writes_the_kubeconfig_readable_by_root_only(recorded, tmp_path):
    """The recorded install script, run with a stub installer that reports what it was asked to do."""
    script = recorded.one(COMMAND, "t-server-install").values["create"]
    result, _ = _run_install(tmp_path, "", f"k3s version {VERSION} (abc)", script=script)
    assert result.returncode == 0, result.stderr
    ran = next(line for line in result.stdout.splitlines() if line.startswith("ran "))
    assert "--write-kubeconfig-mode=0600" in ran.split()


# --- the preflight script, run locally against a stand-in node -------------------------

PI5_4GB_MEM_KIB = 4_045_264  # what a 4 GB Pi 5 reports as MemTotal (~3.9 GiB)
NODE_FILES = ("/sys/fs/cgroup/cgroup.controllers", "/proc/cgroups", "/proc/meminfo")
CGROUPS_V1 = "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t2\t1\t1\nmemory\t0\t{n}\t{enabled}\n"


def run_preflight(
    tmp_path: Path,
    arch: str = "aarch64",
    controllers: str | None = "cpuset cpu io memory pids",
    cgroups_v1: str = "",
    mem_kib: int = PI5_4GB_MEM_KIB,
    free_disk_kib: int = 20 * 1024 * 1024,
    curl: bool = True,
    sudo_ok: bool = True,
) -> subprocess.CompletedProcess:
    """The server's preflight script on a stand-in node: stub commands, and the node's files
    (the script's fixed paths, substituted with sed-like replacement) written under tmp_path."""
    script = preflight_script("server")
    for path in NODE_FILES:
        assert path in script, f"the preflight no longer reads {path}: update this test"
        script = script.replace(path, f"{tmp_path}{path}")
    files = {"/proc/meminfo": f"MemTotal:       {mem_kib} kB\nMemFree:        1000 kB\n", "/proc/cgroups": cgroups_v1}
    if controllers is not None:
        files["/sys/fs/cgroup/cgroup.controllers"] = controllers + "\n"
    for path, content in files.items():
        (tmp_path / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path.lstrip("/")).write_text(content)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # Only these tools exist on the stand-in node, so a missing curl is really missing.
    for tool in ("sh", "awk", "grep", "cat"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    stubs = {
        "uname": f"echo {arch}",
        "hostname": "echo pi",
        "id": "echo ubuntu",
        "df": f"echo 'Filesystem 1024-blocks Used Available Use% On'; echo '/dev/root 1 1 {free_disk_kib} 1% /'",
        "sudo": "exit 0" if sudo_ok else "echo 'sudo: a password is required' >&2; exit 1",
    }
    if curl:
        stubs["curl"] = "exit 0"
    for name, body in stubs.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path)}
    return subprocess.run([str(bin_dir / "sh"), "-c", script], env=env, capture_output=True, text=True)


def test_preflight_passes_on_a_4gb_pi5(tmp_path):
    result = run_preflight(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "preflight ok: aarch64, 3950 MiB RAM, 20 GiB free\n"


PREFLIGHT_FAILURES = [
    ("not-arm64", {"arch": "x86_64"}, "this node is x86_64, but the platform needs arm64"),
    ("memory-cgroup-off-v2", {"controllers": "cpuset cpu io pids"}, f"the memory cgroup is not enabled: {CMDLINE_FIX}"),
    (
        "memory-cgroup-absent-v1",
        {"controllers": None, "cgroups_v1": "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t2\t1\t1\n"},
        "the memory cgroup is not enabled",
    ),
    ("2gb-pi", {"mem_kib": 1_990_000}, "only 1943 MiB of RAM; the platform needs a 4 GB Pi 5 or larger"),
    ("just-under-3gib", {"mem_kib": MIN_MEMORY_KIB - 1}, "only 3071 MiB of RAM"),
    ("disk", {"free_disk_kib": MIN_FREE_DISK_KIB - 1}, "only 8191 MiB free on /; free at least 8 GiB"),
    ("no-curl", {"curl": False}, "curl is missing: sudo apt-get install -y curl"),
    ("no-sudo", {"sudo_ok": False}, "user ubuntu needs password-less sudo"),
]


MEMORY_CGROUP_OFF_V1 = pytest.param(
    {"controllers": None, "cgroups_v1": CGROUPS_V1.format(n=1, enabled=0)},
    f"the memory cgroup is not enabled: {CMDLINE_FIX}",
    id="memory-cgroup-off-v1",
)


@pytest.mark.parametrize(
    "node,message",
    [*((n, m) for _, n, m in PREFLIGHT_FAILURES), MEMORY_CGROUP_OFF_V1],
    ids=[*(i for i, _, _ in PREFLIGHT_FAILURES), "memory-cgroup-off-v1"],
)
def test_preflight_stops_with_what_to_fix(tmp_path, node, message):
    result = run_preflight(tmp_path, **node)
    assert result.returncode == 1
    assert result.stderr.startswith("spitikos preflight (server node pi): ")
    assert message in result.stderr
    assert "preflight ok" not in result.stdout


def test_preflight_accepts_the_exact_minimums_and_a_v1_memory_cgroup(tmp_path):
    result = run_preflight(
        tmp_path,
        controllers=None,
        cgroups_v1=CGROUPS_V1.format(n=1, enabled=1),
        mem_kib=MIN_MEMORY_KIB,
        free_disk_kib=MIN_FREE_DISK_KIB,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "preflight ok: aarch64, 3072 MiB RAM, 8 GiB free\n"
    assert MIN_MEMORY_KIB == 3 * 1024 * 1024 < PI5_4GB_MEM_KIB and MIN_FREE_DISK_KIB == 8 * 1024 * 1024


@pytest.fixture(scope="module")
def uninstalling():
    return run(lambda: cluster(agents=["10.0.0.201"], uninstall_on_destroy=True))


@pytest.mark.parametrize("role,script", [("server", "k3s-uninstall.sh"), ("agent", "k3s-agent-uninstall.sh")])
def test_opted_in_delete_uninstalls_k3s_and_passes_on_a_node_without_it(uninstalling, tmp_path, role, script):
    name = "t-server-install" if role == "server" else "t-agent-10-0-0-201-install"
    delete = uninstalling.one(COMMAND, name).values["delete"]
    assert f"/usr/local/bin/{script}" in delete
    delete = delete.replace("/usr/local/bin/", f"{tmp_path}/")
    absent = subprocess.run(["sh", "-c", delete], capture_output=True, text=True)
    assert absent.returncode == 0, absent.stderr
    (tmp_path / script).write_text("#!/bin/sh\necho uninstalled\n")
    (tmp_path / script).chmod(0o755)
    present = subprocess.run(["sh", "-c", delete], capture_output=True, text=True)
    assert (present.returncode, present.stdout) == (0, "uninstalled\n")


def test_an_agent_is_named_by_its_stable_key_not_its_address():
    """Writing an agent's address differently must not rename (and so replace) its resources."""
    key = pulumi.Output.secret("-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----")

    def named(host):
        agent = NodeArgs(host=host, user="ubuntu", port=22, private_key=key, key="pi2")
        server = NodeArgs(host="10.0.0.200", user="ubuntu", port=22, private_key=key)
        return K3sCluster("t", K3sClusterArgs(server=server, agents=[agent], version=VERSION))

    before = {c.name for c in run(lambda: named("10.0.0.201")).of_type(COMMAND)}
    after = {c.name for c in run(lambda: named("pi2.lan")).of_type(COMMAND)}
    assert before == after and "t-agent-pi2-install" in after


def test_an_ipv6_server_is_bracketed_in_the_kubeconfig_and_the_url_agents_join():
    kubeconfig = "server: https://127.0.0.1:6443\n"
    assert rewrite_kubeconfig(kubeconfig, "fd00::200") == "server: https://[fd00::200]:6443\n"
    assert rewrite_kubeconfig(kubeconfig, "10.0.0.200") == "server: https://10.0.0.200:6443\n"


def test_the_key_seen_on_first_contact_is_parsed_like_the_setting():
    from components.k3s import first_contact_key

    assert first_contact_key(f"[10.0.0.200]:2222 {MOCK_HOST_KEY}\n") == MOCK_HOST_KEY
    with pytest.raises(ValueError, match="does not hold an SSH host key"):
        first_contact_key("10.0.0.200: Connection closed by remote host")


def test_the_host_key_is_learned_from_the_host_and_port_alone(recorded):
    """A new SSH key, user or anything but the address must never read the key again: an attacker
    answering as the node at that moment would get their key pinned, silently."""
    learn = recorded.one(KEYSCAN, "t-server-host-key")
    assert set(learn.values) == {"create", "triggers"}, "only the host and port may change what it reads"
    assert learn.values["triggers"] == ["10.0.0.200", 22]
    assert "ssh-keyscan -T 20 -t ed25519 -p 22 10.0.0.200" in learn.values["create"]
    assert KEY not in str(learn.values), "ssh-keyscan logs in to nothing"
    # The stacks that learned it with a remote command keep their state (same name, old type aliased).
    assert learn.aliases == ["command:remote:Command/"]
    rotated = run(
        lambda: K3sCluster(
            "t",
            K3sClusterArgs(
                server=NodeArgs(host="10.0.0.200", user="admin", port=22, private_key=pulumi.Output.secret("other")),
                version=VERSION,
            ),
        )
    )
    assert rotated.one(KEYSCAN, "t-server-host-key").values == learn.values


def _keyscan(tmp_path, answer: str):
    from components.k3s import keyscan_script

    tmp_path.mkdir()
    env = _stub_bin(tmp_path, {"ssh-keyscan": f'echo "# $*" >&2; printf "%s" "{answer}"'})
    return subprocess.run(["sh", "-c", keyscan_script("10.0.0.200", 2222)], env=env, capture_output=True, text=True)


def test_first_contact_reads_one_key_line_and_fails_clearly_when_the_node_shows_none(tmp_path):
    from components.k3s import first_contact_key

    answer = (
        f"# 10.0.0.200:2222 SSH-2.0-OpenSSH_9.6\n[10.0.0.200]:2222 {MOCK_HOST_KEY}\n[10.0.0.200]:2222 {MOCK_HOST_KEY}\n"
    )
    found = _keyscan(tmp_path / "found", answer)
    assert found.returncode == 0 and first_contact_key(found.stdout) == MOCK_HOST_KEY
    silent = _keyscan(tmp_path / "silent", "")
    assert silent.returncode == 1 and silent.stdout == ""
    assert "ssh-keyscan read no ed25519 host key from 10.0.0.200:2222 within 20s" in silent.stderr
    from components.k3s import keyscan_script

    missing = subprocess.run(
        ["/bin/sh", "-c", keyscan_script("10.0.0.200", 22)],
        env={"PATH": str(tmp_path / "empty")},
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 1 and "ssh-keyscan is not installed where pulumi up runs" in missing.stderr


def _installer_fixture(tmp_path) -> tuple[str, str]:
    """A stand-in install.sh, the curl that serves it, and its sha256."""
    import hashlib

    body = 'echo "ran $INSTALL_K3S_VERSION: $INSTALL_K3S_EXEC"\n'
    served = tmp_path / "served-install.sh"
    served.write_text(body)
    curl = f'out=""; while [ $# -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done; cp {served} "$out"'
    return curl, hashlib.sha256(body.encode()).hexdigest()


def test_the_installer_runs_only_with_its_pinned_sha256(tmp_path):
    curl, good = _installer_fixture(tmp_path)
    pinned = lambda sha: install_script(VERSION, ["server"], installer_sha256=sha)  # noqa: E731
    result, _ = _run_install(tmp_path / "good", "", "", curl=curl, script=pinned(good))
    assert f"ran {VERSION}: server" in result.stdout, result.stderr
    tampered, _ = _run_install(tmp_path / "tampered", "", "", curl=curl, script=pinned("0" * 64))
    assert tampered.returncode == 1
    assert "does not match the sha256 pinned in components/versions.py: not running it" in tampered.stderr
    assert "ran " not in tampered.stdout


def test_the_installer_checks_the_k3s_binary_and_nothing_skips_that(recorded):
    """install.sh verifies the binary against the release's sha256sum-arm64.txt unless told to skip."""
    for install in recorded.of_type(COMMAND):
        assert "INSTALL_K3S_SKIP_DOWNLOAD" not in install.values["create"], install.name
        assert "INSTALL_K3S_BIN_DIR_READ_ONLY" not in install.values["create"], install.name


def test_a_release_without_a_pinned_installer_sha256_installs_with_a_warning(tmp_path):
    curl, _ = _installer_fixture(tmp_path)
    result, _ = _run_install(tmp_path / "run", "", "", curl=curl, script=install_script(VERSION, ["server"]))
    assert "warning: no sha256 of the k3s installer for v1.35.5+k3s1 is pinned" in result.stderr


# --- Pod Security for every namespace without labels (the API server's admission configuration) ---


def test_the_server_passes_the_api_server_its_pod_security_defaults_and_agents_do_not(recorded):
    flag = f"--kube-apiserver-arg=admission-control-config-file={POD_SECURITY_FILE}"
    server = recorded.one(COMMAND, "t-server-install").values
    exec_args = re.search(r"INSTALL_K3S_EXEC='([^']*)'", server["create"]).group(1).split()
    assert flag in exec_args
    agent = recorded.one(COMMAND, "t-agent-10-0-0-201-install").values["create"]
    assert "admission-control-config-file" not in agent and "SPITIKOS_POD_SECURITY" not in agent
    # The configuration is in the script that `create` and `update` run: a change to it is a change
    # to the install, which then runs again (the installer restarts k3s when its flags or files change).
    assert pod_security_config() in server["create"] and server["update"] == server["create"]


def test_unlabelled_namespaces_enforce_baseline_and_only_kube_system_is_exempt(recorded, tmp_path):
    """The recorded server script on a stand-in node: the file exists, root's alone, before the installer runs."""
    script = recorded.one(COMMAND, "t-server-install").values["create"]
    state = tmp_path / "state"
    written = state / POD_SECURITY_FILE.rsplit("/", 1)[1]
    installer = (
        f'out=""; while [ $# -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done; '
        f'printf \'[ -s {written} ] && echo "configured before install"; '
        f'echo "k3s version {VERSION} (abc)" > {state}/k3s\' > "$out"'
    )
    result, _ = _run_install(tmp_path, "", "", curl=installer, script=script)
    assert result.returncode == 0, result.stderr
    assert "configured before install" in result.stdout
    assert oct(written.stat().st_mode & 0o777) == "0o600"
    assert (state / "spitikos-agent-token").read_text() == "TOKEN-ON-STDIN", "the token on stdin is left whole"
    config = yaml.safe_load(written.read_text())
    assert (config["apiVersion"], config["kind"]) == ("apiserver.config.k8s.io/v1", "AdmissionConfiguration")
    (plugin,) = config["plugins"]
    assert plugin["name"] == "PodSecurity"
    pod_security = plugin["configuration"]
    assert pod_security["apiVersion"] == "pod-security.admission.config.k8s.io/v1"
    assert pod_security["kind"] == "PodSecurityConfiguration"
    assert pod_security["defaults"] == {
        "enforce": "baseline",
        "enforce-version": "latest",
        "audit": "restricted",
        "audit-version": "latest",
        "warn": "restricted",
        "warn-version": "latest",
    }
    assert pod_security["exemptions"] == {"usernames": [], "runtimeClasses": [], "namespaces": ["kube-system"]}


def test_a_configuration_that_would_end_its_heredoc_is_refused():
    with pytest.raises(ValueError, match="SPITIKOS_POD_SECURITY"):
        pod_security_script("x\nSPITIKOS_POD_SECURITY\nrm -rf /")


def test_a_changed_configuration_restarts_a_running_k3s_and_an_unchanged_one_does_not(tmp_path):
    """The API server reads the file only at start; the installer restarts k3s only for its own changes."""
    log = tmp_path / "systemctl.log"
    env = _stub_bin(
        tmp_path,
        {
            "systemctl": f'echo "$*" >> {log}',
            "sudo": f'shift; shift; sh -c "$(echo "$2" | sed "s|/etc/rancher/k3s|{tmp_path}/etc|g")"',
        },
    )

    def node_runs(config: str) -> list[str]:
        log.unlink(missing_ok=True)
        for shell in ("bash", "sh"):  # the login shell runs it: bash on Ubuntu; dash must too
            result = subprocess.run([shell, "-c", pod_security_script(config)], env=env, capture_output=True, text=True)
            assert result.returncode == 0, result.stderr
            assert (tmp_path / "etc" / "pod-security.yaml").read_text() == config + "\n"
        return log.read_text().splitlines() if log.exists() else []

    first = node_runs(pod_security_config())
    assert first == ["is-active --quiet k3s", "restart k3s"], "a new file is read by a restarted API server"
    assert node_runs(pod_security_config()) == [], "an unchanged file restarts nothing"
    changed = node_runs(pod_security_config(("kube-system", "longhorn-system")))
    assert changed == ["is-active --quiet k3s", "restart k3s"]
    assert not list((tmp_path / "etc").glob("*.new"))
