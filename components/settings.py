"""The stack's settings: the one place that reads `pulumi.Config`.

`load_settings` reads every key, validates all of them, and either returns a typed,
frozen `Settings` or raises `SettingsError` listing every problem, each naming its
key. It runs before any resource exists, so bad input never half-builds a platform.

Secrets are wrapped in `pulumi.Output.secret` the moment they are read; their
plaintext is only looked at for presence and shape, and never printed.
"""

from __future__ import annotations

import collections
import difflib
import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi

from components import namespaces, versions
from components.footprint import memory_mi

NAMESPACE = "spitikos"

# Repository roles the GitOps loop needs; more repositories may be listed.
CENTRAL_REPOSITORY = "spitikos"
API_REPOSITORY = "api"
DOCS_REPOSITORY = "docs"
CHARTS_REPOSITORY = "charts"
REQUIRED_REPOSITORIES = (CENTRAL_REPOSITORY, API_REPOSITORY, DOCS_REPOSITORY, CHARTS_REPOSITORY)
# The seed's layout: plain Application manifests in the central repository.
DEFAULT_ROOT_PATH = "argocd/apps"

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN_RE = re.compile(rf"(?:{_LABEL}\.)+[a-z]{{2,63}}")
_HOSTNAME_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_K3S_VERSION_RE = re.compile(r"v1\.(\d+)\.(\d+)\+k3s(\d+)")
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_CLOUDFLARE_ID_RE = re.compile(r"[0-9a-f]{32}")
_GITHUB_NAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})")
_REPOSITORY_RE = re.compile(r"[A-Za-z0-9._-]{1,100}")
_LINUX_USER_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_HOST_KEY_RE = re.compile(r"(?:(\S+) )?((?:ssh-ed25519|ecdsa-sha2-nistp\d+|ssh-rsa) [A-Za-z0-9+/]+={0,3})(?: \S*)?")
_AGENT_KEY_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")
_GIT_PATH_RE = re.compile(r"[A-Za-z0-9._/-]+")
_GIT_REF_RE = re.compile(r"[A-Za-z0-9._/+-]+")
# `ClusterRoleBinding/<name>` or `RoleBinding/<namespace>/<name>`; RBAC names may hold `:`.
_RBAC_NAME = r"[a-z0-9](?:[-a-z0-9.:]{0,251}[a-z0-9])?"
_NAMESPACE = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_NAMESPACE_RE = re.compile(_NAMESPACE)
_ADMIN_BINDING_RE = re.compile(rf"ClusterRoleBinding/{_RBAC_NAME}|RoleBinding/{_NAMESPACE}/{_RBAC_NAME}")
_RBAC_NAME_RE = re.compile(_RBAC_NAME)


class SettingsError(pulumi.RunError):
    """Raised with every invalid setting listed; shown to the operator without a traceback."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        listed = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"the stack's settings are invalid:\n{listed}")


@dataclass(frozen=True)
class NodeSettings:
    """How to reach one machine over SSH."""

    host: str
    user: str
    port: int
    host_key: str | None
    key: str = "server"
    """A stable name for the node, which its resources are named after: renaming the host keeps it."""


@dataclass(frozen=True)
class CloudflareSettings:
    account_id: str
    api_token: pulumi.Output[str]


@dataclass(frozen=True)
class GitHubSettings:
    owner: str
    token: pulumi.Output[str]
    repositories: tuple[str, ...]
    adopt_existing: bool
    visibility: str
    required_reviews: int
    release_token: pulumi.Output[str]

    @property
    def application_repositories(self) -> tuple[str, ...]:
        """Repositories that ship an image with the release workflow (api and any extras)."""
        infra = {CENTRAL_REPOSITORY, DOCS_REPOSITORY, CHARTS_REPOSITORY}
        return tuple(r for r in self.repositories if r not in infra)


@dataclass(frozen=True)
class RootSource:
    """Where Argo CD's root Application (the app of apps) reads its manifests or chart."""

    repository: str
    path: str
    revision: str


@dataclass(frozen=True)
class Parts:
    """Which parts the stack builds: a k3s node over SSH or a cluster it is given, Cloudflare, GitHub."""

    kubeconfig: pulumi.Output[str] | None = None
    """An existing cluster's kubeconfig (secret): the stack builds on it and sets up no node."""
    cloudflare: bool = True
    github: bool = True
    root_repository_url: str | None = None
    """Without GitHub: the Git URL (https, public) the root Application reads."""
    app_repository_urls: tuple[str, ...] = ()
    """More Git URLs (Argo CD `sourceRepos` patterns) the applications may come from."""

    @property
    def existing_cluster(self) -> bool:
        return self.kubeconfig is not None

    def skipped(self) -> list[str]:
        """What this stack does not build, for the plan."""
        return [
            *(["the node bootstrap (k3s over SSH): `kubeconfig` names the cluster"] if self.existing_cluster else []),
            *([] if self.cloudflare else ["Cloudflare (tunnel, DNS, Access, cloudflared): `cloudflare: false`"]),
            *([] if self.github else ["GitHub (repositories, deploy keys, webhooks, secrets): `github: false`"]),
        ]


@dataclass(frozen=True)
class BackupSettings:
    """Backups to an R2 bucket the stack creates, the cluster's datastore, and its servers."""

    bucket: str = ""
    """The R2 bucket's name; "" turns backups off."""
    datastore: str = "sqlite"
    """`sqlite` (k3s's default) or `etcd` (embedded, `--cluster-init`; snapshots to the bucket)."""
    servers: tuple[NodeSettings, ...] = ()
    """The servers that join nodeHost's (0 or 2 of them; etcd only)."""
    volumes: tuple[str, ...] = ()
    """PersistentVolumeClaims backed up to the bucket, each `<namespace>/<claim>`."""

    @property
    def etcd(self) -> bool:
        return self.datastore == "etcd"


@dataclass(frozen=True)
class CiSettings:
    """CI's Access service tokens, which exist when both sshHostname and kubeApiHostname are set."""

    enabled: bool = False
    repository: str = ""
    """The repository whose workflows deploy the stack (this one, in githubOwner); "" writes no secret."""
    token_rotated_at: str = ""
    """A UTC time; a later one rotates the tokens' secrets (docs/operations.md)."""


