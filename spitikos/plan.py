"""An offline plan of a stack: what the program would register, what it asks of the node,
and how long the deploy's chain of slow steps is. Not a preview of live state."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from components.footprint import (
    APPLICATION_RESERVE_MI,
    K3S_SYSTEM_MI,
    NODE_CPU_MILLIS,
    NODE_MEMORY_MI,
    Footprint,
    containers,
    memory_mi,
)
from spitikos.engine import Recording, Registration, is_secret, plain, run_file
from spitikos.stack import ROOT, offline_config

REDACTED = "[secret]"
RELEASE = "kubernetes:helm.sh/v3:Release"
DISCLAIMER = (
    "OFFLINE PLAN - not a preview of live state. The program ran under Pulumi mocks: no CLI, no network, "
    "no credentials. Secrets and provider outputs (ids, keys, tokens) are placeholders."
)


def is_slow(reg: Registration) -> bool:
    """The steps that take minutes: installing k3s on a node, a chart release, the root Application."""
    return (
        (reg.type == "command:remote:Command" and reg.name.endswith("-install"))
        or reg.type == RELEASE
        or reg.type == "kubernetes:argoproj.io/v1alpha1:Application"
    )


def critical_path(weights: Mapping[str, float], deps: Mapping[str, Iterable[str]]) -> tuple[float, list[str]]:
    """The heaviest chain through a dependency graph: (its weight, its nodes from first to last).

    Between chains of equal weight, the one with more steps wins: the chain shown is then the
    whole wait (e.g. the node's preflight before its install), not a shortcut picked by name.
    """
    best: dict[str, tuple[float, int]] = {}
    previous: dict[str, str | None] = {}

    def visit(node: str, trail: frozenset[str]) -> tuple[float, int]:
        if node in best:
            return best[node]
        if node in trail:
            raise ValueError(f"dependency cycle through {node}")
        via, heaviest = None, (0.0, 0)
        for dep in sorted(deps.get(node, ())):
            if dep not in weights:
                continue
            found = visit(dep, trail | {node})
            if via is None or found > heaviest:
                via, heaviest = dep, found
        best[node] = (weights[node] + heaviest[0], heaviest[1] + 1)
        previous[node] = via
        return best[node]

    for node in weights:
        visit(node, frozenset())
    if not best:
        return 0.0, []
    end = max(weights, key=lambda n: (best[n], n))
    path: list[str] = []
    current: str | None = end
    while current is not None:
        path.append(current)
        current = previous[current]
    return best[end][0], path[::-1]


def waves(nodes: Iterable[str], deps: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Nodes grouped by the earliest step they can start at: all of one wave can run in parallel."""
    nodes = list(nodes)
    known = set(nodes)
    level: dict[str, int] = {}

    def depth(node: str, trail: frozenset[str]) -> int:
        if node not in level:
            if node in trail:
                raise ValueError(f"dependency cycle through {node}")
            parents = [d for d in deps.get(node, ()) if d in known]
            level[node] = 1 + max((depth(d, trail | {node}) for d in parents), default=-1)
        return level[node]

    grouped: dict[int, list[str]] = defaultdict(list)
    for node in nodes:
        grouped[depth(node, frozenset())].append(node)
    return [grouped[i] for i in range(len(grouped))]


def redact(value: Any, replacement: str = REDACTED) -> Any:
    """`value` with every secret (marked where it is) replaced by `replacement`."""
    if is_secret(value):
        return replacement
    if isinstance(value, dict):
        return {k: redact(v, replacement) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, replacement) for v in value]
    return value


