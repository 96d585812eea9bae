"""Volume backups: VolSync's restic mover copies listed PersistentVolumeClaims to the R2 bucket.

VolSync (backube/volsync, components/versions.py) runs one small controller. For each listed claim
the stack writes, in the claim's namespace, a restic repository Secret (its own repository under
`volumes/<namespace>/<claim>` in the bucket, its own generated password, the bucket's S3 keys) and
a ReplicationSource that backs the claim up on a schedule and prunes by a retention policy.

`copyMethod: Direct`: k3s's local-path volumes have no CSI snapshots, so the mover reads the live
volume. The copy is crash-consistent, as if the power had been cut (see docs/backups.md, "Backups and
restore" for what that means for Vault). Restoring is a ReplicationDestination plus a claim that
names it as its data source (`restore_manifests`), applied before the application starts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
import yaml

from components import namespaces, r2, versions
from components.kube import (
    API_SERVER_EGRESS,
    PLATFORM_LABELS,
    RESTRICTED,
    Size,
    chart,
    egress_policy,
    from_namespaces,
    from_nodes,
    namespace,
    network_policy,
    with_provider,
)

NAMESPACE = namespaces.VOLSYNC
CONTROLLER = Size(cpu="20m", memory="40Mi", cpu_limit="500m", memory_limit="256Mi")
# A mover Job runs for minutes every few hours; restic's memory grows with the repository's index.
MOVER = Size(cpu="50m", memory="128Mi", cpu_limit="1", memory_limit="768Mi")
# Every 6 hours, at a quarter past (k3s's etcd snapshots run on the hour).
SCHEDULE = "15 */6 * * *"
RETAIN = {"hourly": 4, "daily": 7, "weekly": 4}
PRUNE_INTERVAL_DAYS = 7
# restic's metadata cache, a local-path claim VolSync creates next to the mover.
CACHE_CAPACITY = "1Gi"
STORAGE_CLASS = "local-path"
RESTORE_TRIGGER = "restore-once"
HEALTH_PORT = 8081  # chart 0.16.0 deployment-controller.yaml: --health-probe-bind-address=:8081
METRICS_PORT = 8443  # --metrics-bind-address=:8443
CRD_FILE = Path(__file__).parent / "crds" / "volumesnapshots.yaml"

# The user and group each known application runs as, so its mover reads the files as their owner
# and runs Pod Security `restricted`. Vault (hashicorp/vault chart 0.30.1, values.yaml
# server.statefulSet.securityContext.pod: runAsUser 100, runAsGroup 1000, fsGroup 1000). A claim
# not listed here gets a mover with the image's own user: `baseline`, never privileged (the
# namespace never gets VolSync's `volsync.backube/privileged-movers` annotation).
APP_OWNERS: dict[str, tuple[int, int]] = {"vault": (100, 1000)}


# A Kubernetes storage quantity as a claim's `resources.requests.storage` takes it: a number and a
# binary or decimal suffix (k8s.io/apimachinery resource.Quantity; the exponent forms are left out).
_STORAGE_RE = re.compile(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?")


def storage_problem(size: str) -> str | None:
    """What makes `size` no claim's size (None when it is one): not a quantity, or not above zero."""
    match = _STORAGE_RE.fullmatch(size)
    if match is None:
        return "is not a size like '1Gi' or '500Mi' (a positive Kubernetes quantity)"
    if float(match.group(1)) == 0:
        return "is no size: a claim needs more than 0 bytes"
    return None


@dataclass(frozen=True)
class Volume:
    namespace: str
    claim: str

    @classmethod
    def parse(cls, entry: str) -> Volume:
        namespace, slash, claim = entry.partition("/")
        if not (slash and namespace and claim):
            raise ValueError(f"{entry!r} is not NAMESPACE/CLAIM")
        return cls(namespace, claim)

    @property
    def label(self) -> str:
        return f"{self.namespace}-{self.claim}"

    @property
    def secret(self) -> str:
        return f"{self.claim}-restic"

    def repository(self, endpoint: str, bucket: str) -> str:
        """restic's S3 repository URL (`s3:https://<endpoint>/<bucket>/<prefix>`)."""
        return f"s3:https://{endpoint}/{bucket}/{r2.VOLUMES_PREFIX}/{self.namespace}/{self.claim}"


def mover_security_context(volume: Volume) -> dict[str, Any] | None:
    owner = APP_OWNERS.get(volume.namespace)
    if owner is None:
        return None
    uid, gid = owner
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": gid,
        "fsGroup": gid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def restic_spec(volume: Volume) -> dict[str, Any]:
    """The `restic` block shared by the ReplicationSource and, for a restore, the ReplicationDestination."""
    spec: dict[str, Any] = {
        "repository": volume.secret,
        "copyMethod": "Direct",
        "cacheCapacity": CACHE_CAPACITY,
        "cacheStorageClassName": STORAGE_CLASS,
        "moverResources": MOVER.resources(),
    }
    if (context := mover_security_context(volume)) is not None:
        spec["moverSecurityContext"] = context
    return spec


def replication_source_spec(volume: Volume) -> dict[str, Any]:
    return {
        "sourcePVC": volume.claim,
        "trigger": {"schedule": SCHEDULE},
        "restic": {**restic_spec(volume), "pruneIntervalDays": PRUNE_INTERVAL_DAYS, "retain": RETAIN},
    }


