"""CI's way to the node (docs/decisions/0005): run on a GitHub-hosted runner, after the stack is
selected, before `pulumi up`, `preview` or a drift check.

The stack publishes the node's SSH and its Kubernetes API behind Cloudflare Access (`sshHostname`,
`kubeApiHostname`), and admits CI's service token there. This forwards each hostname, with
`cloudflared access tcp`, to the very address and port the stack connects to: the node's address
goes on the runner's loopback, so the SSH connections and the kubeconfig's server that the state
records reach the node unchanged, and no resource input changes (a changed SSH host would rerun
the node's install).

`.venv/bin/python -m spitikos.ci_tunnel`. It reads the forwards from `pulumi stack output ciTunnel`
and the token from TUNNEL_SERVICE_TOKEN_ID / TUNNEL_SERVICE_TOKEN_SECRET, which it hands to
cloudflared by name only: the secret is never on a command line. cloudflared runs from the image
the cluster runs (components/versions.py, by digest), detached, until the runner is thrown away.
Each failure is one `::error` line saying what to do.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from components.tunnel import CI_TOKEN_ID, CI_TOKEN_SECRET
from components.versions import CLOUDFLARED_IMAGE

# A node known by name (not by address) is pointed here, in /etc/hosts: a loopback address no
# runner service uses (127.0.1.1 is Ubuntu's own host name).
NAMED_NODE_ADDRESS = "127.0.0.2"
READY_WITHIN_S = 90
# Binding a port below 1024 needs root; cloudflared's image runs as nonroot (65532).
PRIVILEGED_PORTS = 1024


class TunnelError(Exception):
    """What stops CI from reaching the node, said so that the operator knows what to do."""

    def __init__(self, title: str, message: str) -> None:
        super().__init__(f"::error title={title}::{message}")


@dataclass(frozen=True)
class Forward:
    kind: str
    """`ssh` or `kubeApi`: what answers at the far end."""
    hostname: str
    address: str
    port: int

    @property
    def container(self) -> str:
        return f"ci-tunnel-{self.kind.lower()}"


def read_forwards(output: dict) -> list[Forward]:
    """The `ciTunnel` output's forwards; a stack whose other nodes CI cannot reach is refused."""
    if output.get("unreachable"):
        raise TunnelError(
            "CI cannot reach every node",
            f"the stack also connects over SSH to {', '.join(output['unreachable'])}, which no hostname "
            "publishes: deploy it from the nodes' network (make up; docs/decisions/0005).",
        )
    forwards = [Forward(f["kind"], f["hostname"], f["address"], int(f["port"])) for f in output.get("forwards", [])]
    if {f.kind for f in forwards} != {"ssh", "kubeApi"}:
        raise TunnelError("No way to the node", f"ciTunnel names no SSH and API forwards: {output!r}")
    return forwards


def local_address(address: str) -> tuple[str, list[str], str | None]:
    """Where the forward listens for `address`, the command that makes it local, and that
    command's input: an IP is added to the loopback interface; a name is pointed at
    NAMED_NODE_ADDRESS by a line appended to /etc/hosts."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return NAMED_NODE_ADDRESS, ["sudo", "tee", "-a", "/etc/hosts"], f"{NAMED_NODE_ADDRESS} {address}\n"
    if ip.is_loopback:
        return address, [], None
    family, prefix = ("-6", 128) if ip.version == 6 else ("-4", 32)
    return address, ["sudo", "ip", family, "addr", "replace", f"{address}/{prefix}", "dev", "lo"], None


def listener(address: str, port: int) -> str:
    """`host:port` as cloudflared's --url takes it (IPv6 in brackets)."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def cloudflared_command(forward: Forward, listen_on: str) -> list[str]:
    """`cloudflared access tcp` in the pinned image, on the runner's network, detached. The token
    reaches it by name (`--env NAME` copies the value from docker's own environment)."""
    root = ["--user", "0:0"] if forward.port < PRIVILEGED_PORTS else []
    return [
        "docker", "run", "--detach", "--name", forward.container, "--network", "host", *root,
        "--env", CI_TOKEN_ID, "--env", CI_TOKEN_SECRET, CLOUDFLARED_IMAGE,
        "access", "tcp", "--hostname", forward.hostname, "--url", listener(listen_on, forward.port),
    ]  # fmt: skip