@dataclass
class Plan:
    stack: str
    recording: Recording
    placeholders: list[str]
    node_memory_mi: float = NODE_MEMORY_MI
    """The server's memory (the stack's `nodeMemory`), which the applications' room is sized against."""

    @property
    def left_for_applications_mi(self) -> float:
        return self.node_memory_mi - K3S_SYSTEM_MI - self.total_footprint().memory_requests_mi

    @property
    def resources(self) -> list[Registration]:
        return self.recording.all()

    @cached_property
    def sets_up_a_node(self) -> bool:
        """False for a stack given a cluster by `kubeconfig`: then no line may speak of a node or of k3s."""
        return not any(r.type == GIVEN_CLUSTER for r in self.resources)

    @cached_property
    def graph(self) -> dict[str, set[str]]:
        """Each resource's URN -> the registered resources it waits for."""
        known = self.recording.registrations
        return {r.urn: {d for d in r.waits_for if d in known} for r in self.resources}

    def component_of(self, reg: Registration) -> str:
        """The part of the platform a resource belongs to: its ancestor just below the top component."""
        chain = [reg]
        while chain[-1].parent in self.recording.registrations:
            chain.append(self.recording.registrations[chain[-1].parent])
        return chain[-2].name if len(chain) >= 2 else chain[-1].name

    def footprints(self) -> dict[str, Footprint]:
        grouped: dict[str, list] = defaultdict(list)
        for reg in self.resources:
            grouped[self.component_of(reg)].extend(containers(reg.type, reg.name, reg.values))
        return {name: Footprint(tuple(found)) for name, found in grouped.items() if found}

    def total_footprint(self) -> Footprint:
        return Footprint(tuple(c for f in self.footprints().values() for c in f.containers))

    def critical_path(self) -> tuple[float, list[Registration]]:
        weights = {r.urn: 1.0 if is_slow(r) else 0.0 for r in self.resources}
        weight, path = critical_path(weights, self.graph)
        return weight, [self.recording.registrations[u] for u in path]

    def waves(self) -> list[list[Registration]]:
        return [
            [self.recording.registrations[u] for u in wave] for wave in waves(self.recording.registrations, self.graph)
        ]

    def to_json(self) -> dict[str, Any]:
        total = self.total_footprint()
        weight, path = self.critical_path()
        return {
            "disclaimer": DISCLAIMER,
            "stack": self.stack,
            "placeholders": self.placeholders,
            # Only for a stack that leaves a part out (pi5's reviewed snapshot has no such key).
            **({"skipped": skipped(self)} if skipped(self) else {}),
            "resources": [
                {
                    "urn": r.urn,
                    "type": r.type,
                    "name": r.name,
                    "parent": r.parent or None,
                    "dependencies": sorted(self.graph[r.urn]),
                    "protect": r.protect,
                    "ignoreChanges": r.ignore_changes,
                    "inputs": redact(r.inputs),
                }
                for r in sorted(self.resources, key=lambda r: r.urn)
            ],
            "footprint": {
                "nodeMemoryMi": round(self.node_memory_mi),
                "k3sSystemMi": K3S_SYSTEM_MI,
                "memoryRequestsMi": round(total.memory_requests_mi),
                "memoryLimitsMi": round(total.memory_limits_mi),
                "cpuRequestsMillis": round(total.cpu_requests_millis),
                "cpuLimitsMillis": round(total.cpu_limits_millis),
                "leftForApplicationsMi": round(self.left_for_applications_mi),
            },
            "criticalPath": {"slowSteps": weight, "chain": [r.urn for r in path]},
            "waves": [sorted(r.urn for r in wave) for wave in self.waves()],
        }

    @cached_property
    def texts(self) -> dict[str, str]:
        """Every file `--out` and the snapshot write, by relative path: made once (a tenth of a second
        for pi5, mostly YAML and JSON), since a plan does not change once made. Read, never change it."""
        return {"plan.txt": render(self), "plan.md": mermaid(self), **_files(self)}


def build(stack: str = "pi5", root: Path | None = None) -> Plan:
    root = root or ROOT
    config, secret_keys, placeholders = offline_config(stack, root)
    recording = run_file(root / "__main__.py", config, secret_keys)
    return Plan(stack, recording, placeholders, _node_memory_mi(config))


