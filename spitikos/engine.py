"""Runs the Pulumi program under mocks and records what it registers: no CLI, no network.

Used by the tests and by `python -m spitikos plan`. Plain `pulumi.runtime.Mocks` hide two
things the engine does, so this engine does them itself:
- it marks a resource's `additionalSecretOutputs` secret in the state it returns,
  as the engine does (e.g. `RandomPassword.result`), so secrecy tests mean something;
- it keeps the whole registration: parent, dependencies, provider, protect,
  ignoreChanges, import id, and inputs with their secret markers intact.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import runpy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pulumi
from google.protobuf import struct_pb2
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import resource as pulumi_resource
from pulumi.runtime import rpc
from pulumi.runtime.proto import source_pb2
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

from spitikos import lazy_sdk
from spitikos.failfast import failing_fast

lazy_sdk.install()  # before any component imports a provider SDK
# For the CLI's messages the SDK sends, with each registration, where in the program it was made: a
# walk of the call stack and a file URI per frame, a tenth of every offline run. The mocks drop it.
if hasattr(pulumi_resource, "_get_stack_trace"):
    pulumi_resource._get_stack_trace = source_pb2.StackTrace  # an empty trace: no source position

STACK = "pi5"
PROJECT = "spitikos"

KUBECONFIG_TEMPLATE = """apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: bW9jay1jYQ==
    server: https://127.0.0.1:6443
  name: default
contexts:
- context: {cluster: default, user: default}
  name: default
current-context: default
users:
- name: default
  user:
    client-certificate-data: bW9jay1jZXJ0
    client-key-data: TU9DSy1DTElFTlQtS0VZ
"""
MOCK_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMockHostKeyOfTheNode0000000000000000000"
MOCK_TUNNEL_TOKEN = "eyJhIjoibW9jay10dW5uZWwtdG9rZW4ifQ"
# Provider outputs a reviewer of the offline plan might take for real ones say what they are.
MOCK_TUNNEL_ID = "placeholder-tunnel-id"
MOCK_TEAM = "spitikos-mock"


def mock_zone_id(zone: str) -> str:
    """The id the mocked zone lookup returns for a zone name: 32 hex characters, like Cloudflare's."""
    return hashlib.sha256(f"zone/{zone}".encode()).hexdigest()[:32]


def mock_permission_group_id(name: str) -> str:
    """The id the mocked permission group lookup returns for a group's name (32 hex characters)."""
    return hashlib.sha256(f"permission-group/{name}".encode()).hexdigest()[:32]


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig


def plain(value: Any) -> Any:
    """The value with every secret marker removed."""
    if is_secret(value):
        return plain(value["value"])
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def exposed_strings(value: Any) -> Iterable[str]:
    """Every string in `value` that is not inside a secret."""
    if is_secret(value):
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from exposed_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from exposed_strings(v)


def deserialize_keeping_secrets(value: Any) -> Any:
    """A registration's inputs as the engine keeps them: each secret marked where it is.

    The SDK's own `rpc.deserialize_properties` (for resource outputs) pushes a nested secret's
    marker up to the top-level property, so a chart's values with one password inside would be all
    secret, and the plan could show none of it. The wire format carries the marker on the leaf:
    keep it there. Assets, resource references and output values go through the SDK as before.
    """
    if isinstance(value, struct_pb2.Struct):
        if rpc._special_sig_key in value:
            if value[rpc._special_sig_key] == rpc._special_secret_sig:
                return rpc.wrap_rpc_secret(deserialize_keeping_secrets(value["value"]))
            return rpc.deserialize_properties(value)
        fields = {k: deserialize_keeping_secrets(v) for k, v in value.items()}
        return {k: v for k, v in fields.items() if v is not None}  # as the SDK: a None is no property
    if isinstance(value, struct_pb2.ListValue):
        return [deserialize_keeping_secrets(v) for v in value]
    return rpc.deserialize_property(value)


def whole_numbers_as_int(value: Any) -> Any:
    """`value` with every integral float as an int.

    The wire format carries every number as a double, so a program's `replicas: 2` arrives
    here as 2.0. A real provider gets JSON, where 2.0 and 2 are one number; a YAML manifest
    written from 2.0 is not (kubectl refuses `replicas: 2.0` and `containerPort: 6379.0`).
    """
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: whole_numbers_as_int(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole_numbers_as_int(v) for v in value]
    return value


def _fake(name: str, what: str) -> str:
    return hashlib.sha256(f"{name}/{what}".encode()).hexdigest()[:24]


