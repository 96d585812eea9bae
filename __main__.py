"""spitikos: a GitOps platform on a Raspberry Pi 5. Settings are validated before any resource exists."""

import pulumi

from components.platform import Platform, PlatformArgs
from components.settings import load_settings

settings = load_settings()
platform = Platform("spitikos", PlatformArgs(settings=settings))

pulumi.export("nodeAddress", platform.node_address)
pulumi.export("kubeconfig", platform.kubeconfig)