def _node_memory_mi(config: Mapping[str, str]) -> float:
    """The stack's `nodeMemory` (its default is in `Pulumi.yaml`); the settings have refused a bad one."""
    return memory_mi(config.get("spitikos:nodeMemory") or f"{NODE_MEMORY_MI}Mi")


def from_recording(recording: Recording, stack: str = "pi5", root: Path | None = None) -> Plan:
    """The plan of a run that already happened (the tests' session run) with `offline_config(stack)`."""
    config, _, placeholders = offline_config(stack, root or ROOT)
    return Plan(stack, recording, placeholders, _node_memory_mi(config))


def render(plan: Plan) -> str:
    lines = [DISCLAIMER, f"Stack: {plan.stack}. Placeholders for: {', '.join(plan.placeholders)}.", ""]
    lines += _summary(plan)
    lines += _tree(plan)
    lines += ["", *_footprint(plan), *_skipped(plan), "", *_schedule(plan), "", *_backups(plan)]
    lines += ["", *_collisions(plan)]
    return "\n".join(lines) + "\n"


ACCESS_APPLICATION = "cloudflare:index/zeroTrustAccessApplication:ZeroTrustAccessApplication"
DNS_RECORD = "cloudflare:index/dnsRecord:DnsRecord"
ACCESS_POLICY = "cloudflare:index/zeroTrustAccessPolicy:ZeroTrustAccessPolicy"
SERVICE_TOKEN = "cloudflare:index/zeroTrustAccessServiceToken:ZeroTrustAccessServiceToken"  # noqa: S105 - a type
ENVIRONMENT_SECRET = "github:index/actionsEnvironmentSecret:ActionsEnvironmentSecret"  # noqa: S105 - a type
# Rough minutes per slow step on a Pi 5 over a home connection, for the deploy estimate: the node
# install downloads k3s and starts it; a release pulls its images and waits for them; the root
# Application waits for Argo CD to sync. Estimates, not measurements (nothing here runs live).
SLOW_STEP_MINUTES = {"node install": 8, "chart release": 5, "root Application": 3}


def slow_kind(reg: Registration) -> str:
    if reg.type == RELEASE:
        return "chart release"
    return "node install" if reg.type == "command:remote:Command" else "root Application"


def estimated_minutes(plan: Plan) -> int:
    """The critical path's slow steps, in minutes: what a first `pulumi up` waits at least."""
    return sum(SLOW_STEP_MINUTES[slow_kind(r)] for r in plan.critical_path()[1] if is_slow(r))


def _ci_access(plan: Plan) -> list[str]:
    """Who gets in without a person: each service-token (`non_identity`) policy, its tokens, the
    hostnames whose Access applications name it, and the environments CI's tokens are written to."""
    rec = plan.recording
    tokens = {t.urn: t.values.get("name") for t in rec.of_type(SERVICE_TOKEN)}
    written = sorted(
        {
            f"{s.values.get('repository')}/{s.values.get('environment')}"
            for s in rec.of_type(ENVIRONMENT_SECRET)
            if str(s.values.get("secretName", "")).startswith("TUNNEL_SERVICE_TOKEN_")
        }
    )
    lines = []
    for policy in sorted(rec.of_type(ACCESS_POLICY), key=lambda r: r.name):
        if policy.values.get("decision") != "non_identity":
            continue
        admits = sorted(tokens[u] for u in policy.property_dependencies.get("includes", set()) if u in tokens)
        on = sorted(
            a.values.get("domain")
            for a in rec.of_type(ACCESS_APPLICATION)
            if policy.urn in a.property_dependencies.get("policies", set())
        )
        lines.append(
            f"  Service tokens admitted ({policy.values.get('name')}, non_identity): {', '.join(admits)}; "
            f"on {', '.join(on) or 'no application'} only; written to {', '.join(written) or 'no environment'}."
        )
    return lines