def restore_manifests(volume: Volume, size: str) -> list[dict[str, Any]]:
    """What brings a claim back from its latest backup, applied before its application exists: the
    claim, empty, and a ReplicationDestination that restores into it once (a `manual` trigger) with
    `copyMethod: Direct`. (VolSync's volume populator would need a VolumeSnapshot, which local-path
    cannot take.) The mover is the claim's first consumer, so local-path binds it on the mover's
    node; the application's StatefulSet then adopts the claim by name."""
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": volume.claim, "namespace": volume.namespace},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": STORAGE_CLASS,
            "resources": {"requests": {"storage": size}},
        },
    }
    destination = {
        "apiVersion": "volsync.backube/v1alpha1",
        "kind": "ReplicationDestination",
        "metadata": {"name": f"{volume.claim}-restore", "namespace": volume.namespace},
        "spec": {
            "trigger": {"manual": RESTORE_TRIGGER},
            "restic": {**restic_spec(volume), "destinationPVC": volume.claim, "enableFileDeletion": True},
        },
    }
    return [claim, destination]


@dataclass
class VolumeBackupsArgs:
    provider: k8s.Provider
    bucket: r2.BackupBucket
    volumes: Sequence[str]
    """`<namespace>/<claim>` each (the `backupVolumes` setting)."""
    prometheus_namespace: str = "monitoring"


class VolumeBackups(pulumi.ComponentResource):
    """VolSync, sized for a Pi, and a scheduled restic backup of each listed claim."""

    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: VolumeBackupsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spitikos:backup:VolumeBackups", name, None, with_provider(opts, args.provider))
        ns = namespace(f"{name}-namespace", NAMESPACE, self, RESTRICTED)
        crd = self._snapshot_crd(name)
        self.release = self._volsync(name, ns, crd)
        self._network_policies(name, ns, args)
        volumes = [Volume.parse(v) for v in args.volumes]
        for ns_name in dict.fromkeys(v.namespace for v in volumes):
            self._ensure_namespace(name, ns_name)
        for volume in volumes:
            self._backup(name, volume, args.bucket)
        self.register_outputs({})

    def _snapshot_crd(self, name: str) -> k8s.apiextensions.v1.CustomResourceDefinition:
        """VolumeSnapshot's CRD: VolSync's controllers watch VolumeSnapshots and fail to start without
        it. Kept on delete: deleting a CRD deletes every object of its kind."""
        # libyaml's safe loader when PyYAML has it: the same data, a twentieth of the time (35 ms a run).
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        (doc,) = [d for d in yaml.load_all(CRD_FILE.read_text(), Loader=loader) if d]
        return k8s.apiextensions.v1.CustomResourceDefinition(
            f"{name}-volumesnapshots-crd",
            metadata={**doc["metadata"], "labels": {**doc["metadata"].get("labels", {}), **PLATFORM_LABELS}},
            spec=doc["spec"],
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
        )

    def _volsync(self, name: str, ns: k8s.core.v1.Namespace, crd: pulumi.Resource) -> k8s.helm.v3.Release:
        # The CRD first: the controller's manager stops at start when a kind it watches is missing.
        return chart(
            f"{name}-volsync",
            self,
            release="volsync",
            chart="volsync",
            version=versions.VOLSYNC_CHART,
            namespace=ns.metadata.name,
            values={
                # chart 0.16.0 values.yaml: one controller; it and the restic mover run the chart's
                # own image at its appVersion (components/versions.py).
                "replicaCount": 1,
                "manageCRDs": True,
                "resources": CONTROLLER.resources(),
            },
            depends_on=[crd],
        )

    def _ensure_namespace(self, name: str, namespace_name: str) -> None:
        """The application's namespace, created if Argo CD has not yet (a new cluster), left as it is
        otherwise: a server-side apply patch that only adds a label (and is removed on delete)."""
        k8s.core.v1.NamespacePatch(
            f"{name}-{namespace_name}-namespace",
            metadata={"name": namespace_name, "labels": {"spitikos.dev/volume-backups": "true"}},
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _backup(self, name: str, volume: Volume, bucket: r2.BackupBucket) -> None:
        prefix = f"{name}-{volume.label}"
        # Losing the password loses the backups: protected, and kept in state.
        password = random.RandomPassword(
            f"{prefix}-restic-password",
            length=48,
            special=False,
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        secret = k8s.core.v1.Secret(
            f"{prefix}-restic",
            metadata={"name": volume.secret, "namespace": volume.namespace, "labels": PLATFORM_LABELS},
            type="Opaque",
            string_data={
                "RESTIC_REPOSITORY": volume.repository(bucket.endpoint, bucket.bucket),
                "RESTIC_PASSWORD": pulumi.Output.secret(password.result),
                "AWS_ACCESS_KEY_ID": bucket.access_key_id,
                "AWS_SECRET_ACCESS_KEY": bucket.secret_access_key,
                "AWS_DEFAULT_REGION": r2.REGION,
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        k8s.apiextensions.CustomResource(
            f"{prefix}-backup",
            api_version="volsync.backube/v1alpha1",
            kind="ReplicationSource",
            metadata={"name": f"{volume.claim}-backup", "namespace": volume.namespace, "labels": PLATFORM_LABELS},
            spec=replication_source_spec(volume),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[secret, self.release]),
        )

    def _network_policies(self, name: str, ns: k8s.core.v1.Namespace, args: VolumeBackupsArgs) -> None:
        """The controller is probed by kubelets and scraped by Prometheus; it calls the API server
        alone (the movers run in the applications' namespaces, under their policies)."""
        network_policy(
            f"{name}-network-policy",
            self,
            ns.metadata.name,
            "volsync-controller",
            {
                "podSelector": {},
                "ingress": [
                    {"from": from_nodes(), "ports": [{"protocol": "TCP", "port": HEALTH_PORT}]},
                    {
                        "from": [from_namespaces(args.prometheus_namespace)],
                        "ports": [{"protocol": "TCP", "port": METRICS_PORT}],
                    },
                ],
            },
        )
        egress_policy(f"{name}-egress-policy", self, ns.metadata.name, [*API_SERVER_EGRESS])