@dataclass(frozen=True)
class Settings:
    domain: str
    zones: tuple[str, ...]
    server: NodeSettings
    agents: tuple[NodeSettings, ...]
    ssh_private_key: pulumi.Output[str]
    k3s_version: str
    uninstall_on_destroy: bool
    kubeconfig_renewal: str
    hostnames: tuple[str, ...]
    api_hostname: str
    argocd_hostname: str
    protected_hostnames: tuple[str, ...]
    ssh_hostname: str | None
    kube_api_hostname: str | None
    access_emails: tuple[str, ...]
    cloudflare: CloudflareSettings
    github: GitHubSettings
    root: RootSource
    argocd_admin_password_rotated_at: str
    allowed_admin_bindings: tuple[tuple[str, str], ...]
    """(binding, ClusterRole) pairs the applications may make to admin roles, the binding as
    `ClusterRoleBinding/<name>` or `RoleBinding/<namespace>/<name>`: the deployers that reach the
    cluster get `bind` on those roles alone, and components/guard.py refuses any other binding to
    an admin role."""
    privileged_namespaces: tuple[str, ...]
    """Namespaces Argo CD may label Pod Security `privileged` (components/guard.py)."""
    app_namespaces: tuple[tuple[str, str], ...] = ((namespaces.API, ""),)
    """(namespace, reach): where Argo CD's applications may deploy, each applied as a deployer of
    its own whose rights stop at that namespace, and reach further only as `reach` says: `cluster`
    (the cluster-scoped objects its charts install), `operator` (that, and in every namespace what
    its charts' operators hold); components/deployers.py."""
    route_namespaces: tuple[tuple[str, str], ...] = ()
    """(hostname, namespace): the one namespace whose routes the Gateway attaches for the hostname
    (`routeNamespaces`, with Argo CD's and the api's hostnames added); components/gateway.py."""
    scale_from_zero_namespaces: tuple[str, ...] = ()
    """Application namespaces whose routes may go through KEDA's HTTP interceptor, which holds a
    request while the application scales from zero (components/keda_http.py)."""
    node_memory_mi: int = 4096
    """The server's memory in MiB (`nodeMemory`): what the plan sizes the applications' room against."""
    parts: Parts = Parts()
    backup: BackupSettings = BackupSettings()
    """Where backups go, what the cluster's datastore is, and how many servers run it."""
    ci: CiSettings = CiSettings()
    """How this repository's CI reaches the node: through sshHostname and kubeApiHostname (docs/decisions/0005)."""

    @property
    def kubernetes_minor(self) -> str:
        """`1.35` for `v1.35.5+k3s1`."""
        return versions.kubernetes_minor(self.k3s_version)