def _summary(plan: Plan) -> list[str]:
    """What a reviewer asks first: how much of each part, which nodes and hostnames, how long."""
    counts: dict[str, int] = defaultdict(int)
    for reg in plan.resources:
        if reg.parent in plan.recording.registrations:  # the platform itself is no part of it
            counts[plan.component_of(reg)] += 1
    behind_access = {r.values.get("domain") for r in plan.recording.of_type(ACCESS_APPLICATION)}
    hostnames = sorted({r.values.get("name") for r in plan.recording.of_type(DNS_RECORD)})
    marked = [f"{h} [Access]" if h in behind_access else h for h in hostnames]
    nodes = [
        f"{reg.name.removesuffix('-install')} {c['user']}@{c['host']}:{c['port']}"
        for reg in sorted(plan.recording.of_type("command:remote:Command"), key=lambda r: r.name)
        if reg.name.endswith("-install") and isinstance(c := reg.values.get("connection"), dict)
    ]
    _, path = plan.critical_path()
    steps = ", ".join(f"{r.name} ~{SLOW_STEP_MINUTES[slow_kind(r)]} min" for r in path if is_slow(r))
    if plan.sets_up_a_node:
        cluster = f"  Nodes (SSH; only the private key is secret): {'; '.join(nodes) or 'none'}."
        after = "    after the node is prepared (README, First run). An estimate: nothing here runs live."
    else:
        cluster = "  Cluster: the one `kubeconfig` names; no node is set up."
        after = "    on that cluster. An estimate: nothing here runs live."
    return [
        "Summary:",
        f"  Resources per component: {', '.join(f'{name} {n}' for name, n in sorted(counts.items()))}.",
        cluster,
        f"  Hostnames ({len(hostnames)}; [Access] = behind Cloudflare Access): {', '.join(marked) or 'none'}.",
        *_ci_access(plan),
        f"  Estimated first deploy: about {estimated_minutes(plan)} min of slow steps in a row ({steps}),",
        after,
        "",
    ]


def mermaid(plan: Plan) -> str:
    """A picture of the components (resources each, what waits for what) and the critical path's
    slow steps, as Markdown with a Mermaid chart: GitHub draws it in the snapshot's diff view."""
    top = {r.urn for r in plan.resources if r.parent not in plan.recording.registrations}
    part = {r.urn: plan.component_of(r) for r in plan.resources if r.urn not in top}
    names = sorted(set(part.values()))
    ids = {name: f"c{i}" for i, name in enumerate(names)}
    lines = ["flowchart LR"]
    for name in names:
        count = sum(1 for p in part.values() if p == name)
        lines.append(f'  {ids[name]}["{name}<br/>{count} resource{"" if count == 1 else "s"}"]')
    edges = sorted(
        {(part[dep], part[urn]) for urn, deps in plan.graph.items() if urn in part for dep in deps if dep in part}
    )
    lines += [f"  {ids[a]} -.-> {ids[b]}" for a, b in edges if a != b]
    slow = [r for r in plan.critical_path()[1] if is_slow(r)]
    for i, reg in enumerate(slow):
        lines.append(f'  s{i}[["{reg.name}<br/>{slow_kind(reg)} ~{SLOW_STEP_MINUTES[slow_kind(reg)]} min"]]')
        lines.append(f"  {ids[part[reg.urn]]} --- s{i}")
    lines += [f"  s{i} ==> s{i + 1}" for i in range(len(slow) - 1)]
    lines.append("  classDef slow fill:#fde68a,stroke:#b45309")
    if slow:
        lines.append(f"  class {','.join(f's{i}' for i in range(len(slow)))} slow")
    return (
        f"# Offline plan of `{plan.stack}`: components and the critical path\n\n"
        "Each box is a component (its resources counted); a dotted arrow: something in one waits for "
        "something in the other. The thick chain is the critical path's slow steps, in order.\n\n"
        "```mermaid\n" + "\n".join(lines) + "\n```\n"
    )