@dataclass
class Registration:
    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    inputs: dict
    dependencies: set[str]
    property_dependencies: dict[str, set[str]]
    provider: str
    protect: bool
    ignore_changes: list[str]
    retain_on_delete: bool
    import_id: str
    additional_secret_outputs: list[str]
    state: dict = field(default_factory=dict)
    providers: dict[str, str] = field(default_factory=dict)
    """A component's providers by package, as references; its children inherit them."""
    aliases: list[str] = field(default_factory=list)
    """Earlier types or names this resource was registered under (URNs, or `type`/`name` specs)."""

    @functools.cached_property
    def values(self) -> dict:
        """Inputs with secret markers removed (made once: read, never change it)."""
        return plain(self.inputs)

    def input_is_secret(self, key: str, *path: str) -> bool:
        """Whether the input (or the leaf at `path` inside it) is marked secret, itself or by a
        container it is in."""
        value = self.inputs.get(key)
        for step in path:
            if is_secret(value):
                return True
            value = value.get(step) if isinstance(value, dict) else None
        return is_secret(value)

    @property
    def waits_for(self) -> set[str]:
        """What this resource waits for on a real `pulumi up`, directly.

        The SDK sends a registration only once the URNs (and provider ids) it names have resolved,
        and on a real run a resource's URN resolves when the engine has created it
        (`pulumi.runtime.resource.prepare_resource`, `_create_provider_ref`). So it waits for:
        - its dependencies: `depends_on` and the resources its inputs come from. A `depends_on`
          naming a local component arrives already expanded by the SDK into that component's
          custom descendants (`pulumi.runtime.rpc._add_dependency`);
        - its provider, and a component's `providers`;
        - its parent: a child awaits its parent's URN, which a component gets only after its own
          waits. The SDK does not copy a parent's `depends_on` to its children, but through this
          edge every child waits for whatever its ancestors wait for.
        """
        deps = self.dependencies | set().union(*self.property_dependencies.values())
        for ref in (self.provider, *self.providers.values()):
            if ref:  # "<provider urn>::<provider id>"
                deps.add(ref.rsplit("::", 1)[0])
        if self.parent:
            deps.add(self.parent)
        return deps


@dataclass(frozen=True)
class Invoke:
    """A provider function the program called (a data source): its arguments and provider."""

    token: str
    args: dict
    provider: str


