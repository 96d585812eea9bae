"""Every version the platform runs, in one place: an upgrade is a one-line diff.

k3s can also be overridden per stack with the `k3sVersion` setting.
"""

K3S_VERSION = "v1.35.5+k3s1"

# sha256 of k3s's `install.sh` at each release tag, checked on the node before the installer runs
# (a moved tag or a tampered download then stops the install). Add the pinned release's with
#   curl -sfL "https://raw.githubusercontent.com/k3s-io/k3s/v1.35.5%2Bk3s1/install.sh" | sha256sum
# A release without an entry installs with a warning. Not yet filled in: no copy of install.sh at
# the tag could be fetched where this was written, and a guessed hash would stop every install.
# The installer itself checks the k3s binary against the release's sha256sum-<arch>.txt.
K3S_INSTALLER_SHA256: dict[str, str] = {}


def kubernetes_minor(k3s_version: str) -> str:
    """`1.35` for `v1.35.5+k3s1`: the Kubernetes release whose schemas the objects must satisfy."""
    return ".".join(k3s_version.lstrip("v").split("+")[0].split(".")[:2])


# The last release (controller v1.15.1): upstream retired ingress-nginx in March 2026; see
# docs/decisions/0001-ingress-controller.md for why the platform stays on it for now.
INGRESS_NGINX_CHART = "4.15.1"
INGRESS_NGINX_REPO = "https://kubernetes.github.io/ingress-nginx"

KEDA_CHART = "2.20.2"
KEDA_REPO = "https://kedacore.github.io/charts"

# Argo CD v3.4.4. The 3.5 line (sync impersonation beta there; argo-helm 10.2.3 and later carry it)
# is not vendored yet: no copy of argo-helm newer than argo-cd-10.1.1 could be read where this was
# written, and charts/vendor/ holds only charts copied unchanged from their upstream tags. Sync
# impersonation is in 3.4 (alpha since 2.13, the same `application.sync.impersonation.enabled` and
# `AppProject.spec.destinationServiceAccounts`); 3.5 also impersonates the server's resource
# operations (get, events, logs, actions), which the applications' deployer already holds.
ARGO_CD_CHART = "10.1.1"
ARGO_CD_REPO = "https://argoproj.github.io/argo-helm"

# Official images, multi-arch (arm64 included). Not Bitnami: its public images moved
# to an unmaintained legacy registry in 2025.
# Every image runs by digest (`repository:tag@sha256:<multi-arch index>`): a re-pushed tag changes
# nothing on the node. The tag stays for people and for Renovate, which updates both together.
REDIS_IMAGE = (
    "docker.io/library/redis:8.2.2-alpine@sha256:59b6e694653476de2c992937ebe1c64182af4728e54bb49e9b7a6c26614d8933"
)
CLOUDFLARED_IMAGE = (
    "docker.io/cloudflare/cloudflared:2026.6.1@sha256:6d91c121b803126f7a5344005d17a9324788fc09d305b6e2560ec6040a7ae283"
)
# The Argo CD chart's own images (10.1.1's values.yaml defaults), by digest through the chart's
# tag values: the chart accepts `tag@digest` (templates/_common.tpl turns it into a valid label).
# Renovate moves them with the chart, in one pull request.
ARGO_CD_IMAGE = "quay.io/argoproj/argocd:v3.4.4@sha256:2fb3efa9eaa42382acb39c9a1485eaac7a1ad7a09e8aa7da7143ca256fa6da09"
ARGO_CD_REDIS_IMAGE = "ecr-public.aws.com/docker/library/redis:8.2.3-alpine@sha256:08ad0b1d280850169a790dba1393ff7a90aef951fc19632cf4d3ce4f78e679ba"  # noqa: E501 - one line, for Renovate
# KEDA's chart (2.20.2) takes `tag@digest` too (templates/*/deployment.yaml put the tag only in
# the image; labels use the chart's appVersion). They move with the chart in one pull request.
KEDA_IMAGE = "ghcr.io/kedacore/keda:2.20.2@sha256:fe74c7b8849586a67ad2201bcb89e7f5ac221ff90399ecaa8fd28427f1ef11e6"
KEDA_METRICS_API_SERVER_IMAGE = "ghcr.io/kedacore/keda-metrics-apiserver:2.20.2@sha256:27286536a8a775aeeee37a7e343f8ecebb27ebf680ee1181a4f99e82eefb253b"  # noqa: E501 - one line, for Renovate
KEDA_WEBHOOKS_IMAGE = "ghcr.io/kedacore/keda-admission-webhooks:2.20.2@sha256:41f74102aba7959c6e8d08b433ab8a5fd6cae7c5646c78f7fe3de40a52df3439"  # noqa: E501 - one line, for Renovate
# ingress-nginx's chart already runs its images by digest (controller.image.digest and
# admissionWebhooks.patch.image.digest in values.yaml at 4.15.1): not overridden, so a chart
# upgrade brings its own tags and digests together.


def repository_and_tag(image: str) -> tuple[str, str]:
    """`("quay.io/argoproj/argocd", "v3.4.4@sha256:...")` for a chart's `repository` and `tag` values."""
    name, digest = image.split("@") if "@" in image else (image, "")
    repository, tag = name.rsplit(":", 1)
    return repository, f"{tag}@{digest}" if digest else tag


# VolSync (backube/volsync): chart and operator 0.16.0, restic 0.18.1. Its images are multi-arch
# (arm64 included) since 0.13 (backube/volsync#1613). The chart runs quay.io/backube/volsync at its
# appVersion (0.16.0) for the controller and every mover; it is not yet pinned by digest (the chart
# takes one in `image.image`/`restic.image`): none could be read where this was written, and a
# guessed one would stop every pod.
VOLSYNC_CHART = "0.16.0"
VOLSYNC_REPO = "https://backube.github.io/helm-charts/"
# The VolumeSnapshot CRD VolSync's controllers watch (components/crds/volumesnapshots.yaml).
EXTERNAL_SNAPSHOTTER = "v8.6.0"
