"""Small helpers shared by the in-cluster components."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

PLATFORM_LABELS = {"app.kubernetes.io/part-of": "spitikos", "app.kubernetes.io/managed-by": "pulumi"}


@dataclass(frozen=True)
class Size:
    """A container's CPU and memory: requests are what the scheduler reserves, limits the ceiling."""

    cpu: str
    memory: str
    cpu_limit: str
    memory_limit: str

    def resources(self) -> dict[str, dict[str, str]]:
        return {
            "requests": {"cpu": self.cpu, "memory": self.memory},
            "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
        }


RESTRICTED = "restricted"
"""Pod Security `restricted`: non-root, no privilege escalation, every capability dropped (but
NET_BIND_SERVICE), RuntimeDefault seccomp. Every platform workload meets it: our own specs
say so, and the three charts' defaults do at the pinned versions (their values.yaml)."""
BASELINE = "baseline"
"""Pod Security `baseline`: no host namespaces, ports or privileged containers. For application
namespaces, whose pods (and sidecars, e.g. Vault's injected agent) the platform does not write."""


def namespace(
    resource_name: str, name: str, parent: pulumi.Resource, pod_security: str, provider: k8s.Provider | None = None
) -> k8s.core.v1.Namespace:
    """A namespace the platform owns, its Pod Security level enforced (and `restricted` always
    warned and audited, so a gap shows); its provider is `provider`, or else the parent component's."""
    labels = {
        **PLATFORM_LABELS,
        "pod-security.kubernetes.io/enforce": pod_security,
        "pod-security.kubernetes.io/warn": RESTRICTED,
        "pod-security.kubernetes.io/audit": RESTRICTED,
    }
    return k8s.core.v1.Namespace(
        resource_name,
        metadata={"name": name, "labels": labels},
        opts=pulumi.ResourceOptions(parent=parent, provider=provider),
    )


def network_policy(
    resource_name: str,
    parent: pulumi.Resource,
    namespace: pulumi.Input[str],
    name: str,
    spec: dict[str, Any],
    provider: k8s.Provider | None = None,
) -> k8s.networking.v1.NetworkPolicy:
    """A NetworkPolicy; with `policyTypes: [Ingress]` and the rules given, everything else is refused."""
    return k8s.networking.v1.NetworkPolicy(
        resource_name,
        metadata={"name": name, "namespace": namespace, "labels": PLATFORM_LABELS},
        spec={"policyTypes": ["Ingress"], **spec},
        opts=pulumi.ResourceOptions(parent=parent, provider=provider),
    )


def from_namespaces(*names: str) -> dict[str, Any]:
    """A `from` peer: every pod of these namespaces."""
    return {
        "namespaceSelector": {"matchExpressions": [{"key": NAMESPACE_NAME, "operator": "In", "values": list(names)}]}
    }


NAMESPACE_NAME = "kubernetes.io/metadata.name"  # the label Kubernetes sets on every namespace

# k3s's pod network, at its defaults (the server's flags in k3s.py keep them): the cluster CIDR,
# cut into one /24 per node (kube-controller-manager's node CIDR mask) in the order the nodes
# register. The server registers first, so its /24 is the first one.
CLUSTER_CIDR = "10.42.0.0/16"
NODE_CIDR_PREFIX = 24


def from_nodes(node_count: int) -> list[dict[str, Any]]:
    """`from` peers for the nodes themselves, as their traffic reaches a pod: each node's first
    two addresses of its /24. flannel (vxlan) gives `flannel.1` the /24's `.0`, the source of
    everything a node's host network (the API server, on the server) sends to a pod on another
    node; the bridge `cni0` has `.1`, the source towards a pod on the same node (kubelet probes).
    Pods get `.2` and up, so a /31 per node admits no pod. Why not the node's LAN address or the
    whole cluster CIDR: docs/decisions/0003-network-policies-on-many-nodes.md."""
    nodes = ipaddress.ip_network(CLUSTER_CIDR).subnets(new_prefix=NODE_CIDR_PREFIX)
    return [{"ipBlock": {"cidr": f"{next(nodes).network_address}/31"}} for _ in range(node_count)]


def with_provider(opts: pulumi.ResourceOptions | None, provider: k8s.Provider) -> pulumi.ResourceOptions:
    """Component options whose Kubernetes children all use `provider`. Only for components with
    nothing but in-cluster children: a component registers after its providers exist, so all of
    its children, Kubernetes or not, would wait for the cluster (ArgoCd and Tunnel hand the
    provider to each Kubernetes child instead)."""
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(providers=[provider]))


