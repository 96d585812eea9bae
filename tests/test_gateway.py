"""The edge: who may serve which hostname at the Gateway, and the Gateway API objects the program
writes, held against the vendored CRDs of the version it installs."""

from __future__ import annotations

import functools
import json
import re

import jsonschema
import pytest
import yaml
from conftest import ROOT, stack_config

from components import gateway, versions
from spitikos.gateway_api import Route, accepting_listeners, intersect, listener_for, serving

GATEWAY = "kubernetes:gateway.networking.k8s.io/v1:Gateway"
HTTPROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"


@pytest.fixture(scope="module")
def spec(stack) -> dict:
    return stack.one(GATEWAY, "spitikos-edge-gateway").values


def argocd_route(stack) -> Route:
    values = stack.one(HTTPROUTE, "spitikos-argocd-route").values
    return Route("HTTPRoute", values["metadata"]["namespace"], tuple(values["spec"]["hostnames"]), "argocd-server")


# --- who may claim a hostname -------------------------------------------------------------------


def test_argocds_hostname_is_served_by_argocds_route_alone(stack, spec):
    own = argocd_route(stack)
    assert serving(spec, [own], "argocd.taehoonlee.cloud") == [own]
    # An application's route for Argo CD's hostname: the wildcard listener takes it (the app's
    # namespace may serve new hostnames), but a request for the hostname reaches Argo CD's
    # listener, which admits the argocd namespace alone.
    claim = Route("HTTPRoute", "homepage", ("argocd.taehoonlee.cloud",))
    listener = listener_for(spec, "argocd.taehoonlee.cloud")
    assert listener["hostname"] == "argocd.taehoonlee.cloud"
    assert listener not in accepting_listeners(spec, claim)
    assert serving(spec, [claim, own], "argocd.taehoonlee.cloud") == [own]
    assert serving(spec, [claim], "argocd.taehoonlee.cloud") == []


@pytest.mark.parametrize(
    "namespace,host",
    [
        ("api", "vault.taehoonlee.cloud"),  # another app's hostname
        ("homepage", "api.spitikos.dev"),
        ("vault", "taehoonlee.cloud"),  # an apex
        ("monitoring", "kube.taehoonlee.cloud"),
    ],
)
def test_an_app_cannot_claim_another_apps_hostname(spec, namespace, host):
    for kind in ("HTTPRoute", "GRPCRoute"):
        assert serving(spec, [Route(kind, namespace, (host,))], host) == [], f"{namespace} serves {host}"


def test_each_listed_hostname_is_its_namespaces_and_the_wildcard_any_apps_but_the_platforms(spec):
    owners = dict(gateway_owners())
    for host, namespace in owners.items():
        assert serving(spec, [Route("HTTPRoute", namespace, (host,))], host), f"{namespace} cannot serve {host}"
    # A new app under the wildcard needs no setting; no platform namespace may publish one.
    new_app = Route("HTTPRoute", "newapp", ("newapp.taehoonlee.cloud",))
    assert serving(spec, [new_app], "newapp.taehoonlee.cloud") == [new_app]
    for platform in ("redis", "keda", "cloudflared", "nginx-gateway", "argocd", "kube-system"):
        route = Route("HTTPRoute", platform, ("newapp.taehoonlee.cloud",))
        assert serving(spec, [route], "newapp.taehoonlee.cloud") == [], platform
    # A route without hostnames takes every listener that admits its namespace: only the wildcard.
    bare = Route("HTTPRoute", "newapp", ())
    assert [lst["hostname"] for lst in accepting_listeners(spec, bare)] == ["*.taehoonlee.cloud"]


def gateway_owners() -> list[tuple[str, str]]:
    entries = json.loads(stack_config()["spitikos:routeNamespaces"])
    listed = [(e.split("/", 1)[1], e.split("/", 1)[0]) for e in entries]
    return [*listed, ("argocd.taehoonlee.cloud", "argocd"), ("api.taehoonlee.cloud", "api")]


def test_the_model_follows_the_specs_hostname_rules():
    assert intersect("*.a.b", "x.a.b") and intersect("*.a.b", "x.y.a.b") and not intersect("*.a.b", "a.b")
    assert intersect("x.a.b", "*.a.b") and intersect("*.a.b", "*.y.a.b") and not intersect("x.a.b", "y.a.b")
    assert intersect(None, "anything.a.b")
    listeners = {"metadata": {"namespace": "gw"}, "spec": {"listeners": [
        {"name": "w", "hostname": "*.a.b", "protocol": "HTTPS", "allowedRoutes": {"namespaces": {"from": "All"}}},
        {"name": "x", "hostname": "x.a.b", "protocol": "HTTPS"},  # `Same` by default
    ]}}  # fmt: skip
    assert listener_for(listeners, "x.a.b")["name"] == "x" and listener_for(listeners, "y.a.b")["name"] == "w"
    assert listener_for(listeners, "a.b") is None
    assert serving(listeners, [Route("HTTPRoute", "gw", ("x.a.b",))], "x.a.b")
    assert not serving(listeners, [Route("HTTPRoute", "app", ("x.a.b",))], "x.a.b")
    assert not serving(listeners, [Route("TLSRoute", "app", ("y.a.b",))], "y.a.b"), "an HTTPS listener"


# --- the objects, against the CRDs the program installs -------------------------------------------


