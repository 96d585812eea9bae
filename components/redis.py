"""Redis: a password-protected, persistent cache for the applications.

The official `redis` image (multi-arch, arm64 included), as typed Kubernetes objects:
Bitnami's chart and images are not used (its public images moved to an unmaintained
legacy registry in 2025). The password never appears in a command line: redis.conf
includes it from a Secret-mounted file, and probes read it from REDISCLI_AUTH.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import versions
from components.kube import (
    NAMESPACE_NAME,
    PLATFORM_LABELS,
    RESTRICTED,
    Size,
    namespace,
    network_policy,
    service_host,
    with_provider,
)

NAMESPACE = "redis"
SERVICE = "redis"
# The name the real applications' charts and the api's config use (Bitnami's chart named its
# Service so): one more Service on the same pod, so neither side has to change at once.
ALIAS_SERVICE = "redis-master"
PORT = 6379
SECRET = "redis-auth"  # noqa: S105 - the Secret object's name
SIZE = Size(cpu="50m", memory="96Mi", cpu_limit="500m", memory_limit="256Mi")
REDIS_UID = 999  # the `redis` user of the official image


@dataclass
class RedisArgs:
    provider: k8s.Provider
    platform_namespaces: Sequence[str] = ()
    """Namespaces whose pods may not reach Redis: it is the applications' cache, not the platform's."""
    storage: str = "2Gi"
    # Below the container's memory limit, leaving room for the fork that writes snapshots.
    max_memory: str = "128mb"
    storage_class: str | None = "local-path"
    """k3s's local-path; None: the cluster's default StorageClass (on a cluster the stack is given)."""


def redis_conf(max_memory: str) -> str:
    return "\n".join(
        [
            "bind * -::*",
            f"port {PORT}",
            "protected-mode yes",
            "dir /data",
            f"maxmemory {max_memory}",
            # A cache: when full, evict the least recently used key of any kind.
            "maxmemory-policy allkeys-lru",
            # Snapshots so a restart starts warm; no append-only log for a cache.
            "save 900 1",
            "save 300 100",
            "appendonly no",
            "include /etc/redis/auth/auth.conf",
            "",
        ]
    )


def password_checksum(password: pulumi.Output[str]) -> pulumi.Output[str]:
    """A SHA-256 of the password, shown in plain text on purpose: the password is 32 random
    characters, so its hash reveals nothing, and a secret annotation would hide the whole pod spec
    from previews and the offline plan."""
    return pulumi.Output.unsecret(password.apply(lambda p: hashlib.sha256(p.encode()).hexdigest()))


class Redis(pulumi.ComponentResource):
    """One Redis with its data on a protected PersistentVolumeClaim."""

    address: str
    """`redis.redis.svc.cluster.local:6379`."""
    alias_address: str
    """`redis-master.redis.svc.cluster.local:6379`: the same Redis under the name the real apps use."""
    password: pulumi.Output[str]
    """Secret."""
    url: pulumi.Output[str]
    """`redis://:<password>@<address>/0`, for clients that take one URL. Secret."""
    secret_name: str
    """The Secret in the `redis` namespace whose `password` key holds the password."""

    def __init__(self, name: str, args: RedisArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spitikos:cache:Redis", name, None, with_provider(opts, args.provider))
        child = pulumi.ResourceOptions(parent=self)
        labels = {"app.kubernetes.io/name": "redis", **PLATFORM_LABELS}
        selector = {"app.kubernetes.io/name": "redis"}
        ns = namespace(f"{name}-namespace", NAMESPACE, self, RESTRICTED)
        meta = lambda n: {"name": n, "namespace": ns.metadata.name, "labels": labels}  # noqa: E731

        password = random.RandomPassword(f"{name}-password", length=32, special=False, opts=child)
        self.password = pulumi.Output.secret(password.result)
        secret = k8s.core.v1.Secret(
            f"{name}-auth",
            metadata=meta(SECRET),
            type="Opaque",
            string_data={
                "password": self.password,
                "auth.conf": pulumi.Output.format("requirepass {0}\n", self.password),
            },
            opts=child,
        )
        conf = redis_conf(args.max_memory)
        config = k8s.core.v1.ConfigMap(
            f"{name}-config", metadata=meta("redis-config"), data={"redis.conf": conf}, opts=child
        )
        # The data outlives the Deployment: protected, so no update or destroy can drop it by accident.
        data = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-data",
            metadata=meta("redis-data"),
            spec={
                "accessModes": ["ReadWriteOnce"],
                **({"storageClassName": args.storage_class} if args.storage_class else {}),
                "resources": {"requests": {"storage": args.storage}},
            },
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        password_env = {"name": "REDISCLI_AUTH", "valueFrom": {"secretKeyRef": {"name": SECRET, "key": "password"}}}
        ping = ["sh", "-c", "redis-cli -h 127.0.0.1 ping | grep -q PONG"]
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=meta("redis"),
            spec={
                "replicas": 1,
                # One writer of a ReadWriteOnce volume: stop the old pod before starting the new.
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": {
                        "labels": labels,
                        # A new config or password restarts the pod: Redis reads both only at start.
                        "annotations": {
                            "checksum/config": hashlib.sha256(conf.encode()).hexdigest(),
                            "checksum/auth": password_checksum(self.password),
                        },
                    },
                    "spec": {
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": REDIS_UID,
                            "runAsGroup": REDIS_UID,
                            "fsGroup": REDIS_UID,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "automountServiceAccountToken": False,
                        "containers": [
                            {
                                "name": "redis",
                                "image": versions.REDIS_IMAGE,
                                "command": ["redis-server", "/etc/redis/redis.conf"],
                                "ports": [{"name": "redis", "containerPort": PORT}],
                                "env": [password_env],
                                "resources": SIZE.resources(),
                                "readinessProbe": {"exec": {"command": ping}, "periodSeconds": 10, "timeoutSeconds": 3},
                                "livenessProbe": {
                                    "exec": {"command": ping},
                                    "initialDelaySeconds": 15,
                                    "periodSeconds": 20,
                                    "timeoutSeconds": 5,
                                    "failureThreshold": 3,
                                },
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                                "volumeMounts": [
                                    {"name": "data", "mountPath": "/data"},
                                    {"name": "config", "mountPath": "/etc/redis/redis.conf", "subPath": "redis.conf"},
                                    {"name": "auth", "mountPath": "/etc/redis/auth", "readOnly": True},
                                ],
                            }
                        ],
                        "volumes": [
                            {"name": "data", "persistentVolumeClaim": {"claimName": "redis-data"}},
                            {"name": "config", "configMap": {"name": "redis-config"}},
                            {
                                "name": "auth",
                                "secret": {"secretName": SECRET, "items": [{"key": "auth.conf", "path": "auth.conf"}]},
                            },
                        ],
                    },
                },
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[secret, config, data]),
        )
        spec = {"selector": selector, "ports": [{"name": "redis", "port": PORT, "targetPort": "redis"}]}
        self.service = k8s.core.v1.Service(f"{name}-service", metadata=meta(SERVICE), spec=spec, opts=child)
        k8s.core.v1.Service(f"{name}-alias-service", metadata=meta(ALIAS_SERVICE), spec=spec, opts=child)
        network_policy(
            f"{name}-network-policy",
            self,
            ns.metadata.name,
            "redis-from-applications",
            {
                "podSelector": {},
                "ingress": [
                    {
                        "from": [
                            {
                                "namespaceSelector": {
                                    "matchExpressions": [
                                        {
                                            "key": NAMESPACE_NAME,
                                            "operator": "NotIn",
                                            "values": list(args.platform_namespaces),
                                        }
                                    ]
                                }
                            }
                        ],
                        "ports": [{"protocol": "TCP", "port": PORT}],
                    }
                ],
            },
        )
        self.address = f"{service_host(SERVICE, NAMESPACE)}:{PORT}"
        self.alias_address = f"{service_host(ALIAS_SERVICE, NAMESPACE)}:{PORT}"
        self.url = pulumi.Output.secret(pulumi.Output.format("redis://:{0}@{1}/0", self.password, self.address))
        self.secret_name = SECRET
        self.register_outputs({"address": self.address, "password": self.password, "url": self.url})
