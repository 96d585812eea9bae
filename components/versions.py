"""Every version the platform runs, in one place: an upgrade is a one-line diff.

k3s can also be overridden per stack with the `k3sVersion` setting.

A chart (`NAME_CHART`) is installed from its copy under charts/vendor/, pinned by a hash
(components/charts.py); `NAME_REPO` is where Renovate finds its new versions and `make
vendor-charts` pulls them from, never where the cluster gets it.
"""

# The current patch of the 1.35 line (Kubernetes 1.35 has upstream patches until 2027-02-28). An
# upgrade re-runs the pinned installer in place on every node (components/k3s.py).
K3S_VERSION = "v1.35.9+k3s1"

# sha256 of k3s's `install.sh` at each release tag, checked on the node before the installer runs
# (a moved tag or a tampered download then stops the install). Add the pinned release's with
#   curl -sfL "https://raw.githubusercontent.com/k3s-io/k3s/v1.35.9%2Bk3s1/install.sh" | sha256sum
# A release without an entry installs with a warning. Not yet filled in: no copy of install.sh at
# the tag could be fetched where this was written, and a guessed hash would stop every install.
# The installer itself checks the k3s binary against the release's sha256sum-<arch>.txt.
K3S_INSTALLER_SHA256: dict[str, str] = {}


def kubernetes_minor(k3s_version: str) -> str:
    """`1.35` for `v1.35.5+k3s1`: the Kubernetes release whose schemas the objects must satisfy."""
    return ".".join(k3s_version.lstrip("v").split("+")[0].split(".")[:2])


# NGINX Gateway Fabric 2.6.7 ships NGINX 1.31.3 (CHANGELOG.md; build/Dockerfile.nginx at the tag),
# with the fixes for CVE-2026-42945, CVE-2026-9256 and CVE-2026-42533: docs/decisions/0006. It
# supports the Gateway API 1.5.1, whose CRDs the program applies (components/crds/gateway-api/).
NGINX_GATEWAY_FABRIC_CHART = "2.6.7"
NGINX_GATEWAY_FABRIC_REPO = "oci://ghcr.io/nginx/charts"
GATEWAY_API_VERSION = "v1.5.1"

KEDA_CHART = "2.20.2"
KEDA_REPO = "https://kedacore.github.io/charts"

# KEDA's HTTP add-on (kedacore/http-add-on): chart `keda-add-ons-http` 0.15.0, app 0.15.0 (2026-06-15),
# the newest release the add-on's repository and kedacore/charts hold here: the first with HTTP/2
# (h2c) through the interceptor, which the api's gRPC needs. It talks to KEDA only through the
# external-scaler gRPC API, which 2.20.2 serves. docs/decisions/0007-request-based-scale-to-zero.md.
# Its images run by tag (ghcr.io/kedacore/http-add-on-{interceptor,scaler}:0.15.0), like VolSync's:
# the chart writes `<images.X>:<images.tag>` with one tag for all three images
# (templates/*/deployment.yaml), so no value can carry a digest per image; and one public record
# alone names their 0.15.0 digests (interceptor sha256:4e88e7808652e7c438f66d67bc8a53ce6261b6081c81475bd4758602460af499,
# scaler sha256:f748178bc4af9e546d5da38c4e1b1d8d236a343bb30927b292131c6f4c978394), read on an amd64
# machine: whether they are the multi-arch indexes is unconfirmed, and an arm64-less digest would stop
# both pods on the node. Pin them when a chart release takes a digest and a registry read confirms them.
# Re-checked 2026-12-07: the add-on's tree at v0.15.0 names no digest but ko's base image (.ko.yaml),
# kedacore/charts none; the record above stays the only one, no upstream one to check it against.
KEDA_ADD_ONS_HTTP_CHART = "0.15.0"
KEDA_ADD_ONS_HTTP_REPO = "https://kedacore.github.io/charts"

