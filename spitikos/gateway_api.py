"""The Gateway API's rules for which route serves a host (v1.5.1, the version the program installs):
which listeners of a Gateway accept a route (`allowedRoutes`: namespaces and kinds; hostnames that
intersect), and which listener a request reaches (the most specific hostname that matches it).

From the spec (gateway-api v1.5.1 apis/v1/gateway_types.go, Listener.Hostname and AllowedRoutes;
httproute_types.go, HTTPRouteSpec.Hostnames): a wildcard `*.example.com` matches one or more
labels before `example.com` and never `example.com` itself; a route attaches to a listener only
if at least one of its hostnames intersects the listener's (a route without hostnames takes the
listener's); `allowedRoutes.namespaces.from` is `Same` by default; an HTTPS listener takes
HTTPRoutes and, with NGF, GRPCRoutes. A request is matched to the listener with the most
specific hostname: an exact one before a wildcard, a longer wildcard before a shorter one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

NAMESPACE_NAME = "kubernetes.io/metadata.name"
HTTPS_KINDS = ("HTTPRoute", "GRPCRoute")


@dataclass(frozen=True)
class Route:
    kind: str
    namespace: str
    hostnames: tuple[str, ...]
    name: str = ""


def _matches(pattern: str, host: str) -> bool:
    """Whether a listener or route hostname `pattern` matches a concrete host."""
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return pattern == host


def intersect(listener: str | None, route: str) -> bool:
    if listener is None or listener == route:
        return True
    if not listener.startswith("*.") and not route.startswith("*."):
        return False
    if listener.startswith("*.") and route.startswith("*."):
        return route.endswith(listener[1:]) or listener.endswith(route[1:])
    wildcard, concrete = (listener, route) if listener.startswith("*.") else (route, listener)
    return _matches(wildcard, concrete)


def _selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    if not all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def admits_namespace(listener: Mapping[str, Any], gateway_namespace: str, namespace: str) -> bool:
    allowed = (listener.get("allowedRoutes") or {}).get("namespaces") or {}
    origin = allowed.get("from", "Same")
    if origin == "All":
        return True
    if origin == "Same":
        return namespace == gateway_namespace
    if origin == "Selector":
        return _selects(allowed.get("selector") or {}, {NAMESPACE_NAME: namespace})
    return False  # None


def admits_kind(listener: Mapping[str, Any], kind: str) -> bool:
    kinds = (listener.get("allowedRoutes") or {}).get("kinds")
    if kinds:
        return any(k.get("kind") == kind for k in kinds)
    return listener["protocol"] in ("HTTPS", "HTTP") and kind in HTTPS_KINDS


def accepting_listeners(gateway: Mapping[str, Any], route: Route) -> list[dict]:
    """The listeners the route attaches to."""
    namespace = gateway["metadata"]["namespace"]
    return [
        listener
        for listener in gateway["spec"]["listeners"]
        if admits_kind(listener, route.kind)
        and admits_namespace(listener, namespace, route.namespace)
        and (not route.hostnames or any(intersect(listener.get("hostname"), h) for h in route.hostnames))
    ]


def _specificity(hostname: str | None) -> tuple[int, int]:
    if hostname is None:
        return (0, 0)
    return (1, len(hostname)) if hostname.startswith("*.") else (2, len(hostname))


def listener_for(gateway: Mapping[str, Any], host: str) -> dict | None:
    """The listener a request for `host` reaches: the most specific hostname that matches it."""
    candidates = [
        lst for lst in gateway["spec"]["listeners"] if lst.get("hostname") is None or _matches(lst["hostname"], host)
    ]
    return max(candidates, key=lambda lst: _specificity(lst.get("hostname")), default=None)


def serving(gateway: Mapping[str, Any], routes: Iterable[Route], host: str) -> list[Route]:
    """The routes that answer a request for `host`: attached to the listener it reaches, with a
    hostname that matches it."""
    listener = listener_for(gateway, host)
    if listener is None:
        return []
    return [
        route
        for route in routes
        if listener in accepting_listeners(gateway, route)
        and (not route.hostnames or any(_matches(h, host) for h in route.hostnames))
    ]