def chart(
    resource_name: str,
    parent: pulumi.Resource,
    *,
    release: str,
    chart: str,
    version: str,
    repo: str,
    namespace: pulumi.Input[str],
    values: dict[str, Any],
    provider: k8s.Provider | None = None,
    depends_on: list[pulumi.Resource] | None = None,
) -> k8s.helm.v3.Release:
    """An upstream chart at a pinned version, rolled back if it does not become ready. An OCI
    registry (`oci://...`) is no Helm repository: the chart is then named by its full reference."""
    oci = repo.startswith("oci://")
    return k8s.helm.v3.Release(
        resource_name,
        k8s.helm.v3.ReleaseArgs(
            name=release,
            chart=f"{repo.rstrip('/')}/{chart}" if oci else chart,
            version=version,
            repository_opts=None if oci else k8s.helm.v3.RepositoryOptsArgs(repo=repo),
            namespace=namespace,
            values=values,
            atomic=True,
            cleanup_on_fail=True,
            max_history=5,
            timeout=900,
        ),
        opts=pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=depends_on),
    )


def service_host(service: str, namespace: str) -> str:
    return f"{service}.{namespace}.svc.cluster.local"


# --- egress: what each platform namespace may reach -------------------------------------------
# Separate `Egress` policies (named `egress`), beside the `Ingress` ones: NetworkPolicies add up,
# so a pod may send what any policy selecting it admits, and nothing else once one Egress policy
# selects it. k3s enforces them with its embedded kube-router.

DNS_PORT = 53
API_SERVER_PORT = 6443
# k3s's default service CIDR is 10.43.0.0/16 and the `kubernetes` Service takes its first address.
KUBERNETES_SERVICE_IP = "10.43.0.1"
PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16"]

DNS_EGRESS: dict[str, Any] = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {NAMESPACE_NAME: "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},  # k3s's CoreDNS
        }
    ],
    "ports": [{"protocol": "UDP", "port": DNS_PORT}, {"protocol": "TCP", "port": DNS_PORT}],
}
"""Name lookups, to CoreDNS only."""

API_SERVER_EGRESS: list[dict[str, Any]] = [
    # The API server runs on the host network of each server node, so no pod selector names it. A
    # pod dials the `kubernetes` Service; the policy may see that address (before kube-proxy's DNAT)
    # or the node's address and port 6443 (after it; kube-router matches after, in the filter
    # table): both are admitted. Port 6443 to any address rather than the node's, because the
    # address k3s advertises need not be the one the stack reaches the node by (a hostname, a
    # second interface); what else listens on 6443 is another API server, which wants credentials.
    {"to": [{"ipBlock": {"cidr": f"{KUBERNETES_SERVICE_IP}/32"}}], "ports": [{"protocol": "TCP", "port": 443}]},
    {"ports": [{"protocol": "TCP", "port": API_SERVER_PORT}]},
]
"""The Kubernetes API, however a pod's packets to it are seen."""


def public_internet(*ports: int, protocol: str = "TCP") -> dict[str, Any]:
    """An egress rule to these ports on the public internet only: never the LAN, the node or a pod."""
    return {
        "to": [
            {"ipBlock": {"cidr": "0.0.0.0/0", "except": PRIVATE_RANGES}},
            {"ipBlock": {"cidr": "::/0", "except": ["fc00::/7", "fe80::/10"]}},
        ],
        "ports": [{"protocol": protocol, "port": p} for p in ports],
    }


def to_pods(namespace_selector: dict[str, Any], ports: list[int] | None = None) -> dict[str, Any]:
    """An egress rule to every pod of the namespaces selected (on these TCP ports, or any)."""
    rule: dict[str, Any] = {"to": [{"namespaceSelector": namespace_selector}]}
    if ports:
        rule["ports"] = [{"protocol": "TCP", "port": p} for p in ports]
    return rule


def in_namespaces(*names: str) -> dict[str, Any]:
    return {"matchExpressions": [{"key": NAMESPACE_NAME, "operator": "In", "values": list(names)}]}


def to_host(address: str, port: int) -> dict[str, Any]:
    """An egress rule to one port of a host: the address itself when it is an IP, else (a name,
    resolved only where it is used) that port anywhere."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return {"ports": [{"protocol": "TCP", "port": port}]}
    return {"to": [{"ipBlock": {"cidr": f"{ip}/{ip.max_prefixlen}"}}], "ports": [{"protocol": "TCP", "port": port}]}


def egress_policy(
    resource_name: str,
    parent: pulumi.Resource,
    namespace: pulumi.Input[str],
    egress: list[dict[str, Any]],
    provider: k8s.Provider | None = None,
) -> k8s.networking.v1.NetworkPolicy:
    """The namespace's `egress` NetworkPolicy: every pod may send what `egress` admits, nothing else
    (an empty list: nothing at all)."""
    return k8s.networking.v1.NetworkPolicy(
        resource_name,
        metadata={"name": "egress", "namespace": namespace, "labels": PLATFORM_LABELS},
        spec={"podSelector": {}, "policyTypes": ["Egress"], "egress": egress},
        opts=pulumi.ResourceOptions(parent=parent, provider=provider),
    )