# Argo CD v3.4.4, chart argo-cd-10.1.1. Not on 3.5 (sync impersonation beta there) because no chart
# for it can be had here, re-checked 2026-12-07: argoproj/argo-helm's Git, as read here, ends at tag
# argo-cd-10.1.1 (af0a9310, 2026-07-02, appVersion v3.4.4), a month before Argo CD v3.5.0
# (2026-08-04); argoproj/argo-cd's ends 2026-08-23 (v3.5.1, v3.4.7, v3.3.14) and holds plain
# manifests, not this chart; no package registry reached here serves it. charts/vendor/ holds only
# charts copied unchanged from upstream tags, so none is made up: with the network, bump this pin
# and `make vendor-charts`, then port components/argocd.py's values to the new values.yaml.
# 3.4 still gets security releases (Argo CD patches its three newest minors, SECURITY.md at v3.5.1;
# 3.6 was scheduled for 2026-11-03, so 3.4 ends with 3.7), but v3.4.4 is behind its line: v3.4.5 to
# v3.4.7 (2026-07-09 to 08-12) bring golang.org/x/crypto 0.53.0, Secret masking in server-side diff
# and the CLI, and Helm registry passwords through stdin; release-3.4 after v3.4.7 bumps DOMPurify
# for CVE-2026-49978. No digest of a later 3.4 image could be read here to pin it by.
# Sync impersonation is in 3.4 (alpha since 2.13, the same `application.sync.impersonation.enabled`
# and `AppProject.spec.destinationServiceAccounts`); 3.5 also impersonates the server's resource
# operations (get, events, logs, actions; upgrading/3.4-3.5.md), which the applications' deployer
# already holds.
ARGO_CD_CHART = "10.1.1"
ARGO_CD_REPO = "https://argoproj.github.io/argo-helm"

# Official images, multi-arch (arm64 included). Not Bitnami: its public images moved
# to an unmaintained legacy registry in 2025.
# Every image runs by digest (`repository:tag@sha256:<multi-arch index>`): a re-pushed tag changes
# nothing on the node. The tag stays for people and for Renovate, which updates both together.
# Redis 8.2, still maintained as redis.io's Extended support line, at its current patch: 8.2.10
# (the 2026-09-18 security release for 8.2/8.6/8.8/8.10: cluster and ACL fixes), past 8.2.3
# (CVE-2025-62507) and the remote-code-execution fixes of 8.2.6 and 8.2.8 (2026-07-24). Its index
# digest as public repositories pin it, several agreeing (a Dockerfile `FROM redis:8.2.10-alpine@`,
# a test harness's image list, a Makefile's BASE_IMAGE_DIGEST_8.2.10-alpine, a `docker pull` record).
REDIS_IMAGE = (
    "docker.io/library/redis:8.2.10-alpine@sha256:b51665e66f00759be7c3152ad5ac3c66fb2f619c13ef62dea7cc1f9914524635"
)
# cloudflared's current release (2026.10.0); the security fixes of 2026.7.x-2026.8.x included. Its
# index digest as public repositories pin it (Dockerfiles, Go and Rust constants, a deploy record
# that lists its linux/amd64 and linux/arm64 manifests).
CLOUDFLARED_IMAGE = (
    "docker.io/cloudflare/cloudflared:2026.10.0@sha256:9b49eed8f62806d5d45ddf59ecefb5710429598ea6d3fcccd2af938f621b2b07"
)
# The Argo CD chart's own images (10.1.1's values.yaml defaults), by digest through the chart's
# tag values: the chart accepts `tag@digest` (templates/_common.tpl turns it into a valid label).
# Renovate moves them with the chart, in one pull request.
ARGO_CD_IMAGE = "quay.io/argoproj/argocd:v3.4.4@sha256:2fb3efa9eaa42382acb39c9a1485eaac7a1ad7a09e8aa7da7143ca256fa6da09"
# Argo CD's Redis at the same 8.2.10 as the platform's: ECR Public's docker/library mirrors the
# official image with its digest (8.2.3-alpine has the same one on both, as pinned publicly).
ARGO_CD_REDIS_IMAGE = "ecr-public.aws.com/docker/library/redis:8.2.10-alpine@sha256:b51665e66f00759be7c3152ad5ac3c66fb2f619c13ef62dea7cc1f9914524635"  # noqa: E501 - one line, for Renovate
# KEDA's chart (2.20.2) takes `tag@digest` too (templates/*/deployment.yaml put the tag only in
# the image; labels use the chart's appVersion). They move with the chart in one pull request.
KEDA_IMAGE = "ghcr.io/kedacore/keda:2.20.2@sha256:fe74c7b8849586a67ad2201bcb89e7f5ac221ff90399ecaa8fd28427f1ef11e6"
KEDA_METRICS_API_SERVER_IMAGE = "ghcr.io/kedacore/keda-metrics-apiserver:2.20.2@sha256:27286536a8a775aeeee37a7e343f8ecebb27ebf680ee1181a4f99e82eefb253b"  # noqa: E501 - one line, for Renovate
KEDA_WEBHOOKS_IMAGE = "ghcr.io/kedacore/keda-admission-webhooks:2.20.2@sha256:41f74102aba7959c6e8d08b433ab8a5fd6cae7c5646c78f7fe3de40a52df3439"  # noqa: E501 - one line, for Renovate
# NGINX Gateway Fabric's images (ghcr.io/nginx/nginx-gateway-fabric:2.6.7 and .../nginx:2.6.7, the
# chart's defaults) run by tag: neither the repository at v2.6.7, its release notes nor any file
# read where this was written publishes their digests, and a guessed one would stop every pod.
# Pin them once `crane digest` can run: the chart joins `repository:tag` (templates/deployment.yaml),
# so `nginxGateway.image.tag: 2.6.7@sha256:...` runs the control plane by digest; whether NGF's
# provisioner takes the same form for NGINX (`nginx.image.tag`, NginxProxy) is to check then.
# Re-checked 2026-12-07 at v2.6.7 (5e34a17a): CHANGELOG.md's "CONTAINER IMAGES" lists tags only; the
# one digest in the tree is the OLM operator image's (operators/bundle), which the platform does not run.