@functools.cache
def crd_schema(kind: str) -> dict:
    """The v1 schema of a kind's vendored CRD (`<group>_<plural>.yaml`; the two read here are large)."""
    plural = {"Gateway": "gateways", "HTTPRoute": "httproutes"}[kind]
    text = (gateway.CRD_FOLDER / f"gateway.networking.k8s.io_{plural}.yaml").read_text()
    crd = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader
    assert crd["spec"]["names"]["kind"] == kind
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return served["schema"]["openAPIV3Schema"]


def validate(obj: dict) -> None:
    # The schema is the CRD's own, trusted: checking it first (jsonschema.validate) costs more than the object.
    jsonschema.Draft7Validator(crd_schema(obj["kind"])).validate(obj)


def test_the_gateway_and_argocds_route_are_valid_for_their_crds(stack):
    for reg in [stack.one(GATEWAY, "spitikos-edge-gateway"), stack.one(HTTPROUTE, "spitikos-argocd-route")]:
        validate(reg.values)
    broken = {**stack.one(GATEWAY, "spitikos-edge-gateway").values}
    broken["spec"] = {**broken["spec"], "listeners": [{"name": "x", "port": 443}]}  # no protocol
    with pytest.raises(jsonschema.ValidationError):
        validate(broken)


def test_the_crds_are_the_standard_channel_at_the_pinned_version_and_the_provider_finds_them(stack):
    files = sorted(gateway.CRD_FOLDER.glob("*.yaml"))
    kinds = set()
    for path in files:
        head = path.read_text()[:2000]  # the metadata, before the megabyte of schema
        assert f"gateway.networking.k8s.io/bundle-version: {versions.GATEWAY_API_VERSION}\n" in head, path.name
        assert "gateway.networking.k8s.io/channel: standard\n" in head, path.name
        kinds |= set(re.findall(r"\n    kind: (\w+)\n", head))
    assert {"GatewayClass", "Gateway", "HTTPRoute", "GRPCRoute", "ReferenceGrant", "BackendTLSPolicy"} <= kinds
    group = stack.one("kubernetes:yaml/v2:ConfigGroup", "spitikos-edge-gateway-api-crds").values
    # Relative to the project: the provider runs in the program's folder, and the state does not
    # change with the machine.
    assert group["files"] == [str(p.relative_to(ROOT)) for p in files]
    assert all((ROOT / f).is_file() for f in group["files"])


def test_the_gateway_and_the_release_wait_for_the_crds(stack):
    crds = stack.one("kubernetes:yaml/v2:ConfigGroup", "spitikos-edge-gateway-api-crds").urn
    for reg in (
        stack.one(GATEWAY, "spitikos-edge-gateway"),
        stack.one("kubernetes:helm.sh/v3:Release", "spitikos-edge-release"),
    ):
        assert crds in stack.ancestors_closure(reg.urn), reg.name


def test_the_control_planes_certificates_are_the_ones_the_chart_would_make(stack):
    """cmd/gateway/certs.go at v2.6.7: one CA signs the server's (`<service>.<namespace>.svc`) and
    the agents' (`*.<cluster domain>`); Secrets of type kubernetes.io/tls with ca.crt beside."""
    names = {"server-tls": "nginx-gateway.nginx-gateway.svc", "agent-tls": "*.cluster.local"}
    for secret, dns_name in names.items():
        request = stack.one("tls:index/certRequest:CertRequest", f"spitikos-edge-{secret}-request").values
        assert request["dnsNames"] == [dns_name]
        cert = stack.one("tls:index/locallySignedCert:LocallySignedCert", f"spitikos-edge-{secret}-cert")
        assert cert.values["validityPeriodHours"] == 3 * 365 * 24 and cert.values["earlyRenewalHours"] > 0
        resource = stack.one("kubernetes:core/v1:Secret", f"spitikos-edge-{secret}")
        assert resource.values["metadata"]["name"] == secret and resource.values["type"] == "kubernetes.io/tls"
        assert resource.input_is_secret("stringData", "tls.key")
        assert resource.urn in stack.ancestors_closure(
            stack.one("kubernetes:helm.sh/v3:Release", "spitikos-edge-release").urn
        )
    values = stack.one("kubernetes:helm.sh/v3:Release", "spitikos-edge-release").values["values"]
    assert values["certGenerator"] == {"enable": False}


def test_every_listener_has_its_own_name_even_when_two_hostnames_spell_it_alike():
    found = gateway.listeners(["a-b.example.org", "a.b-example.org", "*.example.org"], {"a-b.example.org": "x"})
    assert [lst.name for lst in found] == ["a-b-example-org", "a-b-example-org-2", "wildcard-example-org"]
    assert [lst.namespace for lst in found] == ["x", None, None]


def test_a_hostname_no_namespace_owns_admits_all_but_the_platforms_and_all_when_there_is_none():
    shared = gateway.Listener("wildcard-a-b", "*.a.b", None)
    assert gateway.allowed_namespaces(shared, ["redis", "keda"]) == {
        "from": "Selector",
        "selector": {
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["redis", "keda"]}
            ]
        },
    }
    assert gateway.allowed_namespaces(shared, []) == {"from": "All"}, "NotIn with no values is no selector"
    owned = gateway.Listener("x-a-b", "x.a.b", "x")
    assert gateway.allowed_namespaces(owned, [])["selector"]["matchExpressions"][0]["values"] == ["x"]
