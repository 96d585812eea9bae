"""The k3s cluster: a server node and optional agents, installed over SSH.

Each node's SSH host key is pinned: from the settings, or read once on first contact and
kept in state (trust on first use, as ssh's known_hosts does); every later connection
refuses another key. First contact is `ssh-keyscan` where `pulumi up` runs, and depends on
the node's host and port alone: a new SSH key, user or anything else never reads it again
(an attacker answering as the node during a key rotation would otherwise get pinned).
Each node gets a preflight check, then an install that runs k3s's own idempotent installer
whenever anything it depends on changes (version, flags, token), and upgrades in place when
the pinned version changes (the version lives in the `create`/`update` scripts, never in
`triggers`). Secrets (the agent token) reach a node on standard input, into a 0600 file,
never in a command's text or argv. Deleting or replacing an install resource leaves k3s
alone unless the stack opts in to uninstalling.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
from pulumi_command import local, remote

from components import versions
from components.settings import host_key_line, url_host

# What a node must have. A 4 GB Pi 5 reports about 3.9 GiB; the 2 GB model is too small.
MIN_MEMORY_KIB = 3 * 1024 * 1024
MIN_FREE_DISK_KIB = 8 * 1024 * 1024
API_PORT = 6443
# Where a node keeps the agent token, written from standard input with mode 0600.
TOKEN_FILE = "/etc/rancher/k3s/spitikos-agent-token"  # noqa: S105 - a path, not a secret
# Longest a download, the installer, or the wait for the service may take, in seconds: a k3s
# unit that never starts fails `pulumi up` with a message instead of hanging it.
DOWNLOAD_TIMEOUT = 300
INSTALL_TIMEOUT = 900
SERVICE_TIMEOUT = 300
# How long ssh-keyscan waits for a node on first contact, in seconds (its `-T`).
KEYSCAN_TIMEOUT = 20

# What k3s bundles and the platform keeps off (k3s server flags, v1.35): Traefik (NGINX serves
# ingress); ServiceLB, which would publish every LoadBalancer Service on the node's ports; and the
# Helm controller, which installs any HelmChart, in any namespace, with a Job it binds to
# cluster-admin. Nothing here uses either. Every server gets the same (`--disable` is a critical
# flag), and an existing server gets them on the next `pulumi up`: the install re-runs when its
# script changes and k3s's installer restarts k3s with the new unit (docs/operations.md).
DISABLED = ("--disable=traefik", "--disable=servicelb", "--disable-helm-controller")

# Pod Security for every namespace without labels, cluster-wide (k3s's CIS hardening guide): the
# API server's admission configuration, written by the server's install before k3s starts.
POD_SECURITY_FILE = "/etc/rancher/k3s/pod-security.yaml"
# Only what must run privileged: k3s's own pods (local-path's helper pods mount host paths). The
# platform's namespaces and the applications' carry or get their own level.
POD_SECURITY_EXEMPT_NAMESPACES = ("kube-system",)
POD_SECURITY_ENFORCED = "baseline"
"""The Pod Security level the API server enforces where a namespace's labels name none."""

# etcd (datastore `etcd`): the server token k3s generated, read back into state (a restore and every
# joining server need it), and where a joining server keeps it (written from standard input, 0600).
SERVER_TOKEN_PATH = "/var/lib/rancher/k3s/server/token"  # noqa: S105 - a path, not a secret
SERVER_TOKEN_FILE = "/etc/rancher/k3s/spitikos-server-token"  # noqa: S105 - a path, not a secret
# The S3 settings of etcd snapshots: a k3s config drop-in (k3s reads config.yaml.d/*.yaml after
# config.yaml), root's alone, never flags: flags show in `ps` and in the systemd unit file.
ETCD_SNAPSHOT_CONFIG = "/etc/rancher/k3s/config.yaml.d/spitikos-etcd-snapshots.yaml"

# What `k3s etcd-snapshot ls` names a snapshot: the base name, the node's name, a timestamp.
_SNAPSHOT_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,250}")

