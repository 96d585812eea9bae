"""The reviewed snapshot of the pi5 platform (tests/snapshots/pi5/): any change to what the program
builds shows up here as a diff, which `make snapshot` rewrites for review."""

from __future__ import annotations

import difflib

import pytest
import yaml
from conftest import DUMMY_SECRETS, ROOT

from spitikos import plan as offline
from spitikos.engine import MOCK_TUNNEL_TOKEN

SNAPSHOT = ROOT / "tests" / "snapshots" / "pi5"
MAX_DIFF_LINES = 80


@pytest.fixture(scope="module")
def current(stack):
    """The snapshot of the session's run of the pi5 stack (the program is not run again)."""
    return offline.snapshot(offline.from_recording(stack, "pi5"))


def committed() -> dict[str, str]:
    return {p.relative_to(SNAPSHOT).as_posix(): p.read_text() for p in sorted(SNAPSHOT.rglob("*")) if p.is_file()}


def test_the_platform_matches_its_reviewed_snapshot(current):
    saved = committed()
    problems = []
    for name in sorted(set(saved) | set(current)):
        if name not in saved:
            problems.append(f"new file {name}")
        elif name not in current:
            problems.append(f"{name} is no longer produced")
        elif saved[name] != current[name]:
            diff = list(
                difflib.unified_diff(
                    saved[name].splitlines(), current[name].splitlines(), f"snapshot/{name}", f"now/{name}", lineterm=""
                )
            )
            shown = diff[:MAX_DIFF_LINES] + (
                [f"... {len(diff) - MAX_DIFF_LINES} more lines"] if len(diff) > MAX_DIFF_LINES else []
            )
            problems.append("\n".join(shown))
    if problems:
        pytest.fail(
            "The platform differs from tests/snapshots/pi5/. If the change is intended, run `make snapshot` and "
            "commit the snapshot with it, for review:\n\n" + "\n\n".join(problems),
            pytrace=False,
        )


def test_the_snapshot_holds_no_secret(stack):
    secrets = [*DUMMY_SECRETS.values(), MOCK_TUNNEL_TOKEN, *stack.generated_secrets()]
    assert len(secrets) >= len(DUMMY_SECRETS) + 1 + 8
    for name, text in committed().items():
        for secret in secrets:
            assert secret.strip() not in text, f"{name} holds a secret"
        assert "PLACEHOLDER-" not in text and "mock-password-" not in text, f"{name} holds a placeholder secret"
    # Each value redacted, each key shown: a valid manifest a reviewer can read.
    auth = yaml.safe_load(committed()["kubernetes/secret-redis-redis-auth.yaml"])
    assert auth["stringData"] == {"auth.conf": offline.REDACTED, "password": offline.REDACTED}


def test_the_snapshot_shows_every_object_the_program_writes(current):
    assert {"plan.txt", "plan.json", "tunnel.yaml"} <= set(current)
    kinds = {name.split("/")[1].split("-")[0] for name in current if name.startswith("kubernetes/")}
    assert kinds == {
        "application",
        "appproject",
        "configmap",
        "clusterrole",
        "clusterrolebinding",
        "customresourcedefinition",
        "deployment",
        "ingress",
        "namespace",
        "networkpolicy",
        "persistentvolumeclaim",
        "poddisruptionbudget",
        "replicationsource",
        "role",
        "rolebinding",
        "secret",
        "service",
        "serviceaccount",
        "validatingadmissionpolicy",
        "validatingadmissionpolicybinding",
    }
