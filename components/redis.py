"""Redis: a password-protected, persistent cache for the applications.

The official `redis` image (multi-arch, arm64 included), as typed Kubernetes objects:
Bitnami's chart and images are not used (its public images moved to an unmaintained
legacy registry in 2025). The password never appears in a command line: redis.conf
includes it from a Secret-mounted file, and probes read it from REDISCLI_AUTH. The user
applications log in as may not run Redis's dangerous commands (FLUSHALL, CONFIG, ...).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import namespaces, versions
from components.kube import (
    NAMESPACE_NAME,
    PLATFORM_LABELS,
    RESTRICTED,
    Size,
    egress_policy,
    namespace,
    network_policy,
    service_host,
    with_provider,
)

NAMESPACE = namespaces.REDIS
SERVICE = "redis"
# The name the real applications' charts and the api's config use (Bitnami's chart named its
# Service so): one more Service on the same pod, so neither side has to change at once.
ALIAS_SERVICE = "redis-master"
PORT = 6379
SECRET = "redis-auth"  # noqa: S105 - the Secret object's name
SIZE = Size(cpu="50m", memory="96Mi", cpu_limit="500m", memory_limit="256Mi")
REDIS_UID = 999  # the `redis` user of the official image
LABELS = {"app.kubernetes.io/name": "redis", **PLATFORM_LABELS}
SELECTOR = {"app.kubernetes.io/name": "redis"}


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
            # The default user, with its password, from the Secret (auth.conf, see `auth_conf`).
            "include /etc/redis/auth/auth.conf",
            "",
        ]
    )


# What applications may run: everything but the commands Redis itself rates dangerous (its
# `@dangerous` category: FLUSHALL, FLUSHDB, CONFIG, DEBUG, KEYS, MONITOR, SHUTDOWN, REPLICAOF,
# SAVE, ACL, MODULE, CLIENT KILL/LIST, ...). An app holding the password can then neither wipe
# the cache nor reconfigure the server (CONFIG SET dir + SAVE writes files). INFO, also in the
# category, stays: clients' ready checks (ioredis) and exporters read it. The real api reads and
# deletes its keys with SCAN and DEL (docs: reference/documentation-service.md), not KEYS or FLUSH.
# ACL rules replace `rename-command`, deprecated since Redis 7 (redis.io/docs, ACL).
APPLICATION_COMMANDS = "+@all -@dangerous +info"


def auth_conf(password: pulumi.Input[str]) -> pulumi.Output[str]:
    """The default user (the one applications log in as): its password and the commands it may run.
    Secret, like the password: it lives in the Secret, mounted as a file, never in argv."""
    return pulumi.Output.secret(
        pulumi.Output.format("user default on >{0} ~* &* {1}\n", password, APPLICATION_COMMANDS)
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
        ns = namespace(f"{name}-namespace", NAMESPACE, self, RESTRICTED)
        self._ns_name = ns.metadata.name
        password = random.RandomPassword(
            f"{name}-password", length=32, special=False, opts=pulumi.ResourceOptions(parent=self)
        )
        self.password = pulumi.Output.secret(password.result)
        secret = self._auth_secret(name)
        conf = redis_conf(args.max_memory)
        config = k8s.core.v1.ConfigMap(
            f"{name}-config", metadata=self._meta("redis-config"), data={"redis.conf": conf}, opts=self._child()
        )
        data = self._data(name, args)
        self.deployment = self._deployment(name, conf, depends_on=[secret, config, data])
        self._services(name)
        self._network_policy(name, args.platform_namespaces)
        # Redis dials nothing: no DNS, no API, no peer (probes run inside the container).
        egress_policy(f"{name}-egress-policy", self, self._ns_name, [])
        self.address = f"{service_host(SERVICE, NAMESPACE)}:{PORT}"
        self.alias_address = f"{service_host(ALIAS_SERVICE, NAMESPACE)}:{PORT}"
        self.url = pulumi.Output.secret(pulumi.Output.format("redis://:{0}@{1}/0", self.password, self.address))
        self.secret_name = SECRET
        self.register_outputs({"address": self.address, "password": self.password, "url": self.url})

    def _child(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self)

    def _meta(self, name: str) -> dict:
        return {"name": name, "namespace": self._ns_name, "labels": LABELS}

    def _auth_secret(self, name: str) -> k8s.core.v1.Secret:
        """The password, for apps and probes, and auth.conf, which redis.conf includes."""
        return k8s.core.v1.Secret(
            f"{name}-auth",
            metadata=self._meta(SECRET),
            type="Opaque",
            string_data={"password": self.password, "auth.conf": auth_conf(self.password)},
            opts=self._child(),
        )

    def _data(self, name: str, args: RedisArgs) -> k8s.core.v1.PersistentVolumeClaim:
        """The data outlives the Deployment: protected, so no update or destroy can drop it by accident."""
        return k8s.core.v1.PersistentVolumeClaim(
            f"{name}-data",
            metadata=self._meta("redis-data"),
            spec={
                "accessModes": ["ReadWriteOnce"],
                **({"storageClassName": args.storage_class} if args.storage_class else {}),
                "resources": {"requests": {"storage": args.storage}},
            },
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )

    def _deployment(self, name: str, conf: str, depends_on: list[pulumi.Resource]) -> k8s.apps.v1.Deployment:
        return k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=self._meta("redis"),
            spec={
                "replicas": 1,
                # One writer of a ReadWriteOnce volume: stop the old pod before starting the new.
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": SELECTOR},
                "template": {
                    "metadata": {
                        "labels": LABELS,
                        # A new config or password restarts the pod: Redis reads both only at start.
                        "annotations": {
                            "checksum/config": hashlib.sha256(conf.encode()).hexdigest(),
                            "checksum/auth": password_checksum(self.password),
                        },
                    },
                    "spec": _pod_spec(),
                },
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )

    def _services(self, name: str) -> None:
        spec = {"selector": SELECTOR, "ports": [{"name": "redis", "port": PORT, "targetPort": "redis"}]}
        self.service = k8s.core.v1.Service(
            f"{name}-service", metadata=self._meta(SERVICE), spec=spec, opts=self._child()
        )
        k8s.core.v1.Service(f"{name}-alias-service", metadata=self._meta(ALIAS_SERVICE), spec=spec, opts=self._child())

    def _network_policy(self, name: str, platform_namespaces: Sequence[str]) -> None:
        """Applications reach Redis; the platform's own namespaces do not."""
        not_platform = {"key": NAMESPACE_NAME, "operator": "NotIn", "values": list(platform_namespaces)}
        network_policy(
            f"{name}-network-policy",
            self,
            self._ns_name,
            "redis-from-applications",
            {
                "podSelector": {},
                "ingress": [
                    {
                        "from": [{"namespaceSelector": {"matchExpressions": [not_platform]}}],
                        "ports": [{"protocol": "TCP", "port": PORT}],
                    }
                ],
            },
        )


def _pod_spec() -> dict:
    """Non-root, read-only, no capabilities; the password from the Secret, never in argv."""
    password_env = {"name": "REDISCLI_AUTH", "valueFrom": {"secretKeyRef": {"name": SECRET, "key": "password"}}}
    ping = ["sh", "-c", "redis-cli -h 127.0.0.1 ping | grep -q PONG"]
    return {
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
            {"name": "auth", "secret": {"secretName": SECRET, "items": [{"key": "auth.conf", "path": "auth.conf"}]}},
        ],
    }
