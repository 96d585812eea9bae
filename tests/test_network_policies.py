"""NetworkPolicies that hold on any number of nodes.

k3s enforces them with kube-router, which admits traffic from a pod's own node and, from other
nodes, only what a rule admits. The API server runs on the server's host network, so the
webhooks and the metrics API must admit the nodes, whichever node their pods land on; and
nothing else: no pod may call a webhook. Checked on pi5, on pi5 with servers and agents, and
for a node rebuilt beyond the node count.
"""

from __future__ import annotations

import functools
import ipaddress

import pytest

from components import kube

# What a node's host network sends from, on k3s's pod network (flannel vxlan): the server's
# /24 is 10.42.0.0/24 and the agent's 10.42.1.0/24; flannel.1 holds .0, cni0 holds .1.
SERVER_FLANNEL, SERVER_BRIDGE = "10.42.0.0", "10.42.0.1"
AGENT_FLANNEL, AGENT_BRIDGE = "10.42.1.0", "10.42.1.1"
PODS = ("10.42.0.2", "10.42.0.254", "10.42.1.7", "10.42.2.9")
A_POD = "10.42.1.7"  # a pod on the agent
LAN = ("10.0.0.200", "10.0.0.201", "192.168.1.10")


def policy(recording, where: str) -> dict:
    """The `Ingress` policy with rules of a namespace (`namespace`), or one by name (`namespace/name`)."""
    namespace, _, name = where.partition("/")
    (found,) = [
        p.values["spec"]
        for p in recording.kubernetes("NetworkPolicy")
        if p.values["metadata"]["namespace"] == namespace
        and p.values["spec"]["policyTypes"] == ["Ingress"]
        and p.values["spec"].get("ingress")
        and p.values["metadata"]["name"] == (name or p.values["metadata"]["name"])
    ]
    return found


def admitted(spec: dict, source: str, port: int, namespace: str = "") -> bool:
    """Whether a policy admits TCP from `source` (an address, or a pod of `namespace`) to `port`."""
    for rule in spec["ingress"]:
        ports = rule.get("ports")
        if ports is not None and not any(p.get("port") == port and p.get("protocol", "TCP") == "TCP" for p in ports):
            continue
        for peer in rule["from"]:
            if "ipBlock" in peer:
                block = peer["ipBlock"]
                inside = _address(source) in _network(block["cidr"])
                if inside and not any(_address(source) in _network(e) for e in block.get("except", [])):
                    return True
            if namespace and "namespaceSelector" in peer and _selects(peer["namespaceSelector"], namespace):
                return True
            # A bare podSelector admits pods of the policy's own namespace only: never asked here.
    return False


# Each policy lists a /31 for every /24 a node can hold (256 peers): parsed once, not at every check.
_address = functools.cache(ipaddress.ip_address)
_network = functools.cache(ipaddress.ip_network)


def _selects(selector: dict, namespace: str) -> bool:
    if not selector:
        return True
    (expression,) = selector["matchExpressions"]
    assert expression["key"] == kube.NAMESPACE_NAME
    return (namespace in expression["values"]) == (expression["operator"] == "In")


# namespace, the ports the API server calls there, and the ports the kubelet probes there
NODE_PORTS = {
    # NGF has no webhook; both planes' readiness probes (components/gateway.py HEALTH_PORT).
    "nginx-gateway/nginx-from-cloudflared": {"webhook": [], "probes": [8081]},
    "nginx-gateway/control-plane-from-nginx": {"webhook": [], "probes": [8081]},
    "keda": {"webhook": [6443], "probes": [8081, 6443]},  # the metrics API server; health probes
    # the HTTP add-on: no webhook; the kubelet probes the interceptor's admin port and the scaler's gRPC
    "keda-http": {"webhook": [], "probes": [9090]},
}


@pytest.mark.parametrize("namespace", sorted(NODE_PORTS))
def test_the_api_server_reaches_webhooks_and_metrics_api_on_any_node(with_agent_and_host_key, namespace):
    spec = policy(with_agent_and_host_key, namespace)
    for port in NODE_PORTS[namespace]["webhook"]:
        # The webhook pod on the server (from cni0) or on the agent (through flannel.1, vxlan).
        assert admitted(spec, SERVER_BRIDGE, port), f"{namespace}:{port} refuses the API server on its own node"
        assert admitted(spec, SERVER_FLANNEL, port), f"{namespace}:{port} refuses the API server from the server node"


@pytest.mark.parametrize("namespace", sorted(NODE_PORTS))
def test_kubelets_probe_on_every_node(with_agent_and_host_key, namespace):
    spec = policy(with_agent_and_host_key, namespace)
    for port in NODE_PORTS[namespace]["probes"]:
        for kubelet in (SERVER_BRIDGE, AGENT_BRIDGE):
            assert admitted(spec, kubelet, port), f"{namespace}:{port} refuses the kubelet at {kubelet}"


@pytest.mark.parametrize("namespace", sorted(NODE_PORTS))
def test_no_pod_and_no_other_address_reaches_the_node_ports(with_agent_and_host_key, namespace):
    spec = policy(with_agent_and_host_key, namespace)
    for port in {p for ports in NODE_PORTS[namespace].values() for p in ports}:
        for source in (*PODS, *LAN):
            assert not admitted(spec, source, port), f"{namespace}:{port} admits {source}"
    for port in NODE_PORTS[namespace]["webhook"]:  # (NGINX's metrics and /healthz port is open to Prometheus)
        for other in ("api", "monitoring", "cloudflared", "argocd", "kube-system"):
            assert not admitted(spec, A_POD, port, namespace=other), f"{namespace}:{port} admits pods of {other}"


def test_node_peers_admit_only_the_nodes_first_two_addresses(with_agent_and_host_key, stack):
    """A /31 for each /24 a node can hold, whatever the node count: no peer is wider."""
    every_node = {f"10.42.{n}.0/31" for n in range(256)}
    for recording in (stack, with_agent_and_host_key):  # one node; three servers and two agents
        for namespace in NODE_PORTS:
            blocks = {
                peer["ipBlock"]["cidr"]
                for rule in policy(recording, namespace)["ingress"]
                for peer in rule["from"]
                if "ipBlock" in peer
            }
            assert blocks == every_node, namespace


@pytest.mark.parametrize("namespace", sorted(NODE_PORTS))
def test_a_rebuilt_node_beyond_the_node_count_still_reaches_webhooks_and_probes(stack, namespace):
    """A server or agent that joins again gets the next free /24, not its old one: on a one-node
    stack that has rebuilt its server twice, the API server and kubelet speak from 10.42.2.0/24."""
    spec = policy(stack, namespace)
    for port in NODE_PORTS[namespace]["webhook"] + NODE_PORTS[namespace]["probes"]:
        for source in ("10.42.2.0", "10.42.2.1", "10.42.255.0", "10.42.255.1"):
            assert admitted(spec, source, port), f"{namespace}:{port} refuses a re-added node at {source}"
        for pod in ("10.42.2.2", "10.42.255.254"):
            assert not admitted(spec, pod, port), f"{namespace}:{port} admits the pod {pod} of a re-added node"


def test_prometheus_in_monitoring_scrapes_keda_and_no_one_else_from_outside(stack):
    spec = policy(stack, "keda")
    assert admitted(spec, A_POD, 8080, namespace="monitoring")
    assert not admitted(spec, A_POD, 8080, namespace="api")
    assert not admitted(spec, A_POD, 9443, namespace="monitoring")