CMDLINE_FIX = "add 'cgroup_enable=memory cgroup_memory=1' to the single line of /boot/firmware/cmdline.txt, then reboot"


@dataclass
class NodeArgs:
    """One machine reachable over SSH."""

    host: str
    user: str
    port: int
    private_key: pulumi.Input[str]
    host_key: str | None = None
    """Its SSH host key (`ssh-ed25519 AAAA...`); without one, the key seen first is pinned."""
    key: str = ""
    """A stable name its resources are named after (agents); defaults to the host's."""

    @property
    def label(self) -> str:
        return self.key or self.host.replace(".", "-").replace(":", "-")


@dataclass
class K3sClusterArgs:
    server: NodeArgs
    version: str
    agents: Sequence[NodeArgs] = field(default_factory=list)
    # Extra names for the API server certificate (the node's address is always in it).
    tls_sans: Sequence[str] = field(default_factory=list)
    uninstall_on_destroy: bool = False
    """Run k3s's uninstall script (which wipes the node's volumes) when an install resource is deleted."""
    kubeconfig_renewal: str = ""
    """Change it (any text, e.g. a date) to read the kubeconfig again, after k3s renewed its certificates."""
    etcd: bool = False
    """Embedded etcd instead of SQLite: `--cluster-init` (k3s migrates SQLite to etcd in place)."""
    etcd_snapshots: EtcdSnapshotArgs | None = None
    """Where etcd snapshots go off the node (etcd only)."""
    servers: Sequence[NodeArgs] = field(default_factory=list)
    """Servers that join the first, one after the other (etcd only; 0 or 2 of them)."""


@dataclass
class EtcdSnapshotArgs:
    """etcd snapshots on a schedule, compressed, kept on each server and in an S3 bucket (R2)."""

    endpoint: str
    """The S3 endpoint without a scheme, e.g. `<account>.r2.cloudflarestorage.com`."""
    bucket: str
    folder: str
    region: str
    access_key_id: pulumi.Input[str]
    secret_access_key: pulumi.Input[str]
    schedule: str = "0 */6 * * *"
    """k3s's `etcd-snapshot-schedule-cron`: every 6 hours."""
    retention: int = 8
    """Snapshots kept on each server (2 days at 6 hours)."""
    s3_retention: int = 28
    """Snapshots kept in the bucket (7 days): k3s's `etcd-s3-retention` (v1.31.12, v1.32.8, v1.33.4, v1.34.0 on)."""


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
  # cgroup v1: the `memory` row's `enabled` column. (An `exit` in the main block would run END,
  # whose own `exit` would replace the status.)
  awk '$1=="memory" {{found=1; enabled=$4}} END {{exit !(found && enabled == 1)}}' /proc/cgroups \\
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


