"""Renovate keeps every pin current: a pin added to components/versions.py without a manager fails here."""

from __future__ import annotations

import ast
import json
import re

import pytest
from conftest import ROOT

CONFIG = json.loads((ROOT / "renovate.json").read_text())
VERSIONS = ROOT / "components" / "versions.py"
PIN_SUFFIXES = ("_VERSION", "_CHART", "_IMAGE")


def python_regex(js: str) -> re.Pattern[str]:
    """Renovate's JavaScript named groups `(?<name>...)` as Python's `(?P<name>...)`."""
    return re.compile(re.sub(r"\(\?<(?=[A-Za-z])", "(?P<", js))


def file_pattern(pattern: str) -> re.Pattern[str]:
    assert pattern.startswith("/") and pattern.endswith("/"), f"{pattern} is not a /regex/"
    return re.compile(pattern[1:-1])


def managers_for(path: str) -> list[dict]:
    relative = path
    return [
        m for m in CONFIG["customManagers"] if any(file_pattern(p).search(relative) for p in m["managerFilePatterns"])
    ]


def matches(path: str, text: str) -> list[tuple[dict, re.Match[str]]]:
    """Every (manager, match) Renovate's custom managers would find in the file."""
    return [
        (manager, match)
        for manager in managers_for(path)
        for js in manager["matchStrings"]
        for match in python_regex(js).finditer(text)
    ]


def constants(text: str) -> dict[str, str]:
    """Module-level `NAME = "..."` string constants."""
    return {
        node.targets[0].id: node.value.value
        for node in ast.parse(text).body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    }


def match_for_constant(path: str, text: str, name: str) -> tuple[dict, re.Match[str]] | None:
    """The match that covers the line `NAME = ...`."""
    line = re.search(rf"(?m)^{name} = ", text)
    assert line, name
    for manager, match in matches(path, text):
        if match.start() <= line.start() < match.end():
            return manager, match
    return None


def rendered_dep_name(manager: dict, match: re.Match[str]) -> str:
    template = manager.get("depNameTemplate")
    if template == "{{{replace '_' '-' (lowercase depName)}}}":
        return match["depName"].lower().replace("_", "-")
    return template or match["depName"]


VERSIONS_TEXT = VERSIONS.read_text()
PINS = {name: value for name, value in constants(VERSIONS_TEXT).items() if name.endswith(PIN_SUFFIXES)}


def test_versions_py_has_the_pins_this_test_is_about():
    assert {"K3S_VERSION", "NGINX_GATEWAY_FABRIC_CHART", "KEDA_CHART", "ARGO_CD_CHART", "REDIS_IMAGE"} <= set(PINS)
    assert "GATEWAY_API_VERSION" in PINS


@pytest.mark.parametrize("name", sorted(PINS))
def test_every_pin_in_versions_py_is_found_by_a_custom_manager(name):
    found = match_for_constant("components/versions.py", VERSIONS_TEXT, name)
    assert found, f"{name} is pinned in components/versions.py but no custom manager in renovate.json finds it"
    manager, match = found
    value = PINS[name]
    if name.endswith("_IMAGE"):
        image, tag = value.split("@")[0].rsplit(":", 1)
        assert (match["depName"], match["currentValue"]) == (image, tag)
        assert manager["datasourceTemplate"] == "docker"
    else:
        assert match["currentValue"] == value


@pytest.mark.parametrize("name", sorted(n for n in PINS if n.endswith("_CHART")))
def test_each_chart_is_looked_up_by_its_name_in_its_own_repository(name):
    manager, match = match_for_constant("components/versions.py", VERSIONS_TEXT, name)
    prefix = name.removesuffix("_CHART")
    repo, chart = constants(VERSIONS_TEXT)[f"{prefix}_REPO"], prefix.lower().replace("_", "-")
    assert rendered_dep_name(manager, match) == chart
    if repo.startswith("oci://"):
        # An OCI registry is no Helm repository: Renovate reads the chart's tags as an OCI artifact's.
        assert manager["datasourceTemplate"] == "docker"
        assert manager["packageNameTemplate"] == "{{{packageName}}}/{{{replace '_' '-' (lowercase depName)}}}"
        assert f"oci://{match['packageName']}/{chart}" == f"{repo}/{chart}"
    else:
        assert manager["datasourceTemplate"] == "helm"
        assert match["registryUrl"] == repo