# What a stack given a cluster by `kubeconfig` builds in place of the node bootstrap (components/existing_cluster.py).
GIVEN_CLUSTER = "spitikos:cluster:ExistingCluster"
# The parts a stack may leave out, by the component that builds each (spitikos settings `Parts`).
OPTIONAL_PARTS = {
    "spitikos:k3s:K3sCluster": "the node bootstrap (k3s over SSH; the cluster is the given kubeconfig's)",
    "spitikos:tunnel:Tunnel": "Cloudflare (tunnel, DNS, Access, cloudflared)",
    "spitikos:github:GitHub": "GitHub (repositories, deploy keys, webhooks, secrets)",
}


def skipped(plan: Plan) -> list[str]:
    """The optional parts this stack's run did not build."""
    built = {r.type for r in plan.resources}
    return [what for token, what in OPTIONAL_PARTS.items() if token not in built]


def _skipped(plan: Plan) -> list[str]:
    """One line under the footprint: what is not built (and so not counted above)."""
    parts = skipped(plan)
    return [f"  skipped: {'; '.join(parts)}."] if parts else []


def _backups(plan: Plan) -> list[str]:
    """What is backed up, where and how often, and what is not (docs/backups.md)."""
    rec = plan.recording
    buckets = [b.values["name"] for b in rec.of_type("cloudflare:index/r2Bucket:R2Bucket")]
    lines = [f"Backups (R2 bucket: {', '.join(buckets) or 'none, backupBucket is not set'}):"]
    for source in sorted(rec.of_type("kubernetes:volsync.backube/v1alpha1:ReplicationSource"), key=lambda r: r.name):
        spec, meta = source.values["spec"], source.values["metadata"]
        restic = spec["restic"]
        kept = restic["retain"]
        retain = ", ".join(f"{kept[k]} {k}" for k in ("hourly", "daily", "weekly", "monthly", "yearly") if k in kept)
        lines.append(
            f"  volume {meta['namespace']}/{spec['sourcePVC']}: restic, cron '{spec['trigger']['schedule']}', "
            f"keeps {retain}; mover {'restricted' if 'moverSecurityContext' in restic else 'baseline'}; "
            f"transient mover requests {restic['moverResources']['requests']['memory']} (not in the footprint)"
        )
    dropins = [r for r in rec.of_type("command:remote:Command") if r.name.endswith("-etcd-snapshots")]
    if dropins:
        config = json.loads(plain(dropins[0].inputs["stdin"]))
        lines.append(
            f"  cluster state (etcd): cron '{config['etcd-snapshot-schedule-cron']}', compressed, keeps "
            f"{config['etcd-snapshot-retention']} on each server and {config['etcd-s3-retention']} in "
            f"{config['etcd-s3-bucket']}/{config['etcd-s3-folder']}/, from {len(dropins)} server(s)"
        )
    elif plan.sets_up_a_node:
        lines.append("  cluster state: NOT backed up (datastore sqlite): rebuilt from the Pulumi state and Git")
    else:
        lines.append("  cluster state: the given cluster's own, not this stack's to back up")
    lines.append("  NOT backed up: Redis (a cache), claims not in backupVolumes, Vault's unseal keys (kept offline)")
    return lines


def _collisions(plan: Plan) -> list[str]:
    """What the program would create that a new cluster already holds (spitikos/world.py)."""
    from spitikos.world import AT_START, FRESH_WORLD, collisions

    if plan.sets_up_a_node:
        found = collisions(plan.recording, FRESH_WORLD)
        lines = ["Collisions with what a new k3s cluster and the platform's controllers create themselves:"]
    else:
        # What a given cluster holds is not known offline: only what the platform's own controllers make.
        found = collisions(plan.recording, AT_START)
        lines = [
            "Collisions with what the platform's controllers create (the given cluster's own are unknown offline):"
        ]
    return lines + ([f"  {c}" for c in found] or ["  none"])