def install_script(
    version: str,
    exec_args: Sequence[str],
    env: Sequence[str] = (),
    service: str = "k3s",
    token_file: str = "",
    installer_sha256: str | None = None,
) -> str:
    """Installs, reconfigures or upgrades k3s to `version` with k3s's own installer, which is
    idempotent (it restarts k3s only when the binary, unit or environment changed).

    The installer is fetched from the release's own tag, so the script is pinned too. With
    `token_file`, the script first writes its standard input there (mode 0600): that is how
    the agent token arrives. `env` holds no secret. With `installer_sha256`, the installer runs only
    if it has that hash; it then checks the k3s binary itself against the release's published
    `sha256sum-arm64.txt` (install.sh's download_hash/verify_binary; INSTALL_K3S_SKIP_DOWNLOAD,
    which would skip that, is never set here).
    """
    installer = f"https://raw.githubusercontent.com/k3s-io/k3s/{quote(version, safe='')}/install.sh"
    flags = " ".join(shlex.quote(a) for a in exec_args)
    env_prefix = " ".join(env)
    save_token = (
        f"sudo -n sh -c 'umask 077 && mkdir -p {shlex.quote(token_file.rsplit('/', 1)[0])} "
        f"&& cat > {shlex.quote(token_file)}'\n"
        if token_file
        else ""
    )
    return f"""set -eu
want={shlex.quote(version)}
have=$(k3s --version 2>/dev/null | awk 'NR==1 {{print $3}}' || true)
{save_token}installer=$(mktemp)
trap 'rm -f "$installer"' EXIT
curl -sfL --max-time {DOWNLOAD_TIMEOUT} --retry 3 -o "$installer" {installer} \\
  || {{ echo "could not download the k3s installer for $want" >&2; exit 1; }}
{_verify_installer(installer_sha256)}timeout {INSTALL_TIMEOUT} env {env_prefix} INSTALL_K3S_VERSION="$want" \\
  INSTALL_K3S_EXEC={shlex.quote(flags)} sh "$installer"
got=$(k3s --version 2>/dev/null | awk 'NR==1 {{print $3}}' || true)
[ "$got" = "$want" ] || {{ echo "k3s reports '$got' after installing $want" >&2; exit 1; }}
timeout {SERVICE_TIMEOUT} sh -c 'until systemctl is-active --quiet {service}; do sleep 2; done' \\
  || {{ echo "{service} is not active after {SERVICE_TIMEOUT}s: see sudo journalctl -u {service}" >&2; exit 1; }}
echo "k3s $want installed and {service} active (was: ${{have:-none}})"
"""


def _verify_installer(sha256: str | None) -> str:
    """Shell lines that stop unless "$installer" has the pinned sha256 (or warn when none is pinned)."""
    if not sha256:
        return 'echo "warning: no sha256 of the k3s installer for $want is pinned (components/versions.py)" >&2\n'
    return (
        f'echo "{sha256}  $installer" | sha256sum -c --status \\\n'
        '  || { echo "the k3s installer downloaded for $want does not match the sha256 pinned in '
        'components/versions.py: not running it" >&2; exit 1; }\n'
    )


def pod_security_config(exempt_namespaces: Sequence[str] = POD_SECURITY_EXEMPT_NAMESPACES) -> str:
    """The AdmissionConfiguration (apiserver.config.k8s.io/v1) for the PodSecurity plugin: `baseline`
    enforced and `restricted` audited and warned wherever a namespace's labels say nothing.
    JSON, which the API server reads as the YAML it is."""
    config = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AdmissionConfiguration",
        "plugins": [
            {
                "name": "PodSecurity",
                "configuration": {
                    "apiVersion": "pod-security.admission.config.k8s.io/v1",
                    "kind": "PodSecurityConfiguration",
                    "defaults": {
                        "enforce": POD_SECURITY_ENFORCED,
                        "enforce-version": "latest",
                        "audit": "restricted",
                        "audit-version": "latest",
                        "warn": "restricted",
                        "warn-version": "latest",
                    },
                    "exemptions": {"usernames": [], "runtimeClasses": [], "namespaces": list(exempt_namespaces)},
                },
            }
        ],
    }
    return json.dumps(config, indent=2)


def pod_security_script(config: str, path: str = POD_SECURITY_FILE) -> str:
    """Writes the admission configuration, root's alone (0600), before the installer runs. The text
    is part of the install script, so changing it updates the install, which runs again; and since
    the API server reads the file only when it starts, a running k3s restarts when the file changed
    (the installer restarts it only for its own changes). Pods keep running across the restart.
    Nothing here reads the script's standard input: the agent token that comes after is left whole."""
    delimiter = "SPITIKOS_POD_SECURITY"
    if delimiter in config:
        raise ValueError(f"the Pod Security configuration may not contain {delimiter}")
    directory = path.rsplit("/", 1)[0]
    write = (
        f"umask 077 && mkdir -p {directory} && cat > {path}.new && "
        f"if cmp -s {path}.new {path}; then rm -f {path}.new; else mv {path}.new {path} && echo changed; fi"
    )
    return f"""set -eu
pod_security=$(sudo -n sh -c {shlex.quote(write)} <<'{delimiter}'
{config}
{delimiter}
)
if [ "$pod_security" = changed ] && systemctl is-active --quiet k3s </dev/null; then
  sudo -n sh -c 'systemctl restart k3s' </dev/null
fi
"""