def answers(forward: Forward, address: str, timeout: float = 5.0) -> bool:
    """Whether the far end answers through the forward: SSH's banner, or a TLS handshake with the
    API server (its certificate is checked by Pulumi, with the kubeconfig's CA, not here)."""
    try:
        with socket.create_connection((address, forward.port), timeout=timeout) as conn:
            if forward.kind == "ssh":
                return conn.recv(64).startswith(b"SSH-")
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            with context.wrap_socket(conn):
                return True
    except OSError:
        return False


def taken(address: str, port: int) -> bool:
    """Whether something on the runner already accepts connections there."""
    try:
        with socket.create_connection((address, port), timeout=2):
            return True
    except OSError:
        return False


Run = Callable[..., subprocess.CompletedProcess]


def free_port(forward: Forward, address: str, run: Run) -> None:
    """The runner's own sshd listens on every address's port 22: stop it, or the forward cannot
    bind and SSH would reach the runner instead of the node."""
    if not taken(address, forward.port):
        return
    run(["sudo", "systemctl", "stop", "ssh.socket", "ssh.service"], check=False)
    if taken(address, forward.port):
        raise TunnelError(
            f"{listener(address, forward.port)} is taken on the runner",
            f"something on the runner listens on port {forward.port}, where {forward.hostname} must be forwarded.",
        )


def start(forwards: Sequence[Forward], run: Run) -> dict[Forward, str]:
    """Make each node address local and start its forward; returns where each one listens."""
    where = {}
    for forward in forwards:
        address, make_local, lines = local_address(forward.address)
        if make_local and address not in where.values():
            run(make_local, input=lines, text=True, check=True, stdout=subprocess.DEVNULL)
        free_port(forward, address, run)
        run(cloudflared_command(forward, address), check=True, stdout=subprocess.DEVNULL)
        where[forward] = address
    return where


def wait(where: dict[Forward, str], run: Run, within_s: float = READY_WITHIN_S) -> None:
    """Until each forward answers end to end; else its cloudflared's log and what to check."""
    deadline = time.monotonic() + within_s
    pending = dict(where)
    while pending:
        pending = {f: a for f, a in pending.items() if not answers(f, a)}
        if pending and time.monotonic() > deadline:
            forward = next(iter(pending))
            run(["docker", "logs", forward.container], check=False)
            raise TunnelError(
                f"{forward.hostname} does not answer",
                f"no {forward.kind} answer through {forward.hostname} within {within_s:.0f} s (its cloudflared's "
                "log is above). Check that the cluster's cloudflared runs, that this environment holds the "
                "current service token (pulumi stack output ciAccessTokens --show-secrets), and that the "
                "spitikos ci policy admits it (docs/decisions/0005).",
            )
        if pending:
            time.sleep(2)


def stack_output(run: Run) -> dict:
    result = run(["pulumi", "stack", "output", "ciTunnel", "--json"], capture_output=True, text=True, check=False)
    if result.returncode != 0 or not result.stdout.strip():
        raise TunnelError(
            "No ciTunnel output",
            "the stack has no ciTunnel output yet: set sshHostname and kubeApiHostname and run `make up` once "
            "from the node's network (docs/decisions/0005).",
        )
    return json.loads(result.stdout)


def main(run: Run = subprocess.run, environ: dict[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    try:
        missing = [name for name in (CI_TOKEN_ID, CI_TOKEN_SECRET) if not env.get(name)]
        if missing:
            raise TunnelError(
                "No service token",
                f"this job's environment does not hold {' and '.join(missing)}: with ciRepository set, "
                "`make up` writes them; otherwise set them from `pulumi stack output ciAccessTokens "
                "--show-secrets` (docs/decisions/0005).",
            )
        where = start(read_forwards(stack_output(run)), run)
        wait(where, run)
    except TunnelError as error:
        print(error)
        return 1
    for forward, address in where.items():
        print(f"{forward.hostname} -> {listener(address, forward.port)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