class _Reader:
    """Reads raw config values and collects problems instead of stopping at the first.

    It remembers every key it reads, so a key in the stack that nothing reads (a typo)
    can be reported at the end.
    """

    def __init__(self, config: pulumi.Config) -> None:
        self.config = config
        self.problems: list[str] = []
        self.read: set[str] = set()
        self.off: set[str] = set()
        """Keys of parts the stack switched off: what the usual checks say of them is moot, as each
        one set gets its own refusal instead (`_refuse_switched_off`)."""

    def key(self, name: str) -> str:
        return f"{NAMESPACE}:{name}"

    def fail(self, name: str, message: str) -> None:
        if name not in self.off:
            self.problems.append(f"{self.key(name)}: {message}")

    def raw(self, name: str) -> str | None:
        self.read.add(name)
        return self.config.get(name)

    def string(self, name: str, default: str | None = None, required: bool = False) -> str | None:
        value = self.raw(name)
        if value is None or value.strip() == "":
            if required:
                self.fail(name, "is required but not set")
            return default
        return value.strip()

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.raw(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.fail(name, f"{raw!r} is not a whole number")
            return default
        if not low <= value <= high:
            self.fail(name, f"{value} is out of range ({low} to {high})")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.raw(name)
        if raw is None:
            return default
        if raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        self.fail(name, f"{raw!r} is not true or false")
        return default

    def strings(self, name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        raw = self.raw(name)
        if raw is None:
            return default
        try:
            value: Any = json.loads(raw)
        except (json.JSONDecodeError, RecursionError):  # RecursionError: `[[[...]]]` nested past Python's stack
            self.fail(name, "is not a list (set it with `pulumi config set --path`, or as a YAML list)")
            return default
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(name, f"must be a list of strings (one `- item` a line), not {_yaml_kind(value)}")
            return default
        return tuple(v.strip() for v in value)

    def secret(self, name: str, check: Callable[[str], str | None] | None = None) -> pulumi.Output[str]:
        """A required secret, wrapped as a Pulumi secret at once; its value never appears in a message."""
        raw = self.raw(name)
        if raw is None or raw.strip() == "":
            self.fail(name, f"is required but not set: `pulumi config set --secret {name} ...`")
            return pulumi.Output.secret("")
        if not self.config_is_secret(name):
            self.fail(name, f"must be stored encrypted: `pulumi config set --secret {name} ...`")
        if check is not None and (problem := check(raw)) is not None:
            self.fail(name, problem)
        return pulumi.Output.secret(raw)

    def optional_secret(self, name: str, check: Callable[[str], str | None] | None = None) -> pulumi.Output[str] | None:
        """A secret that may be unset (None); when set, it must be encrypted and pass `check`."""
        raw = self.raw(name)
        if raw is None or raw.strip() == "":
            return None
        return self.secret(name, check)

    def config_is_secret(self, name: str) -> bool:
        from pulumi.runtime.config import is_config_secret

        return is_config_secret(self.key(name))

    def unknown_keys(self) -> None:
        """Every `spitikos:` key in the stack that no setting reads: a typo, or a setting that is gone."""
        prefix = f"{NAMESPACE}:"
        known = {k.lower(): k for k in self.read}
        for full in sorted(k for k in _stack_config_keys() if k.startswith(prefix)):
            name = full[len(prefix) :]
            if name in self.read:
                continue
            close = difflib.get_close_matches(name.lower(), list(known), n=1, cutoff=0.6)
            hint = f": did you mean {known[close[0]]!r}?" if close else ""
            self.problems.append(f"{full}: is not a setting of this stack{hint}")
        self.misspelt_namespaces()
        self.provider_keys()

    def misspelt_namespaces(self) -> None:
        """`spitkos:domain`, `Spitikos:domain`, `spitikos-infra:domain`: a key no setting reads, silently."""
        for full in sorted(_stack_config_keys()):
            namespace, _, name = full.partition(":")
            if namespace != NAMESPACE and _near_namespace(namespace):
                self.problems.append(
                    f"{full}: `{namespace}:` is not this project's namespace: write the key as `{NAMESPACE}:{name}`"
                )

    def provider_keys(self) -> None:
        """A provider's own key (`cloudflare:apiToken`) does nothing here, and may be a token in plain text.

        The program makes these providers itself from `spitikos:` settings (the kubeconfig from the
        node), and an explicit provider never reads the stack's `<package>:` keys.
        """
        for full in sorted(k for k in _stack_config_keys() if k.split(":", 1)[0] in PROVIDER_NAMESPACES):
            package = full.split(":", 1)[0]
            self.problems.append(
                f"{full}: is not read: the program makes its {package} provider from {PROVIDER_SETTING[package]}; "
                "remove it from the stack file (and revoke it if it is a token in plain text)"
            )


def _repeated(items: list) -> set:
    """The items listed more than once (in linear time: a list setting may be long)."""
    return {item for item, count in collections.Counter(items).items() if count > 1}


def _yaml_kind(value: Any) -> str:
    """What a stack file gave where a list of strings belongs, in YAML's words."""
    if isinstance(value, list):
        odd = next((v for v in value if not isinstance(v, str)), None)
        if odd is None or isinstance(odd, list):
            return "a list with an empty item: remove it" if odd is None else "a list of lists"
        return f"a list holding {_yaml_kind(odd)}: quote each item"
    kinds = [(type(None), "null (an empty value)"), (bool, "true or false"), ((int, float), "a number")]
    kinds += [(str, "one string: write it as a list of one"), (dict, "a map (`key: value`)")]
    return next((kind for types, kind in kinds if isinstance(value, types)), type(value).__name__)


# The packages whose providers the program makes itself (components/platform.py, k3s.py), and the
# setting each one takes its credentials from. `random`, `tls` and `command` use default providers,
# which hold no credentials; their keys are left alone.
PROVIDER_SETTING = {
    "cloudflare": "`spitikos:cloudflareApiToken`",
    "github": "`spitikos:githubOwner` and `spitikos:githubToken`",
    "kubernetes": "the kubeconfig it reads from the node",
}
PROVIDER_NAMESPACES = frozenset(PROVIDER_SETTING)


def _near_namespace(namespace: str) -> bool:
    """A namespace that is `spitikos` misspelt, in other case, or with more to it (the repository's name)."""
    lower = namespace.lower()
    return lower.startswith(NAMESPACE) or difflib.SequenceMatcher(None, lower, NAMESPACE).ratio() >= 0.75


def _stack_config_keys() -> set[str]:
    """Every config key the CLI handed the program (the stack file's and `--config` ones)."""
    from pulumi.runtime.config import CONFIG, get_config_env

    return set(CONFIG.get()) | set(get_config_env())


def is_domain(value: str) -> bool:
    return bool(_DOMAIN_RE.fullmatch(value))


def is_host(value: str) -> bool:
    """An IP address or a DNS hostname: nothing else (no `%zone`, no white space, no newline)."""
    try:
        ipaddress.ip_address(value)
        return "%" not in value
    except ValueError:
        return bool(_HOSTNAME_RE.fullmatch(value)) and not value.replace(".", "").isdigit()


def url_host(host: str) -> str:
    """A host as it stands in a URL: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host else host


def is_hostname_pattern(value: str) -> bool:
    """A hostname, or `*.` and a hostname: a wildcard stands for exactly one leftmost label."""
    return bool(_HOSTNAME_RE.fullmatch(value.removeprefix("*.")))


def zone_of(hostname: str, zones: tuple[str, ...]) -> str | None:
    """The most specific listed zone `hostname` (or wildcard) belongs to; DNS names compare without case."""
    name = hostname.lower().removeprefix("*.")
    matching = [z for z in zones if name == z.lower() or name.endswith("." + z.lower())]
    return max(matching, key=len) if matching else None


def covers(pattern: str, hostname: str) -> bool:
    """`*.a.b` covers `x.a.b` (one label), as DNS and the tunnel's wildcard rules do; case is ignored."""
    pattern, hostname = pattern.lower(), hostname.lower()
    if pattern.startswith("*."):
        head, _, rest = hostname.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == hostname


def _ssh_key_problem(value: str) -> str | None:
    text = value.strip()
    if not (text.startswith("-----BEGIN ") and "PRIVATE KEY-----" in text.splitlines()[0]):
        return "is not a PEM/OpenSSH private key (expected '-----BEGIN ... PRIVATE KEY-----')"
    if not text.rstrip().endswith("PRIVATE KEY-----"):
        return "is a truncated private key (no '-----END ... PRIVATE KEY-----' line)"
    return None


def _token_problem(value: str) -> str | None:
    if any(c.isspace() for c in value.strip()):
        return "contains white space; paste the token alone"
    if len(value.strip()) < 20:
        return "is too short to be an API token"
    return None


def host_key_line(value: str) -> str | None:
    """`ssh-ed25519 AAAA...` from that line or from the `HOST ssh-ed25519 AAAA...` ssh-keyscan prints."""
    match = _HOST_KEY_RE.fullmatch(value.strip())
    return match.group(2) if match else None


def _node(reader: _Reader, key: str, entry: str, user: str, port: int) -> NodeSettings | None:
    """`[name=][user@]host[:port] [host key]` from the `agents` list; the name defaults to the host's.
    Without a host key, the key the node shows on first contact is pinned."""
    # A host key follows the address after a space, and names its type (`ssh-ed25519 ...`).
    address, _, written_key = entry.partition(" ")
    host_key = None
    if re.search(r"\b(?:ssh|ecdsa)-", written_key):
        entry = address
        host_key = host_key_line(written_key)
        if host_key is None:
            reader.fail(key, f"{entry!r}: {written_key.strip()!r} is not an SSH host key like 'ssh-ed25519 AAAA...'")
            return None
    match = re.fullmatch(r"(?:([^=@]+)=)?(?:([^@]+)@)?([^:@\[\]]+|\[[0-9a-fA-F:.]+\])(?::(\d+))?", entry)
    bare_ipv6 = re.fullmatch(r"(?:([^=@]+)=)?(?:([^@]+)@)?([0-9a-fA-F:]+:[0-9a-fA-F:.]*)", entry)
    if bare_ipv6 and is_host(bare_ipv6.group(3)):
        name, entry_user, host, entry_port = (*bare_ipv6.groups(), None)
    elif match:
        name, entry_user, host, entry_port = match.groups()
    else:
        reader.fail(key, f"{entry!r} is not host, user@host, user@host:port or name=user@host:port ([v6]:port)")
        return None
    host = host.strip("[]")
    if not is_host(host):
        reader.fail(key, f"{host!r} is neither an IP address nor a hostname")
        return None
    if entry_user is not None and not _LINUX_USER_RE.fullmatch(entry_user):
        reader.fail(key, f"{entry_user!r} is not a valid user name")
        return None
    if entry_port is not None and not 1 <= int(entry_port) <= 65535:
        reader.fail(key, f"the port of {entry!r} is out of range (1 to 65535)")
        return None
    stable = name if name is not None else re.sub(r"[^a-z0-9]+", "-", host.lower()).strip("-")
    if not _AGENT_KEY_RE.fullmatch(stable):
        reader.fail(key, f"{stable!r} is not a node name (lower-case letters, digits and '-', at most 32)")
        return None
    return NodeSettings(host=host, user=entry_user or user, port=int(entry_port or port), host_key=host_key, key=stable)


def _nodes(r: _Reader) -> tuple[NodeSettings, tuple[NodeSettings, ...]]:
    host = r.string("nodeHost", required=True) or ""
    if host and not is_host(host):
        r.fail("nodeHost", f"{host!r} is neither an IP address nor a hostname")
    user = r.string("nodeUser", default="ubuntu") or "ubuntu"
    if not _LINUX_USER_RE.fullmatch(user):
        r.fail("nodeUser", f"{user!r} is not a valid Linux user name")
    port = r.integer("nodeSshPort", default=22, low=1, high=65535)
    host_key = r.string("nodeHostKey")
    if host_key is not None:
        host_key = host_key_line(host_key)
        if host_key is None:
            r.fail("nodeHostKey", "is not an SSH public host key line like 'ssh-ed25519 AAAA...'")
    server = NodeSettings(host=host, user=user, port=port, host_key=host_key)

    agents = tuple(node for entry in r.strings("agents") if (node := _node(r, "agents", entry, user, port)) is not None)
    agent_hosts = [a.host for a in agents]
    for dup in sorted(_repeated(agent_hosts) | ({host} & set(agent_hosts))):
        r.fail("agents", f"{dup!r} is listed twice (agents must differ from each other and from nodeHost)")
    agent_keys = [a.key for a in agents]
    for dup in sorted(_repeated(agent_keys) | ({"server"} & set(agent_keys))):
        r.fail("agents", f"the node name {dup!r} is used twice; give each agent its own `name=`")
    return server, agents


def _k3s_version(r: _Reader) -> str:
    k3s_version = r.string("k3sVersion", default=versions.K3S_VERSION) or versions.K3S_VERSION
    version_match = _K3S_VERSION_RE.fullmatch(k3s_version)
    if not version_match:
        r.fail("k3sVersion", f"{k3s_version!r} is not a k3s release tag like 'v1.35.5+k3s1'")
    elif int(version_match.group(1)) < 30:
        r.fail("k3sVersion", f"{k3s_version!r} is older than v1.30, which this stack does not support")
    return k3s_version


def _zones(r: _Reader) -> tuple[str, tuple[str, ...]]:
    domain = (r.string("domain", required=True) or "").lower()
    if domain and not is_domain(domain):
        r.fail("domain", f"{domain!r} is not a domain name like 'example.com'")
        domain = ""
    zones = tuple(z.lower() for z in r.strings("zones")) or ((domain,) if domain else ())
    for zone in zones:
        if not is_domain(zone):
            r.fail("zones", f"{zone!r} is not a domain name like 'example.com'")
    if domain and domain not in zones:
        r.fail("zones", f"must include the domain {domain!r}")
    for dup in sorted(_repeated(zones)):
        r.fail("zones", f"{dup!r} is listed twice")
    return domain, tuple(z for z in zones if is_domain(z))


@dataclass(frozen=True)
class _Hostnames:
    public: tuple[str, ...]
    api: str
    argocd: str
    protected: tuple[str, ...]
    ssh: str | None
    kube_api: str | None


def _hostnames(r: _Reader, domain: str, zones: tuple[str, ...]) -> _Hostnames:
    public = tuple(h.lower() for h in r.strings("hostnames"))
    if not public:
        r.fail("hostnames", "is required: the public hostnames, at least Argo CD's and the api's")
    api = (r.string("apiHostname") or (f"api.{domain}" if domain else "")).lower()
    argocd = (r.string("argocdHostname") or (f"argocd.{domain}" if domain else "")).lower()
    ssh = (r.string("sshHostname") or "").lower() or None
    kube_api = (r.string("kubeApiHostname") or "").lower() or None
    protected = tuple(h.lower() for h in r.strings("protectedHostnames"))

    named = [("hostnames", h) for h in public]
    named += [(k, h) for k, h in (("sshHostname", ssh), ("kubeApiHostname", kube_api)) if h]
    seen: set[str] = set()
    for key, name in named:
        if not is_hostname_pattern(name):
            r.fail(key, f"{name!r} is not a hostname")
        elif zones and zone_of(name, zones) is None:
            r.fail(key, f"{name!r} is in none of the zones {', '.join(zones)} (the `zones` setting)")
        if name in seen:
            r.fail(key, f"{name!r} is listed twice; each hostname gets exactly one route and one DNS record")
        seen.add(name)
    if zones and public:
        for key, needed in (("apiHostname", api), ("argocdHostname", argocd)):
            if needed and not any(covers(h, needed) for h in public):
                close = difflib.get_close_matches(needed, public, n=1, cutoff=0.6)
                hint = f" (is {close[0]!r} a typo of it?)" if close else ""
                r.fail("hostnames", f"must include {needed!r}, the `{key}`{hint}")
    for name in protected if public else ():  # with no `hostnames`, that one problem says it all
        if name not in public:
            r.fail("protectedHostnames", f"{name!r} is not one of `hostnames`")
    return _Hostnames(public, api, argocd, protected, ssh, kube_api)


MAX_LISTENERS = 64  # a Gateway's `spec.listeners` (Gateway API v1.5.1 CRD: maxItems 64)
ARGOCD_NAMESPACE = "argocd"  # components/argocd.py's NAMESPACE (settings import no component)
API_NAMESPACE = "api"  # components/platform.py's API_NAMESPACE


def _route_namespaces(r: _Reader, hosts: _Hostnames) -> tuple[tuple[str, str], ...]:
    """`routeNamespaces` (`<namespace>/<hostname>`), plus Argo CD's hostname for `argocd` and the
    api's for `api` unless listed: who may serve each hostname at the Gateway."""
    owners: dict[str, str] = {}
    entries = r.strings("routeNamespaces")
    # With no `hostnames`, that one problem says it all.
    for entry in entries if hosts.public else ():
        ns, slash, hostname = entry.partition("/")
        hostname = hostname.lower()
        if not (slash and _NAMESPACE_RE.fullmatch(ns) and is_hostname_pattern(hostname)):
            r.fail("routeNamespaces", f"{entry!r} is not '<namespace>/<hostname>'")
        elif hostname not in hosts.public:
            r.fail("routeNamespaces", f"{hostname!r} is not one of `hostnames`")
        elif hostname == hosts.argocd and ns != ARGOCD_NAMESPACE:
            r.fail(
                "routeNamespaces", f"{hostname!r} is Argo CD's (`argocdHostname`): only {ARGOCD_NAMESPACE!r} serves it"
            )
        elif hostname in owners:
            r.fail("routeNamespaces", f"{hostname!r} is listed twice: one namespace serves a hostname")
        else:
            owners[hostname] = ns
    # Argo CD's hostname always gets its listener (on a stack without Cloudflare too: kind's e2e);
    # the api's when the stack routes it.
    if hosts.argocd:
        owners.setdefault(hosts.argocd, ARGOCD_NAMESPACE)
    if hosts.api and any(covers(h, hosts.api) for h in hosts.public):
        owners.setdefault(hosts.api, API_NAMESPACE)
    if len({*hosts.public, *owners}) > MAX_LISTENERS:
        r.fail("hostnames", f"lists more than {MAX_LISTENERS}: the Gateway has one listener per hostname, at most 64")
    return tuple(sorted(owners.items()))


def _access_emails(r: _Reader, hosts: _Hostnames) -> tuple[str, ...]:
    emails = tuple(e.lower() for e in r.strings("accessEmails"))
    for email in emails:
        if not _EMAIL_RE.fullmatch(email):
            r.fail("accessEmails", f"{email!r} is not an email address")
    if (hosts.protected or hosts.ssh or hosts.kube_api) and not emails:
        r.fail(
            "accessEmails",
            "is required when protectedHostnames, sshHostname or kubeApiHostname is set: those hostnames "
            "are only ever published behind Cloudflare Access",
        )
    return emails


def _cloudflare(r: _Reader) -> CloudflareSettings:
    account_id = r.string("cloudflareAccountId", required=True) or ""
    if account_id and not _CLOUDFLARE_ID_RE.fullmatch(account_id):
        r.fail("cloudflareAccountId", "is not a Cloudflare account id (32 hexadecimal characters)")
    return CloudflareSettings(account_id=account_id, api_token=r.secret("cloudflareApiToken", _token_problem))


def _github(r: _Reader) -> GitHubSettings:
    owner = r.string("githubOwner", required=True) or ""
    if owner and not _GITHUB_NAME_RE.fullmatch(owner):
        r.fail("githubOwner", f"{owner!r} is not a GitHub user or organization name")
    repositories = r.strings("repositories", default=REQUIRED_REPOSITORIES)
    for repo in repositories:
        if not _REPOSITORY_RE.fullmatch(repo):
            r.fail("repositories", f"{repo!r} is not a GitHub repository name")
    for dup in sorted(_repeated(repositories)):
        r.fail("repositories", f"{dup!r} is listed twice")
    for needed in REQUIRED_REPOSITORIES:
        if needed not in repositories:
            r.fail("repositories", f"must include {needed!r}: the GitOps loop needs it")
    visibility = r.string("repositoryVisibility", default="public") or "public"
    if visibility not in ("public", "private"):
        r.fail("repositoryVisibility", f"{visibility!r} is not 'public' or 'private'")
    return GitHubSettings(
        owner=owner,
        token=r.secret("githubToken", _token_problem),
        repositories=repositories,
        adopt_existing=r.boolean("adoptExistingRepositories", default=False),
        visibility=visibility,
        required_reviews=r.integer("requiredReviews", default=0, low=0, high=6),
        release_token=r.secret("ghaPat", _token_problem),
    )


def _root(r: _Reader, repositories: tuple[str, ...], adopt_existing: bool, github: bool = True) -> RootSource:
    repository = r.string("rootRepository", default=CENTRAL_REPOSITORY) or CENTRAL_REPOSITORY
    if repository not in repositories:
        r.fail("rootRepository", f"{repository!r} is not one of `repositories`")
    path = (r.string("rootPath", default=DEFAULT_ROOT_PATH) or DEFAULT_ROOT_PATH).strip("/")
    if not _GIT_PATH_RE.fullmatch(path) or ".." in path.split("/"):
        r.fail("rootPath", f"{path!r} is not a folder path inside the repository")
    revision = r.string("rootRevision", default="main") or "main"
    if not _GIT_REF_RE.fullmatch(revision):
        r.fail("rootRevision", f"{revision!r} is not a branch, tag or commit")
    if github and not adopt_existing and (repository, path) != (CENTRAL_REPOSITORY, DEFAULT_ROOT_PATH):
        # Created repositories start empty but for the seed (argocd/apps in `spitikos`): the root
        # Application would find nothing to deploy, and stay empty without saying why.
        r.fail(
            "rootPath" if repository == CENTRAL_REPOSITORY else "rootRepository",
            f"{path!r} of {repository!r} will not exist: with adoptExistingRepositories false the repositories "
            f"are created empty, and only {DEFAULT_ROOT_PATH!r} of {CENTRAL_REPOSITORY!r} is seeded; "
            "use that (the defaults), or adopt repositories that hold it",
        )
    return RootSource(repository=repository, path=path, revision=revision)


# The preflight refuses a node with less (components/k3s.py), and no Pi 5 has more than 16 GB.
_NODE_MEMORY_RANGE_MI = (3 * 1024, 16 * 1024)


def _node_memory(r: _Reader) -> int:
    """`nodeMemory` in MiB: a Kubernetes quantity like `4Gi` or `8192Mi`."""
    raw = r.string("nodeMemory", default="4Gi") or "4Gi"
    try:
        value = round(memory_mi(raw))
    except ValueError:
        r.fail("nodeMemory", f"{raw!r} is not a memory quantity like '4Gi' or '8Gi'")
        return 4096
    low, high = _NODE_MEMORY_RANGE_MI
    if not low <= value <= high:
        r.fail("nodeMemory", f"{raw!r} is out of range (3Gi to 16Gi: a Raspberry Pi 5 the preflight accepts)")
    return value


def _rfc3339(r: _Reader, name: str) -> str:
    """`2026-12-01T09:30:00Z`, as `date -u +%FT%TZ` prints it; "" when unset."""
    value = r.string(name) or ""
    if value and not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", value):
        r.fail(name, f"{value!r} is not a UTC time like '2026-12-01T09:30:00Z' (`date -u +%FT%TZ`)")
        return ""
    return value


def _ci(r: _Reader, hosts: _Hostnames) -> CiSettings:
    """CI reaches the node through the tunnel only when both the SSH and the API hostnames exist."""
    enabled = hosts.ssh is not None and hosts.kube_api is not None
    repository = r.string("ciRepository") or ""
    if repository and not _REPOSITORY_RE.fullmatch(repository):
        r.fail("ciRepository", f"{repository!r} is not a GitHub repository name")
    rotated_at = _rfc3339(r, "ciTokenRotatedAt")
    for key, value in (("ciRepository", repository), ("ciTokenRotatedAt", rotated_at)):
        if value and not enabled:
            r.fail(
                key,
                "is set, but CI's Access service tokens exist only when both sshHostname and kubeApiHostname "
                "are set: CI reaches the node through those two (docs/decisions/0005)",
            )
    return CiSettings(enabled=enabled, repository=repository, token_rotated_at=rotated_at)


def _allowed_admin_bindings(r: _Reader) -> tuple[tuple[str, str], ...]:
    """`<binding>=<ClusterRole>` pairs: the binding's name alone would let a commit re-point it at
    any role (issue 24's fifth walk-around)."""
    entries = r.strings("allowedAdminBindings")
    pairs: list[tuple[str, str]] = []
    for entry in entries:
        binding, sep, role = entry.partition("=")
        if not sep and _ADMIN_BINDING_RE.fullmatch(binding):
            r.fail(
                "allowedAdminBindings",
                f"{entry!r} names no role: write '{binding}=<ClusterRole>', the role that binding may bind "
                "(the old form trusted the name whatever role it named)",
            )
        elif not _ADMIN_BINDING_RE.fullmatch(binding) or not _RBAC_NAME_RE.fullmatch(role):
            r.fail(
                "allowedAdminBindings",
                f"{entry!r} is not 'ClusterRoleBinding/<name>=<ClusterRole>' or "
                "'RoleBinding/<namespace>/<name>=<ClusterRole>'",
            )
        else:
            pairs.append((binding, role))
    for dup in sorted(_repeated([b for b, _ in pairs])):
        r.fail("allowedAdminBindings", f"{dup!r} is listed twice")
    return tuple(pairs)


def _scale_from_zero_namespaces(r: _Reader) -> tuple[str, ...]:
    key = "scaleFromZeroNamespaces"
    listed = r.strings(key)
    for ns in listed:
        if not _NAMESPACE_RE.fullmatch(ns):
            r.fail(key, f"{ns!r} is not a namespace name (lower-case letters, digits and '-')")
        elif namespaces.is_platform(ns):
            r.fail(key, f"{ns!r} is a namespace of the platform's: list application namespaces only")
    for dup in sorted(_repeated(listed)):
        r.fail(key, f"{dup!r} is listed twice")
    return tuple(n for n in listed if _NAMESPACE_RE.fullmatch(n) and not namespaces.is_platform(n))


APP_REACHES = ("cluster", "operator")


def _app_namespaces(r: _Reader) -> tuple[tuple[str, str], ...]:
    """`<namespace>` or `<namespace>=<reach>`: the namespaces the applications deploy to. The
    deployers are bound in each one, so each must be known before Argo CD creates it."""
    key = "appNamespaces"
    pairs: list[tuple[str, str]] = []
    for entry in r.strings(key, default=(namespaces.API,)):
        ns, sep, reach = entry.partition("=")
        if not entry:
            r.fail(key, "has an empty entry: remove it, or write '<namespace>' or '<namespace>=<reach>'")
        elif not _NAMESPACE_RE.fullmatch(ns):
            r.fail(
                key,
                f"{entry!r} is not '<namespace>' or '<namespace>=<reach>': a namespace name is 1 to 63 "
                "lower-case letters, digits and '-', not starting or ending with '-'",
            )
        elif namespaces.is_platform(ns):
            r.fail(key, f"{ns!r} is a namespace of the platform's: list application namespaces only")
        elif ns == KUBERNETES_DEFAULT_NAMESPACE:
            r.fail(
                key,
                "'default' holds the API server's own `kubernetes` Service: "
                "give the application a namespace of its own",
            )
        elif sep and reach not in APP_REACHES:
            r.fail(key, f"{entry!r}: the reach is 'cluster' or 'operator' (docs/settings.md), not {reach!r}")
        else:
            pairs.append((ns, reach))
    names = [ns for ns, _ in pairs]
    for dup in sorted(_repeated(names)):
        r.fail(key, f"{dup!r} is listed twice")
    if len(set(names)) > MAX_APP_NAMESPACES:
        r.fail(
            key,
            f"lists {len(set(names))} namespaces, more than {MAX_APP_NAMESPACES}: each is a namespace, a deployer "
            "and its bindings on one small cluster (and the plan grows with them); list the ones the root "
            "chart's Applications deploy to",
        )
    return tuple(pairs)


# A homelab's applications, with room: the organization has five. Past a few thousand, the plan
# alone took minutes; at a hundred it takes 0.4 s more than with five.
MAX_APP_NAMESPACES = 100


KUBERNETES_DEFAULT_NAMESPACE = "default"


def _app_namespaces_cover(r: _Reader, s: Settings) -> None:
    """Each namespace another setting names is one the applications deploy to: only there does a
    deployer write, so a route, a privileged label, a backup or an admin binding elsewhere would
    wait for objects no sync can make (or, in a platform namespace, give an app a door into it)."""
    reach = dict(s.app_namespaces)
    hint = "add it to `appNamespaces`, or name a namespace listed there"
    for hostname, ns in s.route_namespaces:
        if ns in reach or (hostname == s.argocd_hostname and ns == ARGOCD_NAMESPACE):
            continue
        if (hostname, ns) == (s.api_hostname, API_NAMESPACE):
            r.fail("appNamespaces", f"lacks {ns!r}, where the api's hostname {hostname!r} is routed: add {ns!r}")
        else:
            r.fail("routeNamespaces", f"'{ns}/{hostname}': {ns!r} is not one of `appNamespaces`: {hint}")
    lists = {
        "scaleFromZeroNamespaces": s.scale_from_zero_namespaces,
        "privilegedNamespaces": s.privileged_namespaces,
        # A claim in a platform namespace is refused as such already.
        "backupVolumes": tuple(v for v in s.backup.volumes if not namespaces.is_platform(v.partition("/")[0])),
    }
    for key, listed in lists.items():
        for item in listed:
            ns = item.partition("/")[0]
            if ns not in reach:
                named = f"{item!r}: {ns!r}" if item != ns else repr(ns)
                r.fail(key, f"{named} is not one of `appNamespaces`: {hint}")
    reaching = sorted(ns for ns, how in s.app_namespaces if how in APP_REACHES)
    for binding, role in s.allowed_admin_bindings:
        entry = f"{binding}={role}"
        kind, _, rest = binding.partition("/")
        ns = rest.partition("/")[0] if kind == "RoleBinding" else None
        if ns is not None and ns not in reach:
            r.fail("allowedAdminBindings", f"{entry!r}: {ns!r} is not one of `appNamespaces`: {hint}")
        elif ns is not None and ns not in reaching:
            r.fail(
                "allowedAdminBindings",
                f"{entry!r}: only a deployer that reaches the cluster holds `bind`: list {ns!r} as "
                f"'{ns}=cluster' in `appNamespaces`",
            )
        elif ns is None and not reaching:
            r.fail(
                "allowedAdminBindings",
                f"{entry!r}: no `appNamespaces` entry reaches the cluster, so no deployer may make it: "
                "add '=cluster' to the namespace whose chart makes it",
            )


def _privileged_namespaces(r: _Reader) -> tuple[str, ...]:
    namespaces = r.strings("privilegedNamespaces")
    for ns in namespaces:
        if not _NAMESPACE_RE.fullmatch(ns):
            r.fail("privilegedNamespaces", f"{ns!r} is not a namespace name (lower-case letters, digits and '-')")
    for dup in sorted(_repeated(namespaces)):
        r.fail("privilegedNamespaces", f"{dup!r} is listed twice")
    return tuple(n for n in namespaces if _NAMESPACE_RE.fullmatch(n))


# --- parts the stack may leave out: an existing cluster, no Cloudflare, no GitHub ------------------

# Each part's keys with Pulumi.yaml's default (the CLI hands the program the defaults): a key of a
# switched-off part that differs from it is refused, each in one line.
NODE_KEYS: dict[str, Any] = {
    "nodeHost": "",
    "nodeUser": "ubuntu",
    "nodeSshPort": 22,
    "nodeHostKey": "",
    "sshPrivateKey": "",
    "agents": [],
    "k3sVersion": "",
    "uninstallOnDestroy": False,
    "kubeconfigRenewal": "",
    "sshHostname": "",
    "ciTokenRotatedAt": "",
    # Routed to the node's API server, whose certificate names it (k3s `--tls-san`): no node, no route.
    "kubeApiHostname": "",
    # k3s's datastore and servers: the given cluster has its own.
    "datastore": "sqlite",
    "etcdOnSsd": False,
    "servers": [],
}
CLOUDFLARE_KEYS: dict[str, Any] = {
    "zones": [],
    "hostnames": [],
    "protectedHostnames": [],
    "sshHostname": "",
    "kubeApiHostname": "",
    "accessEmails": [],
    # CI's Access service tokens (components/tunnel.py).
    "ciTokenRotatedAt": "",
    "cloudflareAccountId": "",
    "cloudflareApiToken": "",
    # The backups' R2 bucket is Cloudflare's.
    "backupBucket": "",
    "backupVolumes": [],
    "routeNamespaces": [],
}
GITHUB_KEYS: dict[str, Any] = {
    "githubOwner": "",
    "githubToken": "",
    "ghaPat": "",
    "repositories": list(REQUIRED_REPOSITORIES),
    "rootRepository": CENTRAL_REPOSITORY,
    "adoptExistingRepositories": False,
    "repositoryVisibility": "public",
    "requiredReviews": 0,
    "ciRepository": "",
}
_WHY_OFF = {
    "node": "`kubeconfig` is set: the stack builds on that cluster and sets up no node",
    "cloudflare": "`cloudflare` is false: there is no tunnel, DNS or Access",
    "github": "`github` is false: the stack manages no GitHub repository (the root's Git URL is `rootRepositoryUrl`)",
}


_FIX_OFF = {
    "node": "remove it (`pulumi config rm {key}`), or remove `kubeconfig` to install k3s on a node",
    "cloudflare": "remove it (`pulumi config rm {key}`), or set `cloudflare` to true",
    "github": "remove it (`pulumi config rm {key}`), or set `github` to true",
}


def _kubeconfig_problem(value: str) -> str | None:
    """A kubeconfig the provider can use: clusters, users, and a current context among its contexts."""
    import yaml

    from components import bounded_yaml

    try:
        data = bounded_yaml.load(value)
    except bounded_yaml.YamlLimitError as error:
        return f"is not a kubeconfig: line {error.line}: {error}"
    except yaml.YAMLError:
        return "is not YAML (paste the whole kubeconfig file: `pulumi config set --secret kubeconfig < FILE`)"
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) and data[k] for k in _KUBECONFIG_LISTS):
        return "is not a kubeconfig (it needs `clusters`, `users` and `contexts`)"
    contexts = {c.get("name") for c in data["contexts"] if isinstance(c, dict)}
    if data.get("current-context") not in contexts:
        return "has no `current-context` among its `contexts`: the provider would not know which cluster to use"
    return None