def etcd_snapshot_config(args: EtcdSnapshotArgs) -> pulumi.Output[str]:
    """The drop-in's text (JSON, which k3s reads as the YAML it is): k3s's own keys for scheduled,
    compressed snapshots uploaded to S3 (docs.k3s.io/cli/etcd-snapshot). Secret: it holds the keys."""

    def render(keys: list[str]) -> str:
        access_key, secret_key = keys
        config = {
            "etcd-snapshot-schedule-cron": args.schedule,
            "etcd-snapshot-retention": args.retention,
            "etcd-snapshot-compress": True,
            "etcd-s3": True,
            "etcd-s3-endpoint": args.endpoint,
            "etcd-s3-region": args.region,
            "etcd-s3-bucket": args.bucket,
            "etcd-s3-folder": args.folder,
            "etcd-s3-access-key": access_key,
            "etcd-s3-secret-key": secret_key,
            "etcd-s3-retention": args.s3_retention,
        }
        return json.dumps(config, indent=2) + "\n"

    return pulumi.Output.secret(pulumi.Output.all(args.access_key_id, args.secret_access_key).apply(render))


def config_file_script(path: str, service: str = "k3s") -> str:
    """Writes standard input to `path`, root's alone (0600, in a 0700 directory when it creates it),
    and restarts a running `service` when the file changed: k3s reads its config only when it starts.
    The content never appears in the script, in argv, or in the output."""
    directory = path.rsplit("/", 1)[0]
    write = (
        f"umask 077 && mkdir -p {directory} && cat > {path}.new && chmod 0600 {path}.new && "
        f"if cmp -s {path}.new {path}; then rm -f {path}.new; else mv {path}.new {path} && echo changed; fi"
    )
    return f"""set -eu
written=$(sudo -n sh -c {shlex.quote(write)})
if [ "$written" = changed ] && systemctl is-active --quiet {service} </dev/null; then
  sudo -n sh -c 'systemctl restart {service}' </dev/null
fi
echo "{path} is in place"
"""


def joining_server_flags(first_flags: Sequence[str], first_host: str, own_host: str, url: str) -> list[str]:
    """A joining server's flags: the first server's, critical ones included (k3s refuses a server whose
    `--disable`, `--secrets-encryption` and the like differ), its own address in its certificate
    instead of the first's, and the first's URL and the server token instead of `--cluster-init`
    and the agent token file (joining servers read the agent token from the datastore)."""
    flags = [
        f"--tls-san={own_host}" if flag == f"--tls-san={first_host}" else flag
        for flag in first_flags
        if flag != "--cluster-init" and not flag.startswith("--agent-token-file=")
    ]
    return [*flags, f"--server={url}", f"--token-file={SERVER_TOKEN_FILE}"]


def etcd_restore_script(snapshot: str) -> str:
    """Brings the first server's datastore back from an etcd snapshot in the bucket (k3s's
    `--cluster-reset --cluster-reset-restore-path`, with the S3 settings from the config drop-in),
    with the original cluster's server token on standard input: k3s decrypts the snapshot's bootstrap
    data with it. The token goes to a root-only temporary file, removed at the end, never to argv."""
    if not _SNAPSHOT_NAME_RE.fullmatch(snapshot):
        raise ValueError(f"{snapshot!r} is not a snapshot name as `k3s etcd-snapshot ls` prints it")
    return f"""set -eu
snapshot={shlex.quote(snapshot)}
token=$(sudo -n mktemp /etc/rancher/k3s/restore-token.XXXXXX)
trap 'sudo -n rm -f "$token"' EXIT
sudo -n sh -c "umask 077 && cat > $token"
sudo -n test -s {ETCD_SNAPSHOT_CONFIG} </dev/null \
  || {{ echo "no {ETCD_SNAPSHOT_CONFIG}: run pulumi up with datastore etcd and backupBucket first" >&2; exit 1; }}
sudo -n systemctl stop k3s </dev/null
timeout {INSTALL_TIMEOUT} sudo -n k3s server --cluster-reset --etcd-s3 --cluster-reset-restore-path="$snapshot" \
  --token-file="$token" </dev/null \
  || {{ echo "k3s could not restore $snapshot: see the output above" >&2; exit 1; }}
sudo -n systemctl start k3s </dev/null
echo "restored $snapshot; k3s started"
"""


