"""The k3s cluster: a server node and optional agents, installed over SSH.

Each node gets a preflight check, then an install that is idempotent (the script
exits early when the pinned version already runs) and upgrades in place when the
pinned version changes (the version lives in the `create`/`update` scripts, never in
`triggers`, which would replace the resource and so uninstall k3s first).
Deleting a node's install resource runs the k3s uninstall script.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

import pulumi
import pulumi_kubernetes as k8s
from pulumi_command import remote

# What a node must have. A 4 GB Pi 5 reports about 3.9 GiB; the 2 GB model is too small.
MIN_MEMORY_KIB = 3 * 1024 * 1024
MIN_FREE_DISK_KIB = 8 * 1024 * 1024
API_PORT = 6443

CMDLINE_FIX = "add 'cgroup_enable=memory cgroup_memory=1' to the single line of /boot/firmware/cmdline.txt, then reboot"


@dataclass
class NodeArgs:
    """One machine reachable over SSH."""

    host: str
    user: str
    port: int
    private_key: pulumi.Input[str]
    host_key: str | None = None


@dataclass
class K3sClusterArgs:
    server: NodeArgs
    version: str
    agents: Sequence[NodeArgs] = field(default_factory=list)
    # Extra names for the API server certificate (the node's address is always in it).
    tls_sans: Sequence[str] = field(default_factory=list)


def preflight_script(role: str) -> str:
    """Checks a node before k3s touches it; each failure says what to do."""
    return f"""set -eu
fail() {{ echo "spitikos preflight ({role} node $(hostname)): $1" >&2; exit 1; }}
arch=$(uname -m)
case "$arch" in aarch64|arm64) ;; *) fail "this node is $arch, but the platform needs arm64 (aarch64): \
install the 64-bit Ubuntu Server for Raspberry Pi";; esac
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  grep -qw memory /sys/fs/cgroup/cgroup.controllers || fail "the memory cgroup is not enabled: {CMDLINE_FIX}"
else
  awk '$1=="memory" {{found=1; if ($4 != 1) exit 1}} END {{exit !found}}' /proc/cgroups \\
    || fail "the memory cgroup is not enabled: {CMDLINE_FIX}"
fi
mem=$(awk '/^MemTotal:/ {{print $2}}' /proc/meminfo)
[ "$mem" -ge {MIN_MEMORY_KIB} ] || fail "only $((mem / 1024)) MiB of RAM; the platform needs a 4 GB Pi 5 or larger"
disk=$(df -Pk / | awk 'NR==2 {{print $4}}')
[ "$disk" -ge {MIN_FREE_DISK_KIB} ] || fail "only $((disk / 1024)) MiB free on /; free at least 8 GiB"
command -v curl >/dev/null || fail "curl is missing: sudo apt-get install -y curl"
sudo -n true 2>/dev/null || fail "user $(id -un) needs password-less sudo (Ubuntu Server's first user has it)"
echo "preflight ok: $arch, $((mem / 1024)) MiB RAM, $((disk / 1024 / 1024)) GiB free"
"""


def install_script(version: str, exec_args: Sequence[str], env: Sequence[str] = ()) -> str:
    """Installs or upgrades k3s to `version`; does nothing when that version already runs.

    The installer is fetched from the release's own tag, so the script is pinned too.
    `env` may hold secrets (the join token): the caller passes them as Outputs.
    """
    installer = f"https://raw.githubusercontent.com/k3s-io/k3s/{quote(version, safe='')}/install.sh"
    flags = " ".join(shlex.quote(a) for a in exec_args)
    env_prefix = " ".join(env)
    return f"""set -eu
