"""Deploy what was checked: every Helm release installs its vendored chart (charts/vendor/), whose
files are pinned by a hash, so a changed file stops `make test` and `pulumi up` alike."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import run_main

from components import charts, versions
from components.charts import chart_name

RELEASE = "kubernetes:helm.sh/v3:Release"
VOLSYNC = f"volsync-{versions.VOLSYNC_CHART}"  # the smallest vendored chart: 19 files


def test_every_vendored_chart_is_as_pinned():
    # The failure a reviewer sees when a vendored file changed, or a pin is missing or stale.
    problems = charts.problems()
    assert not problems, "\n".join(problems)
    assert set(charts.read_pins()) == {p.name for p in charts.VENDOR.iterdir() if p.is_dir()}


def test_every_release_installs_its_vendored_chart_as_pinned_and_nothing_from_a_repository(stack):
    pins = charts.read_pins()
    releases = stack.of_type(RELEASE)
    assert {chart_name(r.values) for r in releases} == set(versions.charts())
    for reg in releases:
        chart, version = chart_name(reg.values), reg.values["version"]
        folder = charts.folder_name(chart, version)
        # A path from the project root, which the provider resolves in its working directory.
        assert reg.values["chart"] == f"./charts/vendor/{folder}", reg.urn
        assert (charts.PROJECT / reg.values["chart"] / "Chart.yaml").is_file(), reg.urn
        assert "repositoryOpts" not in reg.values, f"{reg.urn}: a repository would make the provider download it"
        assert version == versions.charts()[chart], reg.urn
        # The hash travels with the release: a re-pinned copy at the same version still upgrades it.
        assert reg.values["description"] == f"charts/vendor/{folder} sha256:{pins[folder]}", reg.urn


# The releases the live cluster runs, as the program installed them from the chart repositories:
# (Pulumi resource name, Helm release name, namespace). ingress-nginx's is not among them: the edge
# moves to NGINX Gateway Fabric, and its release goes away on purpose, after the cutover
# (docs/migration/gateway-cutover.md).
DEPLOYED = {
    ("spitikos-argocd-release", "argocd", "argocd"),
    ("spitikos-keda-release", "keda", "keda"),
    ("spitikos-volume-backups-volsync", "volsync", "volsync-system"),
}
# What makes pulumi-kubernetes replace a Release (uninstall, then install: Argo CD's and Redis's
# data, and the CRDs with every object of theirs, gone) instead of `helm upgrade`: its Diff marks
# only these inputs forceNew (provider/pkg/provider/helm_release.go, `forceNewFields`, unchanged
# since pulumi-kubernetes#2532 in 2023); a new resource name (URN) is a delete and a create too.
REPLACED_ON = {"name", "namespace"}


def test_moving_the_live_releases_to_their_vendored_charts_upgrades_them_in_place(stack):
    registered = {(r.name, r.values["name"], r.values["namespace"]): r for r in stack.of_type(RELEASE)}
    assert DEPLOYED <= set(registered), "a live release would be uninstalled: its URN, name or namespace changed"
    for key in DEPLOYED:
        new = registered[key].values
        # The inputs the releases were installed with: the chart by name from its repository.
        chart = chart_name(new)
        old = {**new, "chart": chart, "repositoryOpts": {"repo": versions.chart_repo(chart)}}
        del old["description"]
        changed = {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
        assert changed == {"chart", "repositoryOpts", "description"}, key
        assert not changed & REPLACED_ON, key


@pytest.fixture
def vendor(tmp_path):
    """A pinned copy of one vendored chart, to change."""
    vendor = tmp_path / "vendor"
    shutil.copytree(charts.VENDOR / VOLSYNC, vendor / VOLSYNC)
    charts.pin(vendor=vendor)
    assert charts.problems(vendor) == []
    return vendor


@pytest.mark.parametrize(
    "change",
    [
        lambda c: (c / "templates" / "deployment-controller.yaml").write_text("kind: Pod\n"),
        lambda c: (c / "values.yaml").write_bytes((c / "values.yaml").read_bytes() + b"\n"),
        lambda c: (c / "templates" / "extra.yaml").write_text("kind: ClusterRoleBinding\n"),
        lambda c: (c / "README.md").unlink(),
        lambda c: (c / "README.md").rename(c / "README.txt"),
    ],
    ids=["template rewritten", "one byte added", "file added", "file removed", "file renamed"],
)
def test_a_changed_file_fails_naming_the_chart_and_how_to_re_pin(vendor, change):
    change(vendor / VOLSYNC)
    (problem,) = charts.problems(vendor)
    assert problem.startswith(f"{vendor / VOLSYNC}: its files differ from the hash pinned in charts/vendor/SHA256SUMS")
    assert "`make pin-charts`" in problem and f"git checkout -- {vendor / VOLSYNC}" in problem
    with pytest.raises(charts.VendoredChartError, match="its files differ"):
        charts.vendored("volsync", versions.VOLSYNC_CHART, vendor)
    # Re-pinned after review: accepted again, the new hash in SHA256SUMS.
    assert [line.split()[:2] for line in charts.pin(vendor=vendor)] == [["pinned", VOLSYNC]]
    assert charts.problems(vendor) == []


def test_a_chart_without_a_pin_or_a_pin_without_a_chart_fails(vendor):
    shutil.copytree(vendor / VOLSYNC, vendor / "volsync-9.9.9")
    shutil.rmtree(vendor / VOLSYNC)
    assert charts.problems(vendor) == [
        f"{vendor}/volsync-9.9.9: no hash pinned in charts/vendor/SHA256SUMS: review the copy, then pin it"
        " with `make pin-charts`",
        f"charts/vendor/SHA256SUMS: pins {VOLSYNC}, which is not vendored: re-pin with `make pin-charts`",
    ]
    with pytest.raises(charts.VendoredChartError, match="no chart there: vendor it with `make vendor-charts`"):
        charts.vendored("volsync", versions.VOLSYNC_CHART, vendor)


def test_a_garbled_pin_file_is_refused_naming_its_line(vendor):
    sums = vendor / "SHA256SUMS"
    sums.write_text(sums.read_text() + "not-a-hash volsync-0.16.0 extra\n")
    with pytest.raises(charts.VendoredChartError, match=r"SHA256SUMS:4: not `<sha256>  <folder>`"):
        charts.problems(vendor)


def test_a_symbolic_link_in_a_vendored_chart_is_refused(vendor):
    (vendor / VOLSYNC / "templates" / "link.yaml").symlink_to("/etc/hostname")
    with pytest.raises(charts.VendoredChartError, match=r"link\.yaml is a symbolic link"):
        charts.problems(vendor)


def test_the_hash_is_the_one_the_documented_shell_command_prints():
    # charts/vendor/README.md tells a reviewer how to check a pin without Python.
    folder = charts.VENDOR / VOLSYNC
    command = "find . -type f -printf '%P\\n' | LC_ALL=C sort | xargs -d '\\n' sha256sum | sha256sum"
    assert command in charts.tree_sha256.__doc__.replace("\\\\", "\\")
    printed = subprocess.run(["sh", "-c", command], cwd=folder, capture_output=True, text=True, check=True).stdout
    assert printed.split()[0] == charts.tree_sha256(folder) == charts.read_pins()[VOLSYNC]
    assert command in (charts.VENDOR / "README.md").read_text()


def test_pulumi_up_stops_before_any_resource_when_a_vendored_chart_changed(vendor, monkeypatch):
    values = vendor / VOLSYNC / "values.yaml"
    values.write_text(values.read_text() + "\nextraObjects: []\n")
    monkeypatch.setattr(charts, "VENDOR", vendor)
    with pytest.raises(charts.VendoredChartError) as raised:
        run_main()
    assert f"{VOLSYNC}: its files differ" in str(raised.value)
    from pulumi.runtime import settings

    assert settings.SETTINGS.monitor.registrations == {}