def uninstall_script(service: str) -> str:
    script = "/usr/local/bin/k3s-uninstall.sh" if service == "k3s" else "/usr/local/bin/k3s-agent-uninstall.sh"
    return f"if [ -x {script} ]; then {script}; fi"


def keyscan_script(host: str, port: int) -> str:
    """Reads the node's ed25519 host key from where `pulumi up` runs; fails, saying why, when the
    node shows none. Only the first line: a name with several addresses prints one per address."""
    target = f"{shlex.quote(host)}:{port}"
    return f"""set -eu
command -v ssh-keyscan >/dev/null || {{ echo "ssh-keyscan is not installed where pulumi up runs \
(Debian/Ubuntu: openssh-client); it reads {target}'s host key on first contact" >&2; exit 1; }}
key=$(ssh-keyscan -T {KEYSCAN_TIMEOUT} -t ed25519 -p {port} {shlex.quote(host)} 2>/dev/null \
  | grep -v '^#' | head -n 1 || true)
[ -n "$key" ] || {{ echo "ssh-keyscan read no ed25519 host key from {target} within {KEYSCAN_TIMEOUT}s: is the node up \
and reachable from here, with sshd on that port? Or set its host key in the settings" >&2; exit 1; }}
printf '%s\n' "$key"
"""


def first_contact_key(keyscan_line: str) -> str:
    """`ssh-ed25519 AAAA...` from the `HOST ssh-ed25519 AAAA...` line ssh-keyscan prints, parsed as
    the `nodeHostKey` setting is; anything else stops the run rather than pin a garbled key."""
    key = host_key_line(keyscan_line)
    if key is None:
        raise ValueError("ssh-keyscan's answer from the node does not hold an SSH host key")
    return key


