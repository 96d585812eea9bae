"""spitikos: a GitOps platform on a Raspberry Pi 5. Settings are validated before any resource exists."""

import pulumi

from components import charts
from components.platform import Platform, PlatformArgs
from components.settings import load_settings
from spitikos.failfast import failing_fast

settings = load_settings()
# The Helm charts install from charts/vendor/: each must be as pinned before anything is created.
charts.check()
# A component that raises fails the run at once with its traceback, instead of hanging.
with failing_fast():
    platform = Platform("spitikos", PlatformArgs(settings=settings))

pulumi.export("nodeAddress", platform.node_address)
pulumi.export("kubeconfig", platform.kubeconfig)
pulumi.export("argocdUrl", platform.argocd.url)
pulumi.export("argocdAdminPassword", platform.argocd.admin_password)
pulumi.export("redisAddress", platform.redis.address)
# Only for the parts the stack builds (`cloudflare`, `github`).
if platform.tunnel is not None:
    pulumi.export("tunnelId", platform.tunnel.tunnel_id)
    pulumi.export("publicHostnames", [r.hostname for r in platform.tunnel.routes])
    # What CI forwards to reach the node, and its Access service tokens (docs/decisions/0005).
    if platform.ci_tunnel is not None:
        pulumi.export("ciTunnel", platform.ci_tunnel)
        pulumi.export("ciAccessTokens", platform.ci_access_tokens)
if platform.github is not None:
    pulumi.export("repositories", platform.github.ssh_urls)
# Only with datastore etcd: a restore of a snapshot needs it (docs/operations.md, "The Pi died").
if platform.cluster.server_token is not None:
    pulumi.export("k3sServerToken", platform.cluster.server_token)
