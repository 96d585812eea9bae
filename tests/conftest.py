"""Shared fixtures: the real stack settings as the CLI would hand them to the program."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from spitikos.engine import run_file  # noqa: E402 - after the path is set
from spitikos.stack import PLACEHOLDER_SECRETS, offline_config  # noqa: E402

DUMMY_SECRETS = PLACEHOLDER_SECRETS
MAIN = ROOT / "__main__.py"


def stack_config(stack: str = "pi5") -> dict[str, str]:
    """Defaults, then the stack file, then placeholder account ids and secrets."""
    return offline_config(stack)[0]


# A new operator's stack: one zone, repositories created and seeded, the seed's app of apps,
# nothing behind Access. pi5 (the real organization) covers adoption, zones and Access.
FRESH = {
    "spitikos:domain": "spitikos.dev",
    "spitikos:zones": "[]",
    "spitikos:hostnames": '["spitikos.dev", "api.spitikos.dev", "argocd.spitikos.dev"]',
    "spitikos:protectedHostnames": "[]",
    "spitikos:sshHostname": "",
    "spitikos:kubeApiHostname": "",
    "spitikos:accessEmails": "[]",
    "spitikos:adoptExistingRepositories": "false",
    "spitikos:repositories": '["spitikos", "api", "docs", "charts"]',
    "spitikos:rootRepository": "spitikos",
    "spitikos:rootPath": "argocd/apps",
}


def fresh_config(**overrides: str) -> dict[str, str]:
    return {**stack_config(), **FRESH, **{f"spitikos:{k}": v for k, v in overrides.items()}}


def run_main(config: dict[str, str] | None = None, secret_keys: list[str] | None = None):
    """`__main__.py` under mocks, as `pulumi up` would run it for the stack."""
    return run_file(MAIN, config or stack_config(), list(DUMMY_SECRETS) if secret_keys is None else secret_keys)


@pytest.fixture(scope="session")
def stack():
    """One run of the real pi5 stack, shared by every test module."""
    return run_main()


@pytest.fixture(scope="session")
def fresh():
    """One run of a new operator's stack (see FRESH), shared by every test module."""
    return run_main(fresh_config())