def test_k3s_is_looked_up_in_its_github_releases():
    manager, _ = match_for_constant("components/versions.py", VERSIONS_TEXT, "K3S_VERSION")
    assert (manager["datasourceTemplate"], manager["depNameTemplate"]) == ("github-releases", "k3s-io/k3s")
    versioning = python_regex(manager["versioningTemplate"].removeprefix("regex:"))
    assert versioning.fullmatch(PINS["K3S_VERSION"])
    assert not versioning.fullmatch("v1.36.0-rc1+k3s1")  # release candidates are not offered


def test_a_new_pin_without_a_manager_would_fail_the_check():
    text = VERSIONS_TEXT + '\nVAULT_VERSION = "1.20.0"\n'
    assert match_for_constant("components/versions.py", text, "VAULT_VERSION") is None


def test_the_pulumi_cli_pin_is_found_in_the_makefile_and_every_workflow():
    makefile = (ROOT / "Makefile").read_text()
    pinned = re.search(r"^PULUMI_VERSION := (\S+)$", makefile, re.M).group(1)
    found = [(m, match) for m, match in matches("Makefile", makefile) if "currentValue" in match.groupdict()]
    assert [match["currentValue"] for _, match in found] == [pinned]
    assert found[0][0]["depNameTemplate"] == "pulumi/pulumi"
    github = ROOT / ".github"
    for path in [*github.glob("workflows/*.yaml"), *github.glob("actions/*/action.yaml")]:
        text = path.read_text()
        relative = str(path.relative_to(ROOT))
        values = [
            match["currentValue"] for m, match in matches(relative, text) if m["depNameTemplate"] == "pulumi/pulumi"
        ]
        assert values == [pinned] * text.count("pulumi-version:"), relative


def test_python_pins_move_only_with_their_hashed_locks():
    patterns = CONFIG["pip-compile"]["managerFilePatterns"]
    for lock in ("requirements.lock", "requirements-dev.lock", "requirements-render.lock"):
        assert any(file_pattern(p).search(lock) for p in patterns), lock
    alone = next(r for r in CONFIG["packageRules"] if r.get("matchManagers") == ["pip_requirements"])
    assert alone["enabled"] is False
    assert sorted(alone["matchFileNames"]) == ["requirements-dev.txt", "requirements-render.txt", "requirements.txt"]


def test_no_update_is_proposed_before_it_is_three_days_old():
    # Everything Renovate updates: actions, images, charts, k3s, the Pulumi CLI and PyPI.
    assert days(CONFIG["minimumReleaseAge"]) >= 3
    # Held back, not proposed and left pending: a PR for a 1-hour-old release is one click from merged.
    assert CONFIG["internalChecksFilter"] == "strict"
    assert CONFIG["prCreation"] == "not-pending"
    for rule in CONFIG["packageRules"]:
        if "minimumReleaseAge" in rule:
            assert days(rule["minimumReleaseAge"]) >= 3, rule


def days(duration: str) -> float:
    number, unit = duration.split()
    return float(number) * {"day": 1, "days": 1, "week": 7, "weeks": 7}[unit]


def test_actions_are_pinned_to_digests_and_the_seeded_workflow_is_kept_current_too():
    assert "helpers:pinGitHubActionDigests" in CONFIG["extends"]
    assert any(
        file_pattern(p).search("components/seed/release.yaml") for p in CONFIG["github-actions"]["managerFilePatterns"]
    )


def test_nothing_merges_itself():
    assert CONFIG["automerge"] is False
    assert '"automerge": true' not in json.dumps(CONFIG)
    assert '"platformAutomerge": true' not in json.dumps(CONFIG)


@pytest.mark.parametrize("name", sorted(n for n in PINS if n.endswith("_IMAGE")))
def test_every_image_runs_by_digest_and_renovate_keeps_tag_and_digest_together(name):
    """A re-pushed tag must change nothing on the node; Renovate still reads the tag."""
    _, match = match_for_constant("components/versions.py", VERSIONS_TEXT, name)
    digest = PINS[name].split("@")[1]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), f"{name} is not pinned by digest"
    assert match["currentDigest"] == digest


@pytest.mark.parametrize("chart,images", [("argo-cd", "ARGO_CD_"), ("keda", "KEDA_")])
def test_a_chart_and_the_images_pinned_for_it_move_in_one_pull_request(chart, images):
    """A chart bumped without its images (or the reverse) would run one version's image with
    another's templates."""
    group = next(r for r in CONFIG["packageRules"] if chart in r.get("matchPackageNames", []))
    pinned = [name for name in PINS if name.startswith(images) and name.endswith("_IMAGE")]
    assert pinned
    for name in pinned:
        assert PINS[name].split(":")[0] in group["matchPackageNames"], name
