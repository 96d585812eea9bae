"""CI's way to the node (spitikos/ci_tunnel.py, docs/decisions/0005): forwards through Access to the
very addresses the state records, the token never on a command line, and a clear stop otherwise."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import threading

import pytest
import yaml
from conftest import stack_config

from components import versions
from components.tunnel import CI_TOKEN_ID, CI_TOKEN_SECRET
from spitikos import ci_tunnel
from spitikos.ci_tunnel import Forward

TOKEN = {CI_TOKEN_ID: "0123abcd.access", CI_TOKEN_SECRET: "s3cret-value-never-on-argv"}


class Runner:
    """Stands in for subprocess.run: records each command, answers `pulumi stack output`."""

    def __init__(self, output: str | None) -> None:
        self.output = output
        self.calls: list[list[str]] = []

    def __call__(self, argv, **kwargs):
        self.calls.append(list(argv))
        if argv[:3] == ["pulumi", "stack", "output"]:
            code = 0 if self.output is not None else 255
            return subprocess.CompletedProcess(argv, code, self.output or "", "error: no output named ciTunnel")
        return subprocess.CompletedProcess(argv, 0, "", "")


def test_the_forwards_reach_the_node_at_the_addresses_the_state_records(stack):
    """A changed SSH host reruns the node's install, a changed kubeconfig replaces the provider: CI
    must connect to exactly what the stack connects to, so every forward listens there. Those are
    the node's own address, never a hostname of the tunnel: the operator's first `make up`, on the
    LAN before any tunnel exists, connects to the same."""
    output, secret = stack.exports["ciTunnel"]
    assert not secret
    forwards = {(f.address, f.port): f for f in ci_tunnel.read_forwards(output)}
    for command in stack.of_type("command:remote:Command"):
        connection = command.values["connection"]
        assert connection["host"] == stack_config()["spitikos:nodeHost"], command.name
        assert forwards[(connection["host"], connection["port"])].kind == "ssh", command.name
        assert forwards[(connection["host"], connection["port"])].hostname == "ssh.taehoonlee.cloud"
    kubeconfig = yaml.safe_load(stack.one("pulumi:providers:kubernetes").values["kubeconfig"])
    (server,) = {c["cluster"]["server"] for c in kubeconfig["clusters"]}
    host, port = re.fullmatch(r"https://(.+):(\d+)", server).groups()
    assert forwards[(host, int(port))].kind == "kubeApi"
    assert forwards[(host, int(port))].hostname == "k8s.taehoonlee.cloud"


def test_a_stack_without_both_hostnames_has_no_ci_tunnel(fresh):
    assert "ciTunnel" not in fresh.exports and "ciAccessTokens" not in fresh.exports


def test_a_stack_with_nodes_no_hostname_publishes_is_refused_with_what_to_do(with_agent_and_host_key):
    output, _ = with_agent_and_host_key.exports["ciTunnel"]
    assert "10.0.0.201" in output["unreachable"]
    with pytest.raises(ci_tunnel.TunnelError, match=r"CI cannot reach every node.*10\.0\.0\.201.*make up"):
        ci_tunnel.read_forwards(output)


def test_the_token_reaches_cloudflared_by_name_only_and_cloudflared_is_the_clusters_pinned_image():
    forward = Forward("kubeApi", "k8s.a.b", "10.0.0.200", 6443)
    argv = ci_tunnel.cloudflared_command(forward, "10.0.0.200")
    assert (
        argv[:2] == ["docker", "run"]
        and versions.CLOUDFLARED_IMAGE in argv
        and "@sha256:" in versions.CLOUDFLARED_IMAGE
    )
    # `--env NAME` without a value: docker copies it from its own environment.
    assert argv[argv.index(CI_TOKEN_ID) - 1] == "--env" and argv[argv.index(CI_TOKEN_SECRET) - 1] == "--env"
    assert not any(value in " ".join(argv) for value in TOKEN.values())
    image = argv.index(versions.CLOUDFLARED_IMAGE)
    assert argv[image + 1 :] == ["access", "tcp", "--hostname", "k8s.a.b", "--url", "10.0.0.200:6443"]
    assert ["--network", "host"] == argv[argv.index("--network") : argv.index("--network") + 2]
    assert "--user" not in argv, "only a port below 1024 needs root"
    assert "--user" in ci_tunnel.cloudflared_command(Forward("ssh", "ssh.a.b", "10.0.0.200", 22), "10.0.0.200")


IP, ADD, LO = ["sudo", "ip"], ["addr", "replace"], ["dev", "lo"]


@pytest.mark.parametrize(
    ("address", "listens", "command", "url"),
    [
        ("10.0.0.200", "10.0.0.200", [*IP, "-4", *ADD, "10.0.0.200/32", *LO], "10.0.0.200:22"),
        ("fd00::200", "fd00::200", [*IP, "-6", *ADD, "fd00::200/128", *LO], "[fd00::200]:22"),
        ("pi.lan", "127.0.0.2", ["sudo", "tee", "-a", "/etc/hosts"], "127.0.0.2:22"),
    ],
)  # fmt: skip
def test_the_nodes_own_address_becomes_local_on_the_runner(address, listens, command, url):
    where, make_local, lines = ci_tunnel.local_address(address)
    assert (where, make_local, ci_tunnel.listener(where, 22)) == (listens, command, url)
    assert lines == (f"127.0.0.2 {address}\n" if address == "pi.lan" else None)


def test_ci_starts_both_forwards_then_waits_for_them(monkeypatch, stack):
    output, _ = stack.exports["ciTunnel"]
    run = Runner(json.dumps(output, indent=2))  # as `--json` prints it
    monkeypatch.setattr(ci_tunnel, "taken", lambda address, port: False)
    monkeypatch.setattr(ci_tunnel, "answers", lambda forward, address: True)
    assert ci_tunnel.main(run, environ=TOKEN) == 0
    assert run.calls[0] == ["pulumi", "stack", "output", "ciTunnel", "--json"]
    # The address goes on the loopback once, then one cloudflared per hostname.
    assert run.calls[1] == ["sudo", "ip", "-4", "addr", "replace", "10.0.0.200/32", "dev", "lo"]
    started = [c[c.index("--hostname") + 1 :] for c in run.calls if c[:2] == ["docker", "run"]]
    assert started == [
        ["ssh.taehoonlee.cloud", "--url", "10.0.0.200:22"],
        ["k8s.taehoonlee.cloud", "--url", "10.0.0.200:6443"],
    ]
    assert not any(TOKEN[CI_TOKEN_SECRET] in " ".join(c) for c in run.calls)


def test_without_the_token_nothing_starts_and_the_message_says_where_it_comes_from(capsys):
    run = Runner("{}")
    assert ci_tunnel.main(run, environ={CI_TOKEN_ID: "x"}) == 1
    assert run.calls == []
    assert (
        f"::error title=No service token::this job's environment does not hold {CI_TOKEN_SECRET}"
        in capsys.readouterr().out
    )


def test_a_stack_not_yet_deployed_with_the_hostnames_says_to_run_make_up_once(capsys):
    assert ci_tunnel.main(Runner(None), environ=TOKEN) == 1
    assert "::error title=No ciTunnel output::" in capsys.readouterr().out


def test_a_forward_that_never_answers_shows_its_log_and_what_to_check(monkeypatch, capsys):
    run = Runner("{}")
    monkeypatch.setattr(ci_tunnel, "answers", lambda forward, address: False)
    forward = Forward("ssh", "ssh.a.b", "10.0.0.200", 22)
    with pytest.raises(ci_tunnel.TunnelError, match=r"ssh\.a\.b does not answer.*ciAccessTokens.*spitikos ci policy"):
        ci_tunnel.wait({forward: "10.0.0.200"}, run, within_s=0)
    assert run.calls == [["docker", "logs", "ci-tunnel-ssh"]]


def test_the_runners_own_sshd_is_stopped_and_a_port_still_taken_stops_ci(monkeypatch):
    forward = Forward("ssh", "ssh.a.b", "10.0.0.200", 22)
    answers = iter([True, False])
    monkeypatch.setattr(ci_tunnel, "taken", lambda address, port: next(answers))
    run = Runner("{}")
    ci_tunnel.free_port(forward, "10.0.0.200", run)
    assert run.calls == [["sudo", "systemctl", "stop", "ssh.socket", "ssh.service"]]
    monkeypatch.setattr(ci_tunnel, "taken", lambda address, port: True)
    with pytest.raises(ci_tunnel.TunnelError, match=r"10\.0\.0\.200:22 is taken on the runner"):
        ci_tunnel.free_port(forward, "10.0.0.200", run)


def serve_once(reply: bytes) -> int:
    """A listener on 127.0.0.1 that sends `reply` to its first connection; returns its port."""
    server = socket.create_server(("127.0.0.1", 0))

    def answer():
        conn, _ = server.accept()
        with conn:
            conn.sendall(reply)
        server.close()

    threading.Thread(target=answer, daemon=True).start()
    return server.getsockname()[1]


def test_only_an_ssh_banner_counts_as_the_node_answering():
    """What a forward refused by Access does: it accepts, then closes. That is no answer."""
    port = serve_once(b"SSH-2.0-OpenSSH_9.6p1 Ubuntu\r\n")
    assert ci_tunnel.answers(Forward("ssh", "h", "127.0.0.1", port), "127.0.0.1")
    port = serve_once(b"")
    assert not ci_tunnel.answers(Forward("ssh", "h", "127.0.0.1", port), "127.0.0.1")
    port = serve_once(b"")
    assert not ci_tunnel.answers(Forward("kubeApi", "h", "127.0.0.1", port), "127.0.0.1", timeout=2)