_KUBECONFIG_LISTS = ("clusters", "users", "contexts")


def _git_url_problem(url: str) -> str | None:
    """A public https Git URL: no credentials in it (Argo CD reads it anonymously)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or any(c.isspace() for c in url):
        return f"{url!r} is not an https Git URL like 'https://github.com/OWNER/REPO.git'"
    if parts.username or parts.password:
        return "holds credentials; give a public repository's URL (nothing in config may carry a secret in plain text)"
    return None


def _parts(r: _Reader) -> Parts:
    kubeconfig = r.optional_secret("kubeconfig", _kubeconfig_problem)
    cloudflare = r.boolean("cloudflare", default=True)
    github = r.boolean("github", default=True)
    url = r.string("rootRepositoryUrl")
    if url is not None and (problem := _git_url_problem(url)) is not None:
        r.fail("rootRepositoryUrl", problem)
    if github and url is not None:
        r.fail("rootRepositoryUrl", "is for stacks with `github: false`; with GitHub, `rootRepository` names the root")
    if not github and url is None:
        r.fail("rootRepositoryUrl", "is required with `github: false`: the Git URL (https) of the root Application")
    app_urls = r.strings("appRepositoryUrls")
    for app_url in app_urls:
        if (problem := _git_url_problem(app_url.replace("*", "x"))) is not None:
            r.fail("appRepositoryUrls", problem)
    r.off = {
        *(NODE_KEYS if kubeconfig is not None else ()),
        *(() if cloudflare else CLOUDFLARE_KEYS),
        *(() if github else GITHUB_KEYS),
    }
    return Parts(kubeconfig, cloudflare, github, url, app_urls)


def _is_default(raw: str | None, default: Any) -> bool:
    """The value the CLI handed over is Pulumi.yaml's default (or unset)."""
    if raw is None or raw.strip() == "":
        return True
    try:
        return json.loads(raw) == default
    except (json.JSONDecodeError, RecursionError):
        return raw.strip() == default