def _tree(plan: Plan) -> list[str]:
    children: dict[str, list[Registration]] = defaultdict(list)
    for reg in plan.resources:
        parent = reg.parent if reg.parent in plan.recording.registrations else ""
        children[parent].append(reg)
    lines = [f"Resources ({len(plan.resources)}), by component:"]

    def walk(parent: str, depth: int) -> None:
        # Registration order is concurrent, so it differs between runs; names do not.
        for reg in sorted(children[parent], key=lambda r: (r.name, r.type)):
            mark = " [protected]" if reg.protect else ""
            lines.append(f"{'  ' * depth}- {reg.name}  ({reg.type}){mark}")
            walk(reg.urn, depth + 1)

    walk("", 1)
    return lines


def _footprint(plan: Plan) -> list[str]:
    footprints = plan.footprints()
    total = plan.total_footprint()
    row = "  {:<28} {:>5} {:>10} {:>10} {:>11} {:>11}"
    lines = [
        "CPU and memory, per component:",
        row.format("component", "ctrs", "cpu req", "cpu lim", "mem req", "mem lim"),
    ]
    for name, f in sorted(footprints.items()):
        lines.append(_footprint_row(row, name, f))
    lines.append(_footprint_row(row, "total", total))
    if not plan.sets_up_a_node:
        return [*lines, *_given_cluster_footprint(total)]
    left = plan.left_for_applications_mi
    lines.append(
        f"  Node: {plan.node_memory_mi:.0f} MiB (nodeMemory) - k3s itself ~{K3S_SYSTEM_MI} MiB - platform requests "
        f"{total.memory_requests_mi:.0f} MiB = {left:.0f} MiB left for applications "
        f"({'meets' if left >= APPLICATION_RESERVE_MI else 'BELOW'} the {APPLICATION_RESERVE_MI} MiB reserve)."
    )
    lines += _footprint_notes(total)
    return lines


def _given_cluster_footprint(total: Footprint) -> list[str]:
    """On a cluster given by `kubeconfig`, its nodes' size and system share are unknown offline."""
    return [
        f"  Cluster: the platform requests {total.memory_requests_mi:.0f} MiB of memory and "
        f"{total.cpu_requests_millis:.0f}m CPU (limits {total.cpu_limits_millis:.0f}m) of the given cluster; "
        "what is left for applications depends on its nodes, unknown offline."
    ]


def _footprint_notes(total: Footprint) -> list[str]:
    """What the two figures above mean, and what the CPU limits add up to against the cores."""
    lines = [
        f"  The reserve: room the applications Argo CD deploys need (in pi5, kube-prometheus-stack's Prometheus "
        f"alone requests 512Mi), a sizing target ({APPLICATION_RESERVE_MI} MiB), not a measurement.",
    ]
    cores = NODE_CPU_MILLIS // 1000
    if total.cpu_limits_millis > NODE_CPU_MILLIS:
        lines.append(
            f"  CPU: limits add up to {total.cpu_limits_millis:.0f}m against {cores} cores ({NODE_CPU_MILLIS}m): "
            f"OVERCOMMITTED, allowed (a limit caps a burst; requests, {total.cpu_requests_millis:.0f}m, are what "
            "the scheduler reserves), but parts bursting together throttle one another."
        )
    else:
        lines.append(f"  CPU: limits add up to {total.cpu_limits_millis:.0f}m, within {cores} cores.")
    return lines


def _footprint_row(row: str, name: str, f: Footprint) -> str:
    count = sum(c.replicas for c in f.containers)
    return row.format(
        name,
        count,
        f"{f.cpu_requests_millis:.0f}m",
        f"{f.cpu_limits_millis:.0f}m",
        f"{f.memory_requests_mi:.0f}Mi",
        f"{f.memory_limits_mi:.0f}Mi",
    )


