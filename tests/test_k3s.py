"""The k3s node component: what it runs on the node, and what it hands back."""

from __future__ import annotations

import os
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
    K3sCluster,
    K3sClusterArgs,
    NodeArgs,
    install_script,
    preflight_script,
)
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
    agent_preflight = recorded.one(COMMAND, "t-agent-10-0-0-201-preflight")
    assert agent_preflight.urn in agent.dependencies
    assert agent_preflight.values["create"] == preflight_script("agent")


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


def test_preflight_says_how_to_enable_the_memory_cgroup():
    script = preflight_script("server")
    assert "cgroup_enable=memory cgroup_memory=1" in script and "/boot/firmware/cmdline.txt" in script


def test_the_server_installer_writes_the_kubeconfig_readable_by_root_only(recorded, tmp_path):
    """The recorded install script, run with a stub installer that reports what it was asked to do."""
    env = _stub_bin(
        tmp_path,
        {
            "k3s": "exit 1",  # not installed yet
            "curl": "echo 'echo \"INSTALL_K3S_EXEC=$INSTALL_K3S_EXEC\"'",
        },
    )
    script = recorded.one(COMMAND, "t-server-install").values["create"]
    result = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    installer_flags = next(line for line in result.stdout.splitlines() if line.startswith("INSTALL_K3S_EXEC="))
    assert "--write-kubeconfig-mode=0600" in installer_flags.split()


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
    marks=pytest.mark.xfail(
        strict=True,
        reason="Known bug in components/k3s.py, for the k3s rewrite: on cgroup v1 the awk check's `exit 1` runs "
        "END, whose `exit !found` replaces the status with 0, so a disabled memory cgroup passes. Remove this "
        "marker when the test passes.",
    ),
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


@pytest.mark.parametrize("role,script", [("server", "k3s-uninstall.sh"), ("agent", "k3s-agent-uninstall.sh")])
def test_delete_uninstalls_k3s_and_passes_on_a_node_without_it(recorded, tmp_path, role, script):
    name = "t-server-install" if role == "server" else "t-agent-10-0-0-201-install"
    delete = recorded.one(COMMAND, name).values["delete"]
    assert f"/usr/local/bin/{script}" in delete
    delete = delete.replace("/usr/local/bin/", f"{tmp_path}/")
    absent = subprocess.run(["sh", "-c", delete], capture_output=True, text=True)
    assert absent.returncode == 0, absent.stderr
    (tmp_path / script).write_text("#!/bin/sh\necho uninstalled\n")
    (tmp_path / script).chmod(0o755)
    present = subprocess.run(["sh", "-c", delete], capture_output=True, text=True)
    assert (present.returncode, present.stdout) == (0, "uninstalled\n")