def _refuse_switched_off(r: _Reader, parts: Parts) -> None:
    """One line for each key set for a part the stack does not build."""
    tables = [("node", NODE_KEYS, parts.existing_cluster), ("cloudflare", CLOUDFLARE_KEYS, not parts.cloudflare)]
    tables.append(("github", GITHUB_KEYS, not parts.github))
    refused: set[str] = set()
    for part, keys, off in tables:
        for key, default in keys.items():
            if off and key not in refused and not _is_default(r.config.get(key), default):
                r.problems.append(f"{r.key(key)}: is set, but {_WHY_OFF[part]}: {_FIX_OFF[part].format(key=key)}")
                refused.add(key)


_BUCKET_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{1,61})[a-z0-9]")
# `<namespace>/<claim>`: a namespace and a PersistentVolumeClaim name (DNS subdomain).
CLAIM_RE = re.compile(rf"({_NAMESPACE})/([a-z0-9](?:[-a-z0-9.]{{0,251}}[a-z0-9])?)")
DATASTORES = ("sqlite", "etcd")
SERVER_COUNTS = (1, 3)


def _backup(r: _Reader, server: NodeSettings, agents: tuple[NodeSettings, ...]) -> BackupSettings:
    """`backupBucket`, `datastore` (with `etcdOnSsd`), `servers` and `backupVolumes`."""
    bucket = r.string("backupBucket") or ""
    if bucket and not _BUCKET_RE.fullmatch(bucket):
        r.fail("backupBucket", f"{bucket!r} is not an R2 bucket name (3 to 63 lower-case letters, digits and '-')")
    datastore = r.string("datastore", default="sqlite") or "sqlite"
    if datastore not in DATASTORES:
        r.fail("datastore", f"{datastore!r} is not 'sqlite' or 'etcd'")
    on_ssd = r.boolean("etcdOnSsd", default=False)
    if datastore == "etcd" and not on_ssd:
        r.fail(
            "datastore",
            "etcd needs an SSD, not an SD card (k3s's requirement): set etcdOnSsd to true once "
            "every server boots from an SSD",
        )
    servers = _servers(r, server, agents, datastore)
    volumes = _backup_volumes(r, bucket)
    return BackupSettings(bucket=bucket, datastore=datastore, servers=servers, volumes=volumes)


