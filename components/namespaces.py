"""The namespaces the platform owns, by the part that runs in each.

One table that the components, the settings' checks and the world check all read: the
settings validate `backupVolumes` against it before any resource exists, so it must not
live in the composition root (components/platform.py), which imports the settings.
"""

from __future__ import annotations

import fnmatch

ARGOCD = "argocd"
NGINX_GATEWAY = "nginx-gateway"
"""The edge: NGINX Gateway Fabric's control plane and the Gateway's NGINX (components/gateway.py)."""
REDIS = "redis"
KEDA = "keda"
KEDA_HTTP = "keda-http"
"""KEDA's HTTP add-on: the interceptor the edge sends scale-to-zero applications' traffic through."""
CLOUDFLARED = "cloudflared"
VOLSYNC = "volsync-system"
API = "api"
"""An application namespace Pulumi prepares (its `platform-env` Secret): the application's to use."""
K3S = ("kube-system", "kube-public", "kube-node-lease")
"""k3s's own namespaces (and the API server's)."""
PLATFORM = (ARGOCD, NGINX_GATEWAY, REDIS, KEDA, KEDA_HTTP, CLOUDFLARED, VOLSYNC, "kube-*")
"""Namespaces Pulumi owns (and k3s's own, `kube-*`), which Argo CD's applications may never deploy into."""


def is_platform(namespace: str) -> bool:
    """`namespace` is one the platform owns or k3s's own (`kube-*` matches any of k3s's)."""
    return any(fnmatch.fnmatchcase(namespace, pattern) for pattern in PLATFORM)