def _schedule(plan: Plan) -> list[str]:
    weight, path = plan.critical_path()
    all_waves = plan.waves()
    wave_of = {r.urn: i for i, wave in enumerate(all_waves) for r in wave}
    kinds = f"{'node install, ' if plan.sets_up_a_node else ''}chart releases, root Application"
    lines = [f"Critical path: {weight:.0f} slow steps in a row ({kinds}):"]
    for reg in path:
        mark = "  <- slow" if is_slow(reg) else ""
        lines.append(f"  wave {wave_of[reg.urn] + 1:>2}: {reg.name}  ({reg.type}){mark}")
    lines.append(f"Parallelism: {len(all_waves)} waves; resources that can run at once in each:")
    for i, wave in enumerate(all_waves):
        slow = sorted(r.name for r in wave if is_slow(r))
        extra = f"  slow: {', '.join(slow)}" if slow else ""
        lines.append(f"  wave {i + 1:>2}: {len(wave):>3}{extra}")
    return lines


class _ManifestDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Multi-line strings (redis.conf, scripts) as `|` blocks, so a reviewer reads them as written.
    libyaml's emitter when PyYAML has it: the same text as the pure-Python one, ten times faster."""


_ManifestDumper.add_representer(
    str,
    lambda dumper, text: dumper.represent_scalar(
        "tag:yaml.org,2002:str", text, style="|" if "\n" in text.rstrip("\n") else None
    ),
)


def to_yaml(value: Any) -> str:
    return yaml.dump(value, Dumper=_ManifestDumper, sort_keys=True)


def files(plan: Plan) -> dict[str, str]:
    """Kubernetes objects the program writes itself, the tunnel's routes and DNS, and plan.json, by relative path."""
    return {name: text for name, text in plan.texts.items() if name not in ("plan.txt", "plan.md")}


def _files(plan: Plan) -> dict[str, str]:
    out: dict[str, str] = {}
    for reg in sorted(plan.resources, key=lambda r: r.urn):
        # Not a release, nor a group of files the provider reads (the Gateway API's CRDs, upstream's).
        if not reg.type.startswith("kubernetes:") or reg.type == RELEASE or reg.type.startswith("kubernetes:yaml/"):
            continue
        obj = manifest(reg)
        meta = obj.get("metadata", {})
        name = "-".join(p for p in (obj.get("kind", ""), meta.get("namespace"), meta.get("name")) if p)
        # Two Patch resources may take fields of one object (vault's Namespace: its deployer's
        # annotation, the volume backups' label): the later one's file takes its resource name too.
        if f"kubernetes/{name.lower()}.yaml" in out:
            name = f"{name}-{reg.name}"
        out[f"kubernetes/{name.lower()}.yaml"] = to_yaml(obj)
    tunnel = {
        "routes": [
            redact(r.inputs)["config"]["ingresses"]
            for r in plan.recording.of_type(
                "cloudflare:index/zeroTrustTunnelCloudflaredConfig:ZeroTrustTunnelCloudflaredConfig"
            )
        ],
        "dns": [
            {k: r.values.get(k) for k in ("name", "type", "content", "proxied", "ttl")}
            for r in sorted(plan.recording.of_type("cloudflare:index/dnsRecord:DnsRecord"), key=lambda r: r.name)
        ],
    }
    tunnel["routes"] = tunnel["routes"][0] if len(tunnel["routes"]) == 1 else tunnel["routes"]
    out["tunnel.yaml"] = to_yaml(tunnel)
    out["plan.json"] = json.dumps(plan.to_json(), indent=2, sort_keys=True) + "\n"
    return out


# What `--out` writes, and so may remove when a later plan no longer has it: nothing else in DIR.
OWNED = ("plan.txt", "plan.md", "plan.json", "tunnel.yaml", "kubernetes/*.yaml")


