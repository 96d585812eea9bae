"""spitikos: a GitOps platform on a Raspberry Pi 5. Settings are validated before any resource exists."""

import pulumi

from components.platform import Platform, PlatformArgs
from components.settings import load_settings

settings = load_settings()
platform = Platform("spitikos", PlatformArgs(settings=settings))

pulumi.export("nodeAddress", platform.node_address)
pulumi.export("kubeconfig", platform.kubeconfig)
pulumi.export("argocdUrl", platform.argocd.url)
pulumi.export("argocdAdminPassword", platform.argocd.admin_password)
pulumi.export("tunnelId", platform.tunnel.tunnel_id)
pulumi.export("publicHostnames", [r.hostname for r in platform.tunnel.routes])
pulumi.export("redisAddress", platform.redis.address)
pulumi.export("repositories", platform.github.ssh_urls)
# Only with datastore etcd: a restore of a snapshot needs it (docs/operations.md, "The Pi died").
if platform.cluster.server_token is not None:
    pulumi.export("k3sServerToken", platform.cluster.server_token)
