"""KEDA: event-driven autoscaling, scale to zero included."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import versions
from components.kube import RESTRICTED, Size, chart, namespace, network_policy, with_provider

NAMESPACE = "keda"
OPERATOR = Size(cpu="50m", memory="96Mi", cpu_limit="500m", memory_limit="256Mi")
METRICS_SERVER = Size(cpu="50m", memory="64Mi", cpu_limit="500m", memory_limit="192Mi")
WEBHOOKS = Size(cpu="20m", memory="32Mi", cpu_limit="200m", memory_limit="128Mi")


@dataclass
class KedaArgs:
    provider: k8s.Provider


class Keda(pulumi.ComponentResource):
    """The upstream chart, sized for a Pi."""

    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: KedaArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spitikos:autoscaling:Keda", name, None, with_provider(opts, args.provider))
        ns = namespace(f"{name}-namespace", NAMESPACE, self, RESTRICTED)
        self.release = chart(
            f"{name}-release",
            self,
            release="keda",
            chart="keda",
            version=versions.KEDA_CHART,
            repo=versions.KEDA_REPO,
            namespace=ns.metadata.name,
            values={
                # The chart's default is `Always`: a restart without internet would then fail.
                "image": {"pullPolicy": "IfNotPresent"},
                # Kept when the release is deleted or replaced, as Argo CD's are: deleting a CRD
                # deletes every ScaledObject with it. The chart (templates/crds/*.yaml at 2.20.2)
                # copies crds.additionalAnnotations onto each CRD.
                "crds": {"install": True, "additionalAnnotations": {"helm.sh/resource-policy": "keep"}},
                "operator": {"replicaCount": 1},
                "metricsServer": {"replicaCount": 1},
                "webhooks": {"replicaCount": 1},
                "resources": {
                    "operator": OPERATOR.resources(),
                    "metricServer": METRICS_SERVER.resources(),
                    "webhooks": WEBHOOKS.resources(),
                },
            },
        )
        # The operator, metrics server and webhooks talk among themselves; the API server calls
        # the metrics server and the webhooks from the node. No other pod has reason to.
        network_policy(
            f"{name}-network-policy",
            self,
            ns.metadata.name,
            "keda-internal",
            {"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]},
        )
        self.register_outputs({})