class PlatformMocks(pulumi.runtime.Mocks):
    """Placeholder outputs in the shape a real provider returns, made up deterministically from the name."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        state = dict(args.inputs)
        typ, name = args.typ, args.name
        if typ == "command:local:Command" and name.endswith("-host-key"):
            state["stdout"] = f"[{name}]:22 {MOCK_HOST_KEY}\n"  # as ssh-keyscan prints it
            state["stderr"] = ""
        elif typ == "command:remote:Command":
            if name.endswith("-kubeconfig"):
                state["stdout"] = KUBECONFIG_TEMPLATE
            elif name.endswith("-server-token"):  # k3s's full token: K10<CA hash>::server:<password>
                state["stdout"] = f"K10{_fake(name, 'ca') * 2}::server:{_fake(name, 'password')}\n"
            else:
                state["stdout"] = "ok"
            state["stderr"] = ""
        elif typ == "random:index/randomPassword:RandomPassword":
            state["result"] = f"mock-password-{_fake(name, 'result')}"
            state["bcryptHash"] = f"$2a$10${_fake(name, 'bcrypt')}"
        elif typ == "cloudflare:index/zeroTrustAccessApplication:ZeroTrustAccessApplication":
            state["aud"] = f"placeholder-aud-{_fake(name, 'aud')[:16]}"
        elif typ == "random:index/randomUuid:RandomUuid":
            digest = _fake(name, "uuid") + "00000000"
            state["result"] = f"{digest[:8]}-{digest[8:12]}-4{digest[13:16]}-8{digest[17:20]}-{digest[20:32]}"
        elif typ == "random:index/randomBytes:RandomBytes":
            raw = hashlib.sha256(name.encode()).digest()
            state["base64"] = base64.b64encode(raw).decode()
            state["hex"] = raw.hex()
        elif typ == "tls:index/privateKey:PrivateKey":
            state["privateKeyOpenssh"] = (
                f"-----BEGIN OPENSSH PRIVATE KEY-----\nmock{_fake(name, 'key')}\n-----END OPENSSH PRIVATE KEY-----\n"
            )
            state["privateKeyPem"] = f"-----BEGIN PRIVATE KEY-----\nmock{_fake(name, 'pem')}\n-----END PRIVATE KEY-----"
            state["publicKeyOpenssh"] = f"ssh-ed25519 AAAAC3Nz{_fake(name, 'pub')}\n"
        elif typ == "cloudflare:index/zeroTrustTunnelCloudflared:ZeroTrustTunnelCloudflared":
            return MOCK_TUNNEL_ID, {**state, "id": MOCK_TUNNEL_ID}
        elif typ == "cloudflare:index/accountToken:AccountToken":
            # The provider returns the token's value once, at creation; its SDK lists it in
            # additionalSecretOutputs, which the monitor below applies.
            token_id = (_fake(name, "token-id") * 2)[:32]
            return token_id, {**state, "id": token_id, "value": f"mock-cloudflare-token-{_fake(name, 'value')}"}
        elif typ == "cloudflare:index/zeroTrustAccessServiceToken:ZeroTrustAccessServiceToken":
            # Cloudflare returns the client secret once, at creation (or rotation); its SDK lists it
            # in additionalSecretOutputs. The id is a UUID; the client id ends in `.access`.
            digest = _fake(name, "service-token") + "00000000"
            token_id = f"{digest[:8]}-{digest[8:12]}-4{digest[13:16]}-8{digest[17:20]}-{digest[20:32]}"
            return token_id, {
                **state,
                "id": token_id,
                "clientId": f"{_fake(name, 'client-id')}.access",
                "clientSecret": f"mock-client-secret-{_fake(name, 'client-secret')}",
            }
        elif typ == "kubernetes:helm.sh/v3:Release":
            state["status"] = {"name": args.inputs.get("name", name), "namespace": args.inputs.get("namespace")}
        elif typ == "github:index/repository:Repository":
            owner = "spitikos"
            repo = args.inputs.get("name", name)
            state.update(
                fullName=f"{owner}/{repo}",
                sshCloneUrl=f"git@github.com:{owner}/{repo}.git",
                htmlUrl=f"https://github.com/{owner}/{repo}",
                nodeId=f"R_{_fake(name, 'node')}",
            )
        return f"{name}-id", state

    def __init__(self) -> None:
        self.invokes: list[Invoke] = []

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        self.invokes.append(Invoke(args.token, dict(args.args), args.provider))
        if args.token == "cloudflare:index/getZeroTrustTunnelCloudflaredToken:getZeroTrustTunnelCloudflaredToken":
            return {
                "token": MOCK_TUNNEL_TOKEN,
                "accountId": args.args.get("accountId"),
                "tunnelId": args.args.get("tunnelId"),
            }, []
        if args.token == "cloudflare:index/getZone:getZone":
            zone = args.args["filter"]["name"]
            return {"id": mock_zone_id(zone), "name": zone, "filter": args.args["filter"]}, []
        if args.token == "cloudflare:index/getZeroTrustOrganization:getZeroTrustOrganization":
            return {"accountId": args.args.get("accountId"), "authDomain": f"{MOCK_TEAM}.cloudflareaccess.com"}, []
        if args.token == "cloudflare:index/getAccountApiTokenPermissionGroups:getAccountApiTokenPermissionGroups":
            name = unquote(args.args["name"])
            group = {
                "id": mock_permission_group_id(name),
                "name": name,
                "category": "developer_platform",
                "isSelectable": True,
                "scopes": ["com.cloudflare.edge.r2.bucket"],
            }
            return {"accountId": args.args.get("accountId"), "name": args.args["name"], "permissionGroups": [group]}, []
        return {}, [("token", f"no mock for {args.token}")]


class EngineMonitor(pulumi_mocks.MockMonitor):
    """A mock monitor that records whole registrations and applies additionalSecretOutputs."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.registrations: dict[str, Registration] = {}

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - the gRPC method name
        if request.type == "pulumi:pulumi:Stack":
            return super().RegisterResource(request)
        _ensure_event_loop()
        urn = self.make_urn(request.parent, request.type, request.name)
        inputs = whole_numbers_as_int(deserialize_keeping_secrets(request.object))
        id_, state = self.mocks.new_resource(
            pulumi.runtime.MockResourceArgs(
                typ=request.type,
                name=request.name,
                inputs=inputs,
                provider=request.provider,
                resource_id=request.importId,
                custom=request.custom or False,
            )
        )
        # What the engine does for the provider's `additionalSecretOutputs`.
        for key in request.additionalSecretOutputs:
            if key in state and not is_secret(state[key]):
                state[key] = rpc.wrap_rpc_secret(state[key])
        obj_proto = _sync_await(rpc.serialize_properties(state, {}))
        self.resources[urn] = pulumi_mocks.MockMonitor.ResourceRegistration(urn, id_ or "", state)
        self.registrations[urn] = Registration(
            urn=urn,
            type=request.type,
            name=request.name,
            parent=request.parent,
            custom=bool(request.custom),
            inputs=inputs,
            dependencies=set(request.dependencies),
            property_dependencies={k: set(v.urns) for k, v in request.propertyDependencies.items()},
            provider=request.provider,
            protect=bool(request.protect),
            ignore_changes=list(request.ignoreChanges),
            retain_on_delete=bool(request.retainOnDelete),
            import_id=request.importId,
            additional_secret_outputs=list(request.additionalSecretOutputs),
            state=state,
            providers=dict(request.providers),
            aliases=[*request.aliasURNs, *(a.urn or f"{a.spec.type}/{a.spec.name}" for a in request.aliases)],
        )
        from pulumi.runtime.proto import resource_pb2

        return resource_pb2.RegisterResourceResponse(urn=urn, id=id_ or "", object=obj_proto)


