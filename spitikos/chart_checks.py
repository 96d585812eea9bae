"""Checks on the objects a chart renders (`make render`): what Kubernetes 1.35 and the namespace's
Pod Security level would admit, which images run, what the pods ask for, and which of the
program's NetworkPolicies select them. Pure functions over plain dicts: tests/test_render.py
feeds them small hand-written objects."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from components.footprint import memory_mi

# Workload kinds and where their pod template sits.
_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
    "Pod": (),
}

# Pod Security Standards, Kubernetes 1.35 ("latest"), as
# kubernetes/kubernetes staging/src/k8s.io/pod-security-admission/policy/check_*.go define them.
BASELINE_CAPABILITIES = frozenset(
    "AUDIT_WRITE CHOWN DAC_OVERRIDE FOWNER FSETID KILL MKNOD NET_BIND_SERVICE SETFCAP SETGID SETPCAP "
    "SETUID SYS_CHROOT".split()
)
SAFE_SYSCTLS = frozenset(
    "kernel.shm_rmid_forced net.ipv4.ip_local_port_range net.ipv4.ip_unprivileged_port_start "
    "net.ipv4.tcp_syncookies net.ipv4.ping_group_range net.ipv4.ip_local_reserved_ports "
    "net.ipv4.tcp_keepalive_time net.ipv4.tcp_fin_timeout net.ipv4.tcp_keepalive_intvl "
    "net.ipv4.tcp_keepalive_probes".split()
)
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
RESTRICTED_VOLUMES = frozenset(
    "configMap csi downwardAPI emptyDir ephemeral image persistentVolumeClaim projected secret".split()
)
LEVELS = ("privileged", "baseline", "restricted")


def pod_template(obj: Mapping[str, Any]) -> dict | None:
    """The pod (metadata and spec) a workload object starts; None for any other object."""
    path = _TEMPLATE_PATHS.get(obj.get("kind", ""))
    if path is None:
        return None
    node: Any = obj
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def all_containers(spec: Mapping[str, Any]) -> Iterator[dict]:
    for group in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(group) or []


def pod_security_violations(pod: Mapping[str, Any], level: str) -> list[str]:
    """What the Pod Security `level` refuses in a pod (its metadata and spec), one line each."""
    if level not in LEVELS:
        raise ValueError(f"not a Pod Security level: {level!r} (one of {', '.join(LEVELS)})")
    if level == "privileged":
        return []
    spec = pod.get("spec") or {}
    found = _baseline(spec, pod.get("metadata") or {})
    return found + _restricted(spec) if level == "restricted" else found


def _baseline(spec: Mapping[str, Any], metadata: Mapping[str, Any]) -> list[str]:
    found = [f"spec.{field}: true" for field in ("hostNetwork", "hostPID", "hostIPC") if spec.get(field)]
    found += [f"volume {v.get('name')}: hostPath" for v in spec.get("volumes") or [] if "hostPath" in v]
    unsafe = [s.get("name") for s in _sysctls(spec) if s.get("name") not in SAFE_SYSCTLS]
    found += [f"sysctl {name} is not a safe sysctl" for name in unsafe]
    found += _baseline_context("pod", spec.get("securityContext") or {})
    for key, value in (metadata.get("annotations") or {}).items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") and not _apparmor_ok(value):
            found.append(f"annotation {key}: {value}")
    for c in all_containers(spec):
        where = f"container {c.get('name')}"
        context = c.get("securityContext") or {}
        found += _baseline_context(where, context)
        if context.get("privileged"):
            found.append(f"{where}: privileged")
        added = set((context.get("capabilities") or {}).get("add") or []) - BASELINE_CAPABILITIES
        found += [f"{where}: adds capability {cap}" for cap in sorted(added)]
        found += [f"{where}: hostPort {p['hostPort']}" for p in c.get("ports") or [] if p.get("hostPort")]
        if context.get("procMount") not in (None, "Default"):
            found.append(f"{where}: procMount {context['procMount']}")
    return found


def _sysctls(spec: Mapping[str, Any]) -> list[dict]:
    return (spec.get("securityContext") or {}).get("sysctls") or []


def _apparmor_ok(value: str) -> bool:
    return value in ("runtime/default", "") or value.startswith("localhost/")


def _baseline_context(where: str, context: Mapping[str, Any]) -> list[str]:
    found = []
    if (context.get("windowsOptions") or {}).get("hostProcess"):
        found.append(f"{where}: windowsOptions.hostProcess")
    if (context.get("seccompProfile") or {}).get("type") == "Unconfined":
        found.append(f"{where}: seccompProfile Unconfined")
    if (context.get("appArmorProfile") or {}).get("type") == "Unconfined":
        found.append(f"{where}: appArmorProfile Unconfined")
    selinux = context.get("seLinuxOptions") or {}
    if selinux.get("type", "") not in SELINUX_TYPES or selinux.get("user") or selinux.get("role"):
        found.append(f"{where}: seLinuxOptions {dict(selinux)}")
    return found


def _restricted(spec: Mapping[str, Any]) -> list[str]:
    pod_context = spec.get("securityContext") or {}
    found = [
        f"volume {v.get('name')}: type {kind} is not allowed"
        for v in spec.get("volumes") or []
        for kind in sorted(set(v) - {"name"} - RESTRICTED_VOLUMES)
    ]
    if pod_context.get("runAsUser") == 0:
        found.append("pod: runAsUser 0")
    for c in all_containers(spec):
        where = f"container {c.get('name')}"
        context = c.get("securityContext") or {}
        if context.get("allowPrivilegeEscalation") is not False:
            found.append(f"{where}: allowPrivilegeEscalation is not false")
        if context.get("runAsNonRoot", pod_context.get("runAsNonRoot")) is not True:
            found.append(f"{where}: runAsNonRoot is not true (on the container or the pod)")
        if context.get("runAsUser") == 0:
            found.append(f"{where}: runAsUser 0")
        seccomp = (context.get("seccompProfile") or pod_context.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            found.append(f"{where}: seccompProfile is {seccomp or 'unset'} (RuntimeDefault or Localhost)")
        capabilities = context.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            found.append(f"{where}: capabilities do not drop ALL")
        added = [cap for cap in capabilities.get("add") or [] if cap != "NET_BIND_SERVICE"]
        found += [f"{where}: adds capability {cap}" for cap in added]
    return found


def images(spec: Mapping[str, Any]) -> list[str]:
    return [c.get("image", "") for c in all_containers(spec)]


def image_violations(running: Iterable[str], pinned: Iterable[str], require_digest: bool = True) -> list[str]:
    """An image a chart runs that is not one of the program's pins (when it pins any for that chart),
    or that runs by tag alone (when `require_digest`)."""
    pins = set(pinned)
    found = []
    for image in sorted(set(running)):
        if pins and image not in pins:
            found.append(f"image {image} is not one the program pins ({', '.join(sorted(pins))})")
        elif require_digest and "@sha256:" not in image:
            found.append(f"image {image} runs by tag, not by digest")
    return found


def memory_requests_mi(obj: Mapping[str, Any]) -> float:
    """What a workload object's pods request in memory, all replicas (a Job: its one pod)."""
    pod = pod_template(obj)
    if pod is None:
        return 0.0
    spec = pod.get("spec") or {}
    replicas = (obj.get("spec") or {}).get("replicas", 1) if obj.get("kind") != "Job" else 1
    each = sum(
        memory_mi(((c.get("resources") or {}).get("requests") or {}).get("memory", "0")) for c in all_containers(spec)
    )
    return each * replicas