def _servers(
    r: _Reader, server: NodeSettings, agents: tuple[NodeSettings, ...], datastore: str
) -> tuple[NodeSettings, ...]:
    entries = r.strings("servers")
    joining = tuple(n for e in entries if (n := _node(r, "servers", e, server.user, server.port)) is not None)
    total = 1 + len(entries)
    if total not in SERVER_COUNTS:
        r.fail(
            "servers",
            f"{total} servers in all (nodeHost and {len(entries)} listed) is not 1 or 3: "
            "etcd keeps quorum with an odd number",
        )
    elif total > 1 and datastore != "etcd":
        r.fail("servers", "more than one server needs `datastore: etcd` (SQLite lives on one node)")
    taken_hosts = {server.host, *(a.host for a in agents)}
    taken_keys = {"server", *(a.key for a in agents)}
    hosts = [n.host for n in joining]
    for dup in sorted(_repeated(hosts) | (set(hosts) & set(taken_hosts))):
        r.fail("servers", f"{dup!r} is listed twice (servers differ from each other, nodeHost and agents)")
    keys = [n.key for n in joining]
    for dup in sorted(_repeated(keys) | (set(keys) & set(taken_keys))):
        r.fail("servers", f"the node name {dup!r} is used twice; give each server its own `name=`")
    return joining