@dataclass
class Recording:
    """What a program registered, and what it returned and exported."""

    registrations: dict[str, Registration]
    exports: dict[str, tuple[Any, bool]]
    result: Any = None
    invokes: list[Invoke] = field(default_factory=list)

    def all(self) -> list[Registration]:
        return list(self.registrations.values())

    def of_type(self, typ: str) -> list[Registration]:
        return [r for r in self.registrations.values() if r.type == typ]

    def one(self, typ: str, name: str | None = None, suffix: str | None = None) -> Registration:
        found = [
            r
            for r in self.of_type(typ)
            if (name is None or r.name == name) and (suffix is None or r.name.endswith(suffix))
        ]
        assert len(found) == 1, f"expected one {typ} {name or suffix or ''}, found {[r.name for r in found]}"
        return found[0]

    def kubernetes(self, kind: str) -> list[Registration]:
        """The objects of `kind` the program writes: those it creates and those it patches (`<kind>Patch`)."""
        return [
            r
            for r in self.registrations.values()
            if r.type.startswith("kubernetes:") and r.type.endswith((f":{kind}", f":{kind}Patch"))
        ]

    def by_name(self, name: str) -> Registration:
        found = [r for r in self.registrations.values() if r.name == name]
        assert len(found) == 1, f"expected one resource named {name}, found {len(found)}"
        return found[0]

    def ancestors_closure(self, urn: str) -> set[str]:
        """Every resource `urn` waits for on a real `pulumi up`, directly or through others
        (its parents' waits included: see `Registration.waits_for`)."""
        seen: set[str] = set()
        todo = [urn]
        while todo:
            current = self.registrations.get(todo.pop())
            if current is None:
                continue
            for dep in current.waits_for:
                # The stack itself is not recorded: it waits for nothing.
                if dep not in seen and dep in self.registrations:
                    seen.add(dep)
                    todo.append(dep)
        return seen

    def generated_secrets(self, min_length: int = 9) -> list[str]:
        """Every string a provider returned as a secret output (passwords, keys, tokens)."""
        found = []
        for reg in self.registrations.values():
            for key in reg.additional_secret_outputs:
                value = plain(reg.state.get(key))
                if isinstance(value, str) and len(value.strip()) >= min_length:
                    found.append(value.strip())
        return found

    def children(self, parent_urn: str) -> list[Registration]:
        return [r for r in self.registrations.values() if r.parent == parent_urn]


def _resolve(output: Any) -> tuple[Any, bool]:
    if not isinstance(output, pulumi.Output):
        return output, False
    value = _sync_await(output.future())
    return value, bool(_sync_await(output.is_secret()))


def run(
    program: Callable[[], Any],
    config: dict[str, str] | None = None,
    secret_keys: Iterable[str] = (),
    preview: bool = False,
) -> Recording:
    """Runs `program` under fresh mocks and config; returns everything it registered."""
    mocks = PlatformMocks()
    monitor = EngineMonitor(mocks)
    # A new root Stack resource per run: set_mocks keeps the one it finds, and with it every
    # earlier run's exports.
    pulumi.runtime.settings.reset_options(project=PROJECT, stack=STACK)
    pulumi.runtime.set_mocks(monitor.mocks, project=PROJECT, stack=STACK, preview=preview, monitor=monitor)
    pulumi.runtime.set_all_config(dict(config or {}), list(secret_keys))
    holder: dict[str, Any] = {}

    @pulumi.runtime.test
    def body() -> Any:
        # A program that raises must fail now, not hang in the SDK's wait (spitikos/failfast.py).
        with failing_fast():
            holder["result"] = program()
        return None

    body()
    root = pulumi.runtime.settings.get_root_resource()
    exports = {k: _resolve(v) for k, v in getattr(root, "outputs", {}).items()}
    return Recording(monitor.registrations, exports, holder.get("result"), mocks.invokes)


def run_file(path: Path, config: dict[str, str], secret_keys: Iterable[str]) -> Recording:
    """Runs a Pulumi program file (the stack's `__main__.py`) as the CLI would, under mocks."""
    return run(lambda: runpy.run_path(str(path)), config, secret_keys)


def resolve(output: Any) -> tuple[Any, bool]:
    """(value, is_secret) of an Output produced by the last `run`."""
    return _resolve(output)
