"""Every version the platform runs, in one place: an upgrade is a one-line diff.

k3s can also be overridden per stack with the `k3sVersion` setting.
"""

K3S_VERSION = "v1.35.5+k3s1"


def kubernetes_minor(k3s_version: str) -> str:
    """`1.35` for `v1.35.5+k3s1`: the Kubernetes release whose schemas the objects must satisfy."""
    return ".".join(k3s_version.lstrip("v").split("+")[0].split(".")[:2])


# The last release (controller v1.15.1): upstream retired ingress-nginx in March 2026; see
# docs/decisions/0001-ingress-controller.md for why the platform stays on it for now.
INGRESS_NGINX_CHART = "4.15.1"
INGRESS_NGINX_REPO = "https://kubernetes.github.io/ingress-nginx"

KEDA_CHART = "2.20.2"
KEDA_REPO = "https://kedacore.github.io/charts"

ARGO_CD_CHART = "10.1.1"  # Argo CD v3.4.4
ARGO_CD_REPO = "https://argoproj.github.io/argo-helm"

# Official images, multi-arch (arm64 included). Not Bitnami: its public images moved
# to an unmaintained legacy registry in 2025.
REDIS_IMAGE = "docker.io/library/redis:8.2.2-alpine"
CLOUDFLARED_IMAGE = "docker.io/cloudflare/cloudflared:2026.6.1"
