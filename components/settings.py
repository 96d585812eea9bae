"""The stack's settings: the one place that reads `pulumi.Config`.

`load_settings` reads every key, validates all of them, and either returns a typed,
frozen `Settings` or raises `SettingsError` listing every problem, each naming its
key. It runs before any resource exists, so bad input never half-builds a platform.

Secrets are wrapped in `pulumi.Output.secret` the moment they are read; their
plaintext is only looked at for presence and shape, and never printed.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi

from components import versions

NAMESPACE = "spitikos"

# Repository roles the GitOps loop needs; more repositories may be listed.
CENTRAL_REPOSITORY = "spitikos"
API_REPOSITORY = "api"
DOCS_REPOSITORY = "docs"
CHARTS_REPOSITORY = "charts"
REQUIRED_REPOSITORIES = (CENTRAL_REPOSITORY, API_REPOSITORY, DOCS_REPOSITORY, CHARTS_REPOSITORY)

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN_RE = re.compile(rf"^(?:{_LABEL}\.)+[a-z]{{2,63}}$")
_HOSTNAME_RE = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
_K3S_VERSION_RE = re.compile(r"^v1\.(\d+)\.(\d+)\+k3s(\d+)$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CLOUDFLARE_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_GITHUB_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
_REPOSITORY_RE = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_LINUX_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


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


@dataclass(frozen=True)
class CloudflareSettings:
    account_id: str
    zone_id: str
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
class Settings:
    domain: str
    server: NodeSettings
    agents: tuple[NodeSettings, ...]
    ssh_private_key: pulumi.Output[str]
    k3s_version: str
    hostnames: tuple[str, ...]
    ssh_hostname: str | None
    kube_api_hostname: str | None
    access_emails: tuple[str, ...]
    cloudflare: CloudflareSettings
    github: GitHubSettings

    @property
    def kubernetes_minor(self) -> str:
        """`1.35` for `v1.35.5+k3s1`."""
        return versions.kubernetes_minor(self.k3s_version)

    def hostname(self, label: str) -> str:
        """`api` -> `api.<domain>`."""
        return f"{label}.{self.domain}"


class _Reader:
    """Reads raw config values and collects problems instead of stopping at the first."""

    def __init__(self, config: pulumi.Config) -> None:
        self.config = config
        self.problems: list[str] = []

    def key(self, name: str) -> str:
        return f"{NAMESPACE}:{name}"

    def fail(self, name: str, message: str) -> None:
        self.problems.append(f"{self.key(name)}: {message}")

    def string(self, name: str, default: str | None = None, required: bool = False) -> str | None:
        value = self.config.get(name)
        if value is None or value.strip() == "":
            if required:
                self.fail(name, "is required but not set")
            return default
        return value.strip()

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.config.get(name)
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
        raw = self.config.get(name)
        if raw is None:
            return default
        if raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        self.fail(name, f"{raw!r} is not true or false")
        return default

    def strings(self, name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        raw = self.config.get(name)
        if raw is None:
            return default
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            self.fail(name, "is not a list (set it with `pulumi config set --path`, or as a YAML list)")
            return default
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(name, "must be a list of strings")
            return default
        return tuple(v.strip() for v in value)

    def secret(self, name: str, check: Callable[[str], str | None] | None = None) -> pulumi.Output[str]:
        """A required secret, wrapped as a Pulumi secret at once; its value never appears in a message."""
        raw = self.config.get(name)
        if raw is None or raw.strip() == "":
            self.fail(name, f"is required but not set: `pulumi config set --secret {name} ...`")
            return pulumi.Output.secret("")
        if not self.config_is_secret(name):
            self.fail(name, f"must be stored encrypted: `pulumi config set --secret {name} ...`")
        if check is not None and (problem := check(raw)) is not None:
            self.fail(name, problem)
        return pulumi.Output.secret(raw)

    def config_is_secret(self, name: str) -> bool:
        from pulumi.runtime.config import is_config_secret

        return is_config_secret(self.key(name))


def is_domain(value: str) -> bool:
    return bool(_DOMAIN_RE.match(value))


def is_host(value: str) -> bool:
    """An IP address or a DNS hostname."""
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return bool(_HOSTNAME_RE.match(value)) and not value.replace(".", "").isdigit()


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


def _node(reader: _Reader, key: str, entry: str, user: str, port: int) -> NodeSettings | None:
    """`host`, `user@host` or `user@host:port` from the `agents` list."""
    match = re.match(r"^(?:([^@]+)@)?([^:@]+)(?::(\d+))?$", entry)
    if not match:
        reader.fail(key, f"{entry!r} is not host, user@host or user@host:port")
        return None
    entry_user, host, entry_port = match.groups()
    if not is_host(host):
        reader.fail(key, f"{host!r} is neither an IP address nor a hostname")
        return None
    if entry_user is not None and not _LINUX_USER_RE.match(entry_user):
        reader.fail(key, f"{entry_user!r} is not a valid user name")
        return None
    return NodeSettings(host=host, user=entry_user or user, port=int(entry_port or port), host_key=None)


def load_settings(config: pulumi.Config | None = None) -> Settings:
    """Read and validate every setting; raise `SettingsError` naming each bad key."""
    r = _Reader(config or pulumi.Config(NAMESPACE))

    domain = (r.string("domain", required=True) or "").lower()
    if domain and not is_domain(domain):
        r.fail("domain", f"{domain!r} is not a domain name like 'example.com'")

    host = r.string("nodeHost", required=True) or ""
    if host and not is_host(host):
        r.fail("nodeHost", f"{host!r} is neither an IP address nor a hostname")
    user = r.string("nodeUser", default="ubuntu") or "ubuntu"
    if not _LINUX_USER_RE.match(user):
        r.fail("nodeUser", f"{user!r} is not a valid Linux user name")
    port = r.integer("nodeSshPort", default=22, low=1, high=65535)
    host_key = r.string("nodeHostKey")
    if host_key is not None and not re.match(r"^(ssh-ed25519|ecdsa-sha2-nistp\d+|ssh-rsa) [A-Za-z0-9+/=]+", host_key):
        r.fail("nodeHostKey", "is not an SSH public host key line like 'ssh-ed25519 AAAA...'")
    server = NodeSettings(host=host, user=user, port=port, host_key=host_key)

    agents = tuple(node for entry in r.strings("agents") if (node := _node(r, "agents", entry, user, port)) is not None)
    agent_hosts = [a.host for a in agents]
    for dup in sorted({h for h in agent_hosts if agent_hosts.count(h) > 1 or h == host}):
        r.fail("agents", f"{dup!r} is listed twice (agents must differ from each other and from nodeHost)")

    k3s_version = r.string("k3sVersion", default=versions.K3S_VERSION) or versions.K3S_VERSION
    version_match = _K3S_VERSION_RE.match(k3s_version)
    if not version_match:
        r.fail("k3sVersion", f"{k3s_version!r} is not a k3s release tag like 'v1.35.5+k3s1'")
    elif int(version_match.group(1)) < 30:
        r.fail("k3sVersion", f"{k3s_version!r} is older than v1.30, which this stack does not support")

    ssh_private_key = r.secret("sshPrivateKey", _ssh_key_problem)

    hostnames = tuple(h.lower() for h in r.strings("hostnames"))
    if not hostnames:
        r.fail("hostnames", "is required: the public hostnames, at least the apex, api.<domain> and argocd.<domain>")
    ssh_hostname = r.string("sshHostname")
    kube_api_hostname = r.string("kubeApiHostname")
    named = [("hostnames", h) for h in hostnames]
    named += [(k, h.lower()) for k, h in (("sshHostname", ssh_hostname), ("kubeApiHostname", kube_api_hostname)) if h]
    seen: set[str] = set()
    for key, name in named:
        if not _HOSTNAME_RE.match(name):
            r.fail(key, f"{name!r} is not a hostname")
        elif domain and name != domain and not name.endswith("." + domain):
            r.fail(key, f"{name!r} is outside the zone {domain!r}")
        if name in seen:
            r.fail(key, f"{name!r} is listed twice; each hostname gets exactly one route and one DNS record")
        seen.add(name)
    if domain and hostnames:
        for needed in (domain, f"api.{domain}", f"argocd.{domain}"):
            if needed not in hostnames:
                r.fail("hostnames", f"must include {needed!r}")

    access_emails = tuple(e.lower() for e in r.strings("accessEmails"))
    for email in access_emails:
        if not _EMAIL_RE.match(email):
            r.fail("accessEmails", f"{email!r} is not an email address")
    if (ssh_hostname or kube_api_hostname) and not access_emails:
        r.fail(
            "accessEmails",
            "is required when sshHostname or kubeApiHostname is set: those hostnames are only ever "
            "published behind Cloudflare Access",
        )

    account_id = r.string("cloudflareAccountId", required=True) or ""
    if account_id and not _CLOUDFLARE_ID_RE.match(account_id):
        r.fail("cloudflareAccountId", "is not a Cloudflare account id (32 hexadecimal characters)")
    zone_id = r.string("cloudflareZoneId", required=True) or ""
    if zone_id and not _CLOUDFLARE_ID_RE.match(zone_id):
        r.fail("cloudflareZoneId", "is not a Cloudflare zone id (32 hexadecimal characters)")
    cloudflare = CloudflareSettings(
        account_id=account_id,
        zone_id=zone_id,
        api_token=r.secret("cloudflareApiToken", _token_problem),
    )

    owner = r.string("githubOwner", required=True) or ""
    if owner and not _GITHUB_NAME_RE.match(owner):
        r.fail("githubOwner", f"{owner!r} is not a GitHub user or organization name")
    repositories = r.strings("repositories", default=REQUIRED_REPOSITORIES)
    for repo in repositories:
        if not _REPOSITORY_RE.match(repo):
            r.fail("repositories", f"{repo!r} is not a GitHub repository name")
    for dup in sorted({x for x in repositories if repositories.count(x) > 1}):
        r.fail("repositories", f"{dup!r} is listed twice")
    for needed in REQUIRED_REPOSITORIES:
        if needed not in repositories:
            r.fail("repositories", f"must include {needed!r}: the GitOps loop needs it")
    visibility = r.string("repositoryVisibility", default="public") or "public"
    if visibility not in ("public", "private"):
        r.fail("repositoryVisibility", f"{visibility!r} is not 'public' or 'private'")
    github = GitHubSettings(
        owner=owner,
        token=r.secret("githubToken", _token_problem),
        repositories=repositories,
        adopt_existing=r.boolean("adoptExistingRepositories", default=False),
        visibility=visibility,
        required_reviews=r.integer("requiredReviews", default=0, low=0, high=6),
        release_token=r.secret("ghaPat", _token_problem),
    )

    if r.problems:
        raise SettingsError(r.problems)
    return Settings(
        domain=domain,
        server=server,
        agents=agents,
        ssh_private_key=ssh_private_key,
        k3s_version=k3s_version,
        hostnames=hostnames,
        ssh_hostname=ssh_hostname.lower() if ssh_hostname else None,
        kube_api_hostname=kube_api_hostname.lower() if kube_api_hostname else None,
        access_emails=access_emails,
        cloudflare=cloudflare,
        github=github,
    )