def manifest(reg: Registration) -> dict:
    """A Kubernetes object as `--out` writes it: its inputs, each secret redacted."""
    return _secret_keys_shown(redact(reg.inputs), reg)


def _secret_keys_shown(obj: dict, reg: Registration) -> dict:
    """A Secret whose `data`/`stringData` is secret as a whole still lists its keys, each value
    redacted: a valid manifest, and the reviewer sees which keys (`REDIS_URL`, ...) it holds."""
    if obj.get("kind") != "Secret":
        return obj
    shown = dict(obj)
    for field in ("data", "stringData"):
        if shown.get(field) == REDACTED and isinstance(reg.values.get(field), dict):
            shown[field] = dict.fromkeys(sorted(reg.values[field]), REDACTED)
    return shown


def write(plan: Plan, out: Path) -> list[Path]:
    """Writes the plan's text and `files(plan)` under `out`. Files an earlier run wrote that this plan
    no longer has (an object removed, renamed) are removed, so the folder is this plan alone; other
    files in `out` are left alone."""
    texts = snapshot(plan)
    for pattern in OWNED:
        for old in out.glob(pattern):
            if old.is_file() and old.relative_to(out).as_posix() not in texts:
                old.unlink()
    return _write_files(texts, out)


def _write_files(texts: dict[str, str], out: Path) -> list[Path]:
    written = []
    for relative, text in texts.items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written


SNAPSHOTS = ROOT / "tests" / "snapshots"


def snapshot(plan: Plan) -> dict[str, str]:
    """What is committed under tests/snapshots/<stack>/: the plan's text (resource tree, footprint,
    schedule) and every file `--out` writes. Secrets are redacted; everything is sorted."""
    return dict(plan.texts)


def snapshot_changes(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """What a rewrite changed, file by file, like `git diff --stat`: `M plan.txt (+2 -1)`, `A ...`, `D ...`."""
    import difflib

    changes = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        if old is None or new is None:
            text = new if old is None else old
            changes.append(f"{'A' if old is None else 'D'} {name} ({text.count(chr(10))} lines)")
            continue
        diff = list(difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0))
        added = sum(1 for d in diff if d.startswith("+") and not d.startswith("+++"))
        removed = sum(1 for d in diff if d.startswith("-") and not d.startswith("---"))
        changes.append(f"M {name} (+{added} -{removed})")
    return changes


def rewrite_snapshot(stack: str = "pi5", directory: Path | None = None) -> str:
    """`make snapshot`: rewrites the snapshot and says what changed, so the reviewer knows what to read."""
    directory = directory or SNAPSHOTS / stack
    before = (
        {p.relative_to(directory).as_posix(): p.read_text() for p in directory.rglob("*") if p.is_file()}
        if directory.exists()
        else {}
    )
    write_snapshot(stack, directory)
    after = {p.relative_to(directory).as_posix(): p.read_text() for p in directory.rglob("*") if p.is_file()}
    changes = snapshot_changes(before, after)
    if not changes:
        return f"{directory}: unchanged (this change does nothing to the platform of {stack})."
    files_changed = f"{len(changes)} file{'' if len(changes) == 1 else 's'} changed"
    return "\n".join([f"{directory}: {files_changed}; review, then commit them:", *changes])


def write_snapshot(stack: str = "pi5", directory: Path | None = None) -> Path:
    """Rewrites the stack's snapshot from a fresh offline run (`make snapshot`); stale files go."""
    directory = directory or SNAPSHOTS / stack
    wanted = snapshot(build(stack))
    for old in sorted(directory.rglob("*"), reverse=True) if directory.exists() else []:
        if old.is_file() and old.relative_to(directory).as_posix() not in wanted:
            old.unlink()
        elif old.is_dir() and not any(old.iterdir()):
            old.rmdir()
    _write_files(wanted, directory)
    return directory
