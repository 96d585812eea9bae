"""What the platform asks of the node: every part each chart runs is sized, absent blocks included."""

from __future__ import annotations

import copy

import pytest

from components.charts import chart_name
from components.footprint import CHART_PARTS, Footprint, containers, cpu_millis, memory_mi, running_parts

RELEASE = "kubernetes:helm.sh/v3:Release"


def release(recording, chart: str):
    return next(r for r in recording.of_type(RELEASE) if chart_name(r.values) == chart)


def unsized_paths(reg, values: dict) -> list[str]:
    inputs = {**reg.values, "values": values}
    return [c.path for c in Footprint(tuple(containers(RELEASE, reg.name, inputs))).unsized()]


def test_the_table_knows_every_chart_the_stack_releases(stack):
    assert {chart_name(r.values) for r in stack.of_type(RELEASE)} == set(CHART_PARTS)


@pytest.mark.parametrize(
    "chart,expected",
    [
        (
            "argo-cd",
            [
                "controller.resources",
                "server.resources",
                "repoServer.resources",
                "repoServer.copyutil.resources",
                "applicationSet.resources",
                "redis.resources",
                "redisSecretInit.resources",
            ],
        ),
        ("nginx-gateway-fabric", ["nginxGateway.resources", "nginx.container.resources"]),
        ("keda", ["resources.operator", "resources.metricServer"]),
        ("keda-add-ons-http", ["interceptor.resources", "scaler.resources"]),
    ],
)
def test_each_part_the_stack_runs_is_sized(stack, chart, expected):
    reg = release(stack, chart)
    values = reg.values["values"]
    assert [p.resources for p in running_parts(chart, values)] == expected
    sized = {c.path: c for c in containers(RELEASE, reg.name, reg.values)}
    for path in expected:
        assert path in sized, f"{chart}: {path} has no resources"
    assert Footprint(tuple(sized.values())).unsized() == []


@pytest.mark.parametrize(
    "chart,path",
    [
        ("argo-cd", "redisSecretInit.resources"),
        ("argo-cd", "applicationSet.resources"),
        ("argo-cd", "repoServer.copyutil.resources"),
        ("nginx-gateway-fabric", "nginx.container.resources"),
        ("keda", "resources.metricServer"),
        ("keda-add-ons-http", "interceptor.resources"),
    ],
)
def test_a_part_whose_resources_are_absent_is_flagged(stack, chart, path):
    reg = release(stack, chart)
    values = copy.deepcopy(reg.values["values"])
    *parents, last = path.split(".")
    node = values
    for key in parents:
        node = node[key]
    del node[last]
    assert unsized_paths(reg, values) == [path]


def test_a_part_switched_on_must_be_sized_and_one_switched_off_need_not(stack):
    reg = release(stack, "argo-cd")
    values = copy.deepcopy(reg.values["values"])
    assert unsized_paths(reg, values) == []
    values["dex"]["enabled"] = True
    assert unsized_paths(reg, values) == ["dex.resources", "dex.initImage.resources"]
    values["redis"]["enabled"] = False
    del values["redis"]["resources"]
    values["dex"]["enabled"] = False
    assert unsized_paths(reg, values) == []


def test_ngfs_certificate_job_would_run_unsized_so_it_stays_off(stack):
    """The chart's cert-generator Job takes no resources value: switched on, it is a container the
    footprint cannot size (components/gateway.py makes the certificates instead)."""
    reg = release(stack, "nginx-gateway-fabric")
    values = copy.deepcopy(reg.values["values"])
    assert values["certGenerator"] == {"enable": False} and unsized_paths(reg, values) == []
    values["certGenerator"]["enable"] = True
    assert unsized_paths(reg, values) == ["(the cert-generator Job, which takes no size)"]


def test_a_chart_the_table_does_not_know_is_flagged():
    found = containers(RELEASE, "x-release", {"chart": "unknown", "values": {}})
    assert [c.path for c in Footprint(tuple(found)).unsized()] == ["(chart 'unknown' is not in footprint.CHART_PARTS)"]


def test_quantities():
    assert memory_mi("128Mi") == 128 and memory_mi("1Gi") == 1024 and round(memory_mi("500M"), 1) == 476.8
    assert memory_mi("1024Ki") == 1 and memory_mi(str(1024 * 1024)) == 1
    assert cpu_millis("100m") == 100 and cpu_millis("1") == 1000 and cpu_millis("0.5") == 500
    with pytest.raises(ValueError, match="not a memory quantity"):
        memory_mi("lots")


def test_a_part_an_autoscaler_runs_counts_as_many_pods_as_it_may_run():
    """keda-add-ons-http gives its interceptor a range (`interceptor.replicas.{min,max}`) for its own
    ScaledObject: the footprint counts the most it may run, not one."""
    size = {"requests": {"cpu": "20m", "memory": "20Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}}
    inputs = {
        "chart": "./charts/vendor/keda-add-ons-http-0.15.0",
        "version": "0.15.0",
        "values": {
            "operator": {"replicas": 0},
            "interceptor": {"replicas": {"min": 1, "max": 3}, "resources": size},
            "scaler": {"replicas": 1, "resources": size},
        },
    }
    found = Footprint(tuple(containers(RELEASE, "add-on", inputs)))
    assert found.memory_requests_mi == 80 and found.unsized() == []