def unsized_containers(spec: Mapping[str, Any]) -> list[str]:
    """Containers with no memory request: the footprint cannot count what they take."""
    return [
        str(c.get("name"))
        for c in all_containers(spec)
        if not ((c.get("resources") or {}).get("requests") or {}).get("memory")
    ]


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether a label selector (matchLabels, matchExpressions) selects a pod with `labels`; an
    empty selector selects every pod."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        matched = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }.get(operator)
        if matched is None:
            raise ValueError(f"not a label selector operator: {operator!r}")
        if not matched:
            return False
    return True


def policy_types(policy: Mapping[str, Any]) -> set[str]:
    """A NetworkPolicy's types, with the API server's default when it names none."""
    spec = policy.get("spec") or {}
    if spec.get("policyTypes"):
        return set(spec["policyTypes"])
    return {"Ingress", "Egress"} if "egress" in spec else {"Ingress"}


def uncovered(namespace: str, labels: Mapping[str, str], policies: Iterable[Mapping[str, Any]]) -> list[str]:
    """The directions (Ingress, Egress) in which no policy of `policies` selects a pod of `namespace`."""
    covered: set[str] = set()
    for policy in policies:
        if (policy.get("metadata") or {}).get("namespace") == namespace and selects(
            (policy.get("spec") or {}).get("podSelector"), labels
        ):
            covered |= policy_types(policy)
    return sorted({"Ingress", "Egress"} - covered)