def _backup_volumes(r: _Reader, bucket: str) -> tuple[str, ...]:
    volumes = r.strings("backupVolumes")
    if volumes and not bucket:
        r.fail("backupVolumes", "needs `backupBucket`: the backups go there")
    for volume in volumes:
        match = CLAIM_RE.fullmatch(volume)
        if match is None:
            r.fail("backupVolumes", f"{volume!r} is not '<namespace>/<claim>'")
        elif namespaces.is_platform(match.group(1)):
            r.fail(
                "backupVolumes",
                f"{volume!r} is in the platform's namespace {match.group(1)!r}: list application volumes only",
            )
    for dup in sorted(_repeated(volumes)):
        r.fail("backupVolumes", f"{dup!r} is listed twice")
    return tuple(v for v in dict.fromkeys(volumes) if CLAIM_RE.fullmatch(v))


def load_settings(config: pulumi.Config | None = None) -> Settings:
    """Read and validate every setting; raise `SettingsError` naming each bad key."""
    r = _Reader(config or pulumi.Config(NAMESPACE))
    parts = _parts(r)
    domain, zones = _zones(r)
    server, agents = _nodes(r)
    k3s_version = _k3s_version(r)
    uninstall_on_destroy = r.boolean("uninstallOnDestroy", default=False)
    kubeconfig_renewal = r.string("kubeconfigRenewal", default="") or ""
    ssh_private_key = r.secret("sshPrivateKey", _ssh_key_problem)
    hosts = _hostnames(r, domain, zones)
    access_emails = _access_emails(r, hosts)
    route_namespaces = _route_namespaces(r, hosts)
    cloudflare = _cloudflare(r)
    github = _github(r)
    # Without GitHub the root is `rootRepositoryUrl`, a repository the stack does not create.
    root = _root(r, github.repositories, github.adopt_existing, parts.github)
    rotated_at = _rfc3339(r, "argocdAdminPasswordRotatedAt")
    allowed_admin_bindings = _allowed_admin_bindings(r)
    privileged_namespaces = _privileged_namespaces(r)
    app_namespaces = _app_namespaces(r)
    scale_from_zero = _scale_from_zero_namespaces(r)
    node_memory_mi = _node_memory(r)
    _refuse_switched_off(r, parts)
    backup = _backup(r, server, agents)
    ci = _ci(r, hosts)
    r.unknown_keys()

    settings = Settings(
        domain=domain,
        zones=zones,
        server=server,
        agents=agents,
        ssh_private_key=ssh_private_key,
        k3s_version=k3s_version,
        uninstall_on_destroy=uninstall_on_destroy,
        kubeconfig_renewal=kubeconfig_renewal,
        hostnames=hosts.public,
        api_hostname=hosts.api,
        argocd_hostname=hosts.argocd,
        protected_hostnames=hosts.protected,
        ssh_hostname=hosts.ssh,
        kube_api_hostname=hosts.kube_api,
        access_emails=access_emails,
        cloudflare=cloudflare,
        github=github,
        root=root,
        argocd_admin_password_rotated_at=rotated_at,
        allowed_admin_bindings=allowed_admin_bindings,
        privileged_namespaces=privileged_namespaces,
        app_namespaces=app_namespaces,
        route_namespaces=route_namespaces,
        scale_from_zero_namespaces=scale_from_zero,
        node_memory_mi=node_memory_mi,
        parts=parts,
        backup=backup,
        ci=ci,
    )
    return _checked(r, settings)


def _checked(r: _Reader, settings: Settings) -> Settings:
    """The settings whose names another names are checked together; then every problem at once."""
    if not any(p.startswith(f"{r.key('appNamespaces')}:") for p in r.problems):
        # Else each namespace named elsewhere would be refused again for one mistake in appNamespaces.
        _app_namespaces_cover(r, settings)
    if r.problems:
        raise SettingsError(r.problems)
    return settings