want={shlex.quote(version)}
have=$(k3s --version 2>/dev/null | awk 'NR==1 {{print $3}}' || true)
if [ "$have" = "$want" ]; then echo "k3s $want is already installed"; exit 0; fi
curl -sfL {installer} | {env_prefix} INSTALL_K3S_VERSION="$want" INSTALL_K3S_EXEC={shlex.quote(flags)} sh -
echo "k3s $want installed (was: ${{have:-none}})"
"""


def rewrite_kubeconfig(kubeconfig: str, host: str) -> str:
    """k3s writes its kubeconfig for 127.0.0.1; point it at the node instead."""
    server = f"https://{host}:{API_PORT}" if ":" not in host else f"https://[{host}]:{API_PORT}"
    return kubeconfig.replace(f"https://127.0.0.1:{API_PORT}", server)


class K3sCluster(pulumi.ComponentResource):
    """A k3s server (Traefik disabled) plus agents, its kubeconfig and a Kubernetes provider."""

    kubeconfig: pulumi.Output[str]
    """The cluster-admin kubeconfig, server rewritten to the node's address. Secret."""
    provider: k8s.Provider
    """The Kubernetes provider every in-cluster component uses."""
    server_address: str
    """The server node's address."""
    version: str
    """The k3s version the nodes run."""

    def __init__(self, name: str, args: K3sClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spitikos:k3s:K3sCluster", name, None, opts)
        self.server_address = args.server.host
        self.version = args.version

        server = args.server
        connection = _connection(server)
        preflight = remote.Command(
            f"{name}-server-preflight",
            connection=connection,
            create=preflight_script("server"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        sans = [server.host, *[s for s in args.tls_sans if s != server.host]]
        server_flags = ["server", "--disable=traefik", "--secrets-encryption", "--write-kubeconfig-mode=0600"]
        server_flags += [f"--tls-san={s}" for s in sans]
        script = install_script(args.version, server_flags)
        install = remote.Command(
            f"{name}-server-install",
            connection=connection,
            create=script,
            update=script,
            delete="if [ -x /usr/local/bin/k3s-uninstall.sh ]; then /usr/local/bin/k3s-uninstall.sh; fi",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[preflight]),
        )
        self.install = install

        raw_kubeconfig = self._read_secret(name, "kubeconfig", connection, "/etc/rancher/k3s/k3s.yaml", install)
        self.kubeconfig = pulumi.Output.secret(raw_kubeconfig.apply(lambda k: rewrite_kubeconfig(k, server.host)))
        token = self._read_secret(name, "token", connection, "/var/lib/rancher/k3s/server/node-token", install)
        self.token = pulumi.Output.secret(token.apply(str.strip))

        self.agent_installs = [self._agent(name, agent, args.version, token) for agent in args.agents]

        self.provider = k8s.Provider(
            f"{name}-kubernetes",
            kubeconfig=self.kubeconfig,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"kubeconfig": self.kubeconfig, "server_address": self.server_address})

    def _read_secret(
        self, name: str, what: str, connection: remote.ConnectionArgs, path: str, install: remote.Command
    ) -> pulumi.Output[str]:
        """Reads a file the install wrote; its content is secret, so it is neither logged nor shown."""
        read = remote.Command(
            f"{name}-server-{what}",
            connection=connection,
            create=f"sudo cat {path}",
            logging=remote.Logging.NONE,
            # Read again when the install is replaced (a new machine at the same name).
            triggers=[install.id],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[install], additional_secret_outputs=["stdout"]),
        )
        return pulumi.Output.secret(read.stdout)

    def _agent(self, name: str, agent: NodeArgs, version: str, token: pulumi.Output[str]) -> remote.Command:
        connection = _connection(agent)
        label = agent.host.replace(".", "-").replace(":", "-")
        preflight = remote.Command(
            f"{name}-agent-{label}-preflight",
            connection=connection,
            create=preflight_script("agent"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        server_url = f"https://{self.server_address}:{API_PORT}"
        # The token is secret, so the whole script (and the resource's inputs) is too.
        script = pulumi.Output.secret(token).apply(
            lambda t: install_script(
                version,
                ["agent"],
                env=[f"K3S_URL={shlex.quote(server_url)}", f"K3S_TOKEN={shlex.quote(t.strip())}"],
            )
        )
        return remote.Command(
            f"{name}-agent-{label}-install",
            connection=connection,
            create=script,
            update=script,
            delete="if [ -x /usr/local/bin/k3s-agent-uninstall.sh ]; then /usr/local/bin/k3s-agent-uninstall.sh; fi",
            logging=remote.Logging.STDERR,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[preflight]),
        )


def _connection(node: NodeArgs) -> remote.ConnectionArgs:
    return remote.ConnectionArgs(
        host=node.host,
        port=node.port,
        user=node.user,
        private_key=node.private_key,
        host_key=node.host_key,
        dial_error_limit=20,
    )
