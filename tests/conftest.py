"""Shared fixtures: the real stack settings as the CLI would hand them to the program."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

# Placeholder secrets, clearly fake, in the shapes the settings check.
DUMMY_SECRETS = {
    "spitikos:sshPrivateKey": (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nDUMMY-SSH-KEY-FOR-TESTS\n-----END OPENSSH PRIVATE KEY-----"
    ),
    "spitikos:cloudflareApiToken": "dummy-cloudflare-api-token-0001",
    "spitikos:githubToken": "github_pat_dummy_github_token_0002",
    "spitikos:ghaPat": "github_pat_dummy_release_token_0003",
}
# Non-secret values every operator sets for their own account (not in Pulumi.pi5.yaml).
OPERATOR_VALUES = {
    "spitikos:cloudflareAccountId": "0123456789abcdef0123456789abcdef",
    "spitikos:cloudflareZoneId": "fedcba9876543210fedcba9876543210",
}


def _as_config_string(value: Any) -> str:
    """The CLI passes every config value to the program as a string; lists and objects as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def project_defaults() -> dict[str, str]:
    """`Pulumi.yaml`'s config defaults, keyed as the CLI keys them."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    return {
        f"{project['name']}:{key}": _as_config_string(spec["default"])
        for key, spec in project["config"].items()
        if "default" in spec
    }


def stack_values(stack: str = "pi5") -> dict[str, str]:
    values = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    return {k: _as_config_string(v) for k, v in values.items()}


def stack_config(stack: str = "pi5") -> dict[str, str]:
    """Defaults, then the stack file, then the operator's own ids and dummy secrets."""
    return {**project_defaults(), **stack_values(stack), **OPERATOR_VALUES, **DUMMY_SECRETS}


@pytest.fixture
def pi5_config() -> dict[str, str]:
    return stack_config()


@pytest.fixture
def secret_keys() -> list[str]:
    return list(DUMMY_SECRETS)


os.environ.setdefault("PULUMI_TEST_MODE", "true")


MAIN = ROOT / "__main__.py"


def run_main(config: dict[str, str] | None = None, secret_keys: list[str] | None = None):
    """`__main__.py` under mocks, as `pulumi up` would run it for the stack."""
    import runpy

    from harness import run

    return run(
        lambda: runpy.run_path(str(MAIN)),
        config or stack_config(),
        list(DUMMY_SECRETS) if secret_keys is None else secret_keys,
    )


@pytest.fixture(scope="session")
def stack():
    """One run of the real pi5 stack, shared by every test module."""
    return run_main()
