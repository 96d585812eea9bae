"""A stack's settings as the Pulumi CLI hands them to the program, for offline runs.

`Pulumi.yaml`'s defaults, then `Pulumi.<stack>.yaml`, then placeholders for what an
operator sets outside the file: the account ids, and every secret (secrets never live
in the stack file in plain text, and offline runs must not need the real ones).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from components import bounded_yaml
from spitikos.cli import STACK_NAME_RE

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = "PLACEHOLDER"


class StackFileError(ValueError):
    """A stack file `pulumi up` would refuse."""


# Placeholders, clearly fake, in the shapes the settings check (a secret key not listed
# here gets a token-shaped one).
PLACEHOLDER_SECRETS = {
    "spitikos:sshPrivateKey": (
        f"-----BEGIN OPENSSH PRIVATE KEY-----\n{PLACEHOLDER}-SSH-KEY\n-----END OPENSSH PRIVATE KEY-----"
    ),
    "spitikos:cloudflareApiToken": f"{PLACEHOLDER}-cloudflare-api-token",
    "spitikos:githubToken": f"{PLACEHOLDER}-github-token-0000",
    "spitikos:ghaPat": f"{PLACEHOLDER}-release-token-0000",
    "spitikos:kubeconfig": (
        "apiVersion: v1\nkind: Config\ncurrent-context: placeholder\n"
        "clusters: [{name: placeholder, cluster: {server: 'https://placeholder.invalid:6443'}}]\n"
        "users: [{name: placeholder, user: {token: PLACEHOLDER-token}}]\n"
        "contexts: [{name: placeholder, context: {cluster: placeholder, user: placeholder}}]\n"
    ),
}
# Secrets of a part a stack may leave out get a placeholder only when the stack builds that part:
# a kubeconfig when no nodeHost is set (tools/e2e sets the real one before `pulumi up`), the SSH key
# when one is (and no kubeconfig), and the Cloudflare and GitHub tokens unless the part is off.
PART_SECRETS: dict[str, Any] = {
    "spitikos:kubeconfig": lambda v: not v.get("spitikos:nodeHost"),
    "spitikos:sshPrivateKey": lambda v: bool(v.get("spitikos:nodeHost")) and not v.get("spitikos:kubeconfig"),
    "spitikos:cloudflareApiToken": lambda v: v.get("spitikos:cloudflare") != "false",
    "spitikos:githubToken": lambda v: v.get("spitikos:github") != "false",
    "spitikos:ghaPat": lambda v: v.get("spitikos:github") != "false",
}
SECRET_MARK = "Secret."  # noqa: S105 - a word of a description, not a password
"""How Pulumi.yaml marks a secret that has a default (see the comment there)."""
# Non-secret values each operator sets for their own account, used only when the stack lacks them
# (and, for Cloudflare's account, builds Cloudflare).
PLACEHOLDER_VALUES = {
    "spitikos:cloudflareAccountId": "0" * 32,
}


class _CliLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """A safe loader that reads values as the Pulumi CLI does: an unquoted `2027-01-15` stays the
    text `2027-01-15` (the CLI's YAML library keeps timestamp-like values as strings when it does
    not decode into a time), not a `datetime.date` no config value can be."""


_CliLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


# No stack file comes near it (Pulumi.pi5.yaml: 3 KB); a device or a huge file must not hang the run.
MAX_BYTES = 1024 * 1024
# What a stack file may hold at its top (pulumi sdk/go/common/workspace/project.go, ProjectStack).
STACK_FILE_KEYS = ("config", "environment", "secretsprovider", "encryptedkey", "encryptionsalt")


@lru_cache(maxsize=32)
def _parse(text: str) -> Any:
    # libyaml's loader is ~10x faster than the pure-Python one, and the same file is read for
    # every offline run: parse each distinct text once. Callers must not mutate the result.
    return bounded_yaml.load(text, _CliLoader)


def _read_text(path: Path) -> str:
    """The file's text, read no further than MAX_BYTES (a stack file that is a device or a huge file
    must not hang the run)."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_BYTES + 1)
    except OSError as error:
        raise StackFileError(f"{path.name}: cannot be read ({error.strerror}): fix the file") from None
    if len(data) > MAX_BYTES:
        raise StackFileError(f"{path.name}: is larger than {MAX_BYTES // 1024} KiB, which no stack file needs")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise StackFileError(f"{path.name}: byte {error.start + 1} is not UTF-8: save the file as UTF-8") from None