def charts() -> dict[str, str]:
    """Every chart pinned here, with its version: `argo-cd` for ARGO_CD_CHART (Renovate's naming)."""
    return {
        name.removesuffix("_CHART").lower().replace("_", "-"): value
        for name, value in globals().items()
        if name.endswith("_CHART") and isinstance(value, str)
    }


def chart_repo(chart: str) -> str:
    """The repository chart `argo-cd` is vendored from (`make vendor-charts`): ARGO_CD_REPO, named
    the way Renovate's rule for the charts reads this file (renovate.json)."""
    repo = globals().get(f"{chart.upper().replace('-', '_')}_REPO")
    if not isinstance(repo, str):
        raise ValueError(f"components/versions.py names no repository for chart {chart!r}")
    return repo


def repository_and_tag(image: str) -> tuple[str, str]:
    """`("quay.io/argoproj/argocd", "v3.4.4@sha256:...")` for a chart's `repository` and `tag` values."""
    name, digest = image.split("@") if "@" in image else (image, "")
    repository, tag = name.rsplit(":", 1)
    return repository, f"{tag}@{digest}" if digest else tag


# VolSync (backube/volsync): chart and operator 0.16.0, restic 0.18.1. Its images are multi-arch
# (arm64 included) since 0.13 (backube/volsync#1613). The chart runs quay.io/backube/volsync at its
# appVersion (0.16.0) for the controller and every mover; it is not yet pinned by digest (the chart
# takes one in `image.image`/`restic.image`, templates/_helpers.tpl "container-image"). One public
# repository pins sha256:0d03a6aad57569eba2c0eaa0848cf4a908d9744b372ff2224bb291a320f36d76 for
# 0.16.0 (walzen-group/backup-controller, hack/e2e/volsync/pins.json); no second source confirms it,
# nor that it is the multi-arch index rather than one architecture's manifest, which would stop
# every VolSync pod on the arm64 node. Pin it once a registry read (`crane digest`) confirms it.
# Re-checked 2026-12-07 at v0.16.0 (22b97b07): the tree names no digest (the OLM bundle's CSV says
# `quay.io/backube/volsync:latest`), so nothing upstream confirms that record.
VOLSYNC_CHART = "0.16.0"
VOLSYNC_REPO = "https://backube.github.io/helm-charts/"
# The VolumeSnapshot CRD VolSync's controllers watch (components/crds/volumesnapshots.yaml).
EXTERNAL_SNAPSHOTTER = "v8.6.0"