def rewrite_kubeconfig(kubeconfig: str, host: str) -> str:
    """k3s writes its kubeconfig for 127.0.0.1; point it at the node instead."""
    return kubeconfig.replace(f"https://127.0.0.1:{API_PORT}", f"https://{url_host(host)}:{API_PORT}")


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
    agent_token: pulumi.Output[str]
    """What agents join with: it admits agents only, unlike the server token (cluster admin). Secret."""

    def __init__(self, name: str, args: K3sClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spitikos:k3s:K3sCluster", name, None, opts)
        self.server_address = args.server.host
        self.version = args.version
        self.uninstall_on_destroy = args.uninstall_on_destroy
        token = random.RandomPassword(
            f"{name}-agent-token", length=48, special=False, opts=pulumi.ResourceOptions(parent=self)
        )
        self.agent_token = pulumi.Output.secret(token.result)

        server = args.server
        connection = self._pinned_connection(f"{name}-server", server)
        sans = [server.host, *[s for s in args.tls_sans if s != server.host]]
        server_flags = ["server", *DISABLED, "--secrets-encryption", "--write-kubeconfig-mode=0600"]
        server_flags += [f"--tls-san={s}" for s in sans]
        server_flags += [f"--agent-token-file={TOKEN_FILE}"]
        server_flags += [f"--kube-apiserver-arg=admission-control-config-file={POD_SECURITY_FILE}"]
        server_flags += ["--cluster-init"] if args.etcd else []
        installer_sha256 = versions.K3S_INSTALLER_SHA256.get(args.version)
        script = pod_security_script(pod_security_config()) + install_script(
            args.version, server_flags, token_file=TOKEN_FILE, installer_sha256=installer_sha256
        )
        snapshot_config = self._etcd_snapshot_config(f"{name}-server", connection, args)
        install = self._install(f"{name}-server", connection, script, "k3s", after=snapshot_config)
        self.install = install
        self.server_token = self._server_token(name, connection, install, args)
        self.server_installs = self._join_servers(name, args, server_flags, install)

        # Read again when the install is replaced (a new machine), the version changes (an upgrade
        # may renew the certificates), or the operator asks (k3s renews them on the node yearly).
        triggers = [install.id, args.version, args.kubeconfig_renewal]
        raw_kubeconfig = self._read_secret(
            name, "kubeconfig", connection, "/etc/rancher/k3s/k3s.yaml", install, triggers
        )
        self.kubeconfig = pulumi.Output.secret(raw_kubeconfig.apply(lambda k: rewrite_kubeconfig(k, server.host)))

        self.agent_installs = self._agents(name, args, install, installer_sha256)

        self.provider = k8s.Provider(
            f"{name}-kubernetes",
            kubeconfig=self.kubeconfig,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"kubeconfig": self.kubeconfig, "server_address": self.server_address})

    def _agents(
        self, name: str, args: K3sClusterArgs, install: remote.Command, installer_sha256: str | None
    ) -> list[remote.Command]:
        """Each agent joins the first server with the agent-only token, once that server runs."""
        server_url = f"https://{url_host(self.server_address)}:{API_PORT}"
        return [
            self._install(
                f"{name}-agent-{agent.label}",
                self._pinned_connection(f"{name}-agent-{agent.label}", agent),
                install_script(
                    args.version,
                    ["agent"],
                    env=[f"K3S_URL={shlex.quote(server_url)}", f"K3S_TOKEN_FILE={TOKEN_FILE}"],
                    service="k3s-agent",
                    token_file=TOKEN_FILE,
                    installer_sha256=installer_sha256,
                ),
                "k3s-agent",
                after=[install],
            )
            for agent in args.agents
        ]

    def _pinned_connection(self, prefix: str, node: NodeArgs) -> remote.ConnectionArgs:
        """A connection that refuses any host key but the node's: the configured one, or the one
        seen on first contact (read once, then kept in state; never read again on its own)."""
        host_key: pulumi.Input[str]
        if node.host_key:
            host_key = node.host_key
        else:
            host_key = self._first_contact(prefix, node)
        return _connection(node, host_key=host_key)

    def _first_contact(self, prefix: str, node: NodeArgs) -> pulumi.Output[str]:
        """The key the node shows first, read by ssh-keyscan where `pulumi up` runs. Its inputs are
        the host and port alone, so nothing else (a rotated SSH key, another user) reads it again.
        Earlier versions read it over SSH with a `remote` command of the same name, which the alias
        carries over; its inputs differ, so the first run after the upgrade reads the key once more
        (the same key, unless someone answers as the node then: pin it in the settings first to
        rule that out, see docs/operations.md)."""
        first_contact = local.Command(
            f"{prefix}-host-key",
            create=keyscan_script(node.host, node.port),
            triggers=[node.host, node.port],
            opts=pulumi.ResourceOptions(parent=self, aliases=[pulumi.Alias(type_="command:remote:Command")]),
        )
        return first_contact.stdout.apply(first_contact_key)

    def _install(
        self,
        prefix: str,
        connection: remote.ConnectionArgs,
        script: str,
        service: str,
        after: Sequence[pulumi.Resource] = (),
        stdin: pulumi.Input[str] | None = None,
    ) -> remote.Command:
        role = "server" if service == "k3s" else "agent"
        preflight = remote.Command(
            f"{prefix}-preflight",
            connection=connection,
            create=preflight_script(role),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return remote.Command(
            f"{prefix}-install",
            connection=connection,
            create=script,
            update=script,
            # The agent token (a joining server's: the server token) on standard input: never in the
            # command's text, which pulumi-command prints when a command fails, nor in any argv on the node.
            stdin=self.agent_token if stdin is None else stdin,
            delete=uninstall_script(service) if self.uninstall_on_destroy else None,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[preflight, *after],
                custom_timeouts=pulumi.CustomTimeouts(create="25m", update="25m"),
            ),
        )

    def _etcd_snapshot_config(
        self, prefix: str, connection: remote.ConnectionArgs, args: K3sClusterArgs
    ) -> list[remote.Command]:
        """The snapshots' S3 settings, as a config drop-in written from standard input before k3s
        (re)starts; removed again when the stack stops sending snapshots to the bucket."""
        if not (args.etcd and args.etcd_snapshots):
            return []
        script = config_file_script(ETCD_SNAPSHOT_CONFIG)
        dropin = remote.Command(
            f"{prefix}-etcd-snapshots",
            connection=connection,
            create=script,
            update=script,
            stdin=etcd_snapshot_config(args.etcd_snapshots),
            delete=f"sudo -n rm -f {ETCD_SNAPSHOT_CONFIG}",
            logging=remote.Logging.STDERR,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return [dropin]

    def _server_token(
        self, name: str, connection: remote.ConnectionArgs, install: remote.Command, args: K3sClusterArgs
    ) -> pulumi.Output[str] | None:
        """The token k3s generated on the first server, kept in state as a secret: joining servers
        need it, and so does restoring an etcd snapshot (it encrypts the bootstrap data in it).
        Read back rather than set: a token given to a server that already has one stops it."""
        if not args.etcd:
            return None
        return self._read_secret(name, "token", connection, SERVER_TOKEN_PATH, install, [install.id])

    def _join_servers(
        self, name: str, args: K3sClusterArgs, first_flags: Sequence[str], first: remote.Command
    ) -> list[remote.Command]:
        """Each joining server, one after the other (etcd adds one member at a time), with the first's
        critical flags, its own address in its certificate, and the server token on standard input."""
        installs: list[remote.Command] = []
        previous = first
        url = f"https://{url_host(args.server.host)}:{API_PORT}"
        for server in args.servers:
            prefix = f"{name}-server-{server.label}"
            connection = self._pinned_connection(prefix, server)
            flags = joining_server_flags(first_flags, args.server.host, server.host, url)
            script = pod_security_script(pod_security_config()) + install_script(
                args.version,
                flags,
                token_file=SERVER_TOKEN_FILE,
                installer_sha256=versions.K3S_INSTALLER_SHA256.get(args.version),
            )
            after = [previous, *self._etcd_snapshot_config(prefix, connection, args)]
            previous = self._install(prefix, connection, script, "k3s", after=after, stdin=self.server_token)
            installs.append(previous)
        return installs

    def _read_secret(
        self,
        name: str,
        what: str,
        connection: remote.ConnectionArgs,
        path: str,
        install: remote.Command,
        triggers: Sequence[pulumi.Input[str]],
    ) -> pulumi.Output[str]:
        """Reads a file the install wrote; its content is secret, so it is neither logged nor shown."""
        read = remote.Command(
            f"{name}-server-{what}",
            connection=connection,
            create=f"sudo -n cat {path}",
            logging=remote.Logging.NONE,
            triggers=list(triggers),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[install], additional_secret_outputs=["stdout"]),
        )
        return pulumi.Output.secret(read.stdout)


def _connection(node: NodeArgs, host_key: pulumi.Input[str] | None) -> remote.ConnectionArgs:
    return remote.ConnectionArgs(
        host=node.host,
        port=node.port,
        user=node.user,
        private_key=node.private_key,
        host_key=host_key,
        dial_error_limit=20,
        per_dial_timeout=15,
    )