def read_yaml(path: Path) -> Any:
    """A YAML file's data, parsed once per distinct content; a syntax error is one line naming the file."""
    try:
        return _parse(_read_text(path))
    except bounded_yaml.YamlLimitError as error:
        raise StackFileError(f"{path.name}: line {error.line}: {error}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise StackFileError(f"{path.name}: {where}not valid YAML ({problem}): fix the file") from None


def _stack_config(path: Path) -> dict[str, Any]:
    """The `config:` mapping of a stack file, or one line saying what is wrong with the file."""
    data = read_yaml(path)
    if data is None:
        raise StackFileError(
            f"{path.name}: is empty: it needs a `config:` mapping of `spitikos:` keys, like Pulumi.example.yaml's"
        )
    if not isinstance(data, dict) or not isinstance(data.get("config", {}), dict):
        raise StackFileError(
            f"{path.name}: needs a `config:` mapping of `spitikos:` keys at the top, like Pulumi.example.yaml's"
        )
    for key in data:
        if key not in STACK_FILE_KEYS:
            close = difflib.get_close_matches(str(key), STACK_FILE_KEYS, n=1, cutoff=0.6)
            hint = f"did you mean `{close[0]}:`?" if close else f"a stack file holds {', '.join(STACK_FILE_KEYS)}"
            raise StackFileError(f"{path.name}: `{key}:` is not a stack file's key: {hint}")
    values = data.get("config") or {}
    for key in values:
        if ":" not in str(key):
            raise StackFileError(f"{path.name}: {key}: a key needs its namespace: write it as `spitikos:{key}`")
    return values


def _as_config_string(value: Any) -> str:
    """The CLI passes every config value as a string; lists and objects as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def project_defaults(root: Path = ROOT) -> dict[str, str]:
    """`Pulumi.yaml`'s config defaults, keyed as the CLI keys them."""
    project = read_yaml(root / "Pulumi.yaml")
    return {
        f"{project['name']}:{key}": _as_config_string(spec["default"])
        for key, spec in project["config"].items()
        if "default" in spec
    }


def secret_keys(root: Path = ROOT) -> list[str]:
    """The keys `Pulumi.yaml`'s config schema declares secret (`secret: true`, or a description that
    starts with "Secret."), keyed as the CLI keys them."""
    project = read_yaml(root / "Pulumi.yaml")
    return sorted(
        f"{project['name']}:{key}"
        for key, spec in project["config"].items()
        if spec.get("secret") or str(spec.get("description", "")).startswith(SECRET_MARK)
    )


def stack_values(stack: str, root: Path = ROOT) -> dict[str, str]:
    """The stack file's values, less the encrypted ones; a secret key in plain text is refused, as `pulumi up` does."""
    path = stack_file(stack, root)
    values = _stack_config(path)
    secure = [k for k, v in values.items() if isinstance(v, dict) and "secure" in v]
    plain_secrets = [k for k in secret_keys(root) if k in values and k not in secure]
    if plain_secrets:
        raise StackFileError(
            "; ".join(
                f"{path.name}: {key} must be encrypted as it's secret: remove it from the file and run "
                f"`pulumi config set --secret {key.split(':', 1)[1]} ...`"
                for key in plain_secrets
            )
        )
    # Encrypted values need the passphrase; offline runs use placeholders instead. An encrypted key
    # no setting declares secret still reaches the settings, which refuse it (a typo, a provider's).
    declared = set(secret_keys(root))
    return {
        k: f"{PLACEHOLDER}-encrypted" if k in secure else _config_string(path, k, v)
        for k, v in values.items()
        if k not in secure or k not in declared
    }


def _config_string(path: Path, key: str, value: Any) -> str:
    """A value as the CLI hands it over, or one line for one no config value can be: bytes, a set or
    a date, which only an explicit tag (`!!binary`, `!!set`, `!!timestamp`) makes."""
    try:
        return _as_config_string(value)
    except (TypeError, ValueError):  # json.dumps: bytes, set and date are not JSON
        raise StackFileError(
            f"{path.name}: {key}: holds bytes, a set or a date (an explicit `!!binary`, `!!set` or `!!timestamp` "
            "tag), which no config value can be: write it as plain text, without the tag"
        ) from None


def stack_file(stack: str, root: Path = ROOT) -> Path:
    """`Pulumi.<stack>.yaml`, which must exist; a name that is no stack's is one line listing those that are."""
    if not STACK_NAME_RE.fullmatch(stack):
        raise StackFileError(
            f"{stack!r} is not a stack name (letters, digits, '-', '_', '.'): known stacks are {known_stacks(root)}"
        )
    path = root / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no stack file {path.name}: known stacks are {known_stacks(root)}")
    return path


def encrypted_keys(stack: str, root: Path = ROOT) -> set[str]:
    """The keys the stack file holds encrypted: the CLI hands each one to the program, whatever else is set."""
    values = _stack_config(stack_file(stack, root))
    return {k for k, v in values.items() if isinstance(v, dict) and "secure" in v}


def known_stacks(root: Path = ROOT) -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def offline_config(stack: str, root: Path = ROOT) -> tuple[dict[str, str], list[str], list[str]]:
    """(config, secret keys, keys filled with placeholders) for an offline run of `stack`."""
    values = {**project_defaults(root), **stack_values(stack, root)}
    # A secret the file holds reaches the settings as it would under the CLI, even one of a part the
    # stack switched off (which the settings then refuse): dropping it would plan another stack.
    encrypted = encrypted_keys(stack, root)
    secrets = {
        k: PLACEHOLDER_SECRETS.get(k, f"{PLACEHOLDER}-{k.split(':', 1)[1]}-0000000000")
        for k in secret_keys(root)
        if k in encrypted or PART_SECRETS.get(k, lambda _: True)({**values, **dict.fromkeys(encrypted, "encrypted")})
    }
    builds_cloudflare = values.get("spitikos:cloudflare") != "false"
    unset = {k: v for k, v in PLACEHOLDER_VALUES.items() if not values.get(k) and builds_cloudflare}
    filled = list(unset) + list(secrets)
    config = {**values, **unset, **secrets}
    return config, list(secrets), filled


def workspace_file(root: Path = ROOT, home: Path | None = None) -> Path:
    """Where `pulumi stack select` records the stack it selected for this project folder:
    `<PULUMI_HOME or ~/.pulumi>/workspaces/<project>-<sha1 of Pulumi.yaml's path>-workspace.json`
    (pulumi sdk/go/common/workspace/workspace.go, `settingsPath`)."""
    home = home or Path(os.environ.get("PULUMI_HOME") or Path.home() / ".pulumi")
    project = read_yaml(root / "Pulumi.yaml")["name"]
    digest = hashlib.sha1(str(root / "Pulumi.yaml").encode()).hexdigest()  # noqa: S324 - the CLI's file name
    return home / "workspaces" / f"{project}-{digest}-workspace.json"


def selected_stack(root: Path = ROOT, home: Path | None = None) -> str | None:
    """The stack `pulumi stack select` chose here (its `stack` field; `org/project/name` names it
    last), or None when none was."""
    for folder in _names_of(root):
        try:
            data = json.loads(workspace_file(folder, home).read_text())
        except (OSError, ValueError):
            continue
        stack = data.get("stack") if isinstance(data, dict) else None
        name = stack.rsplit("/", 1)[-1] if isinstance(stack, str) else ""
        return name if STACK_NAME_RE.fullmatch(name) else None
    return None


def _names_of(root: Path) -> list[Path]:
    """The folder as the CLI may have named it: Go's os.Getwd answers $PWD when it is this folder, so
    in a checkout reached through a symbolic link the CLI hashes that path, not the resolved one."""
    pwd = Path(os.environ.get("PWD") or root)
    try:
        same = pwd != root and pwd.samefile(root)
    except OSError:
        same = False
    return [pwd, root] if same else [root]


def chosen_stack(given: str | None, root: Path = ROOT, home: Path | None = None) -> str:
    """The stack a command works on: the one named, else the selected one; never a default, which
    would be the organization's own stack."""
    stack = given or selected_stack(root, home)
    if not stack:
        raise StackFileError(
            f"no stack named and none selected (`pulumi stack select`): name one with STACK=<name>, "
            f"one of {known_stacks(root)}"
        )
    return stack
