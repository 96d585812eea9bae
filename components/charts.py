"""The Helm charts the platform installs, each from its copy under charts/vendor/ (never from a
chart repository at deploy time), so the files that run are the ones `make render` and the tests
checked.

Each copy is pinned by a hash of its files in charts/vendor/SHA256SUMS: a file changed after the
review fails `make test` and stops `pulumi up` before any resource exists.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import pulumi

PROJECT = Path(__file__).resolve().parent.parent
VENDOR_DIR = "charts/vendor"
VENDOR = PROJECT / VENDOR_DIR
SUMS_NAME = "SHA256SUMS"
REPIN = "make pin-charts"


class VendoredChartError(pulumi.RunError):
    """A vendored chart that is missing, unpinned or changed; shown without a traceback."""


def folder_name(chart: str, version: str) -> str:
    return f"{chart}-{version}"


def chart_path(chart: str, version: str) -> str:
    """The Release's `chart`: its vendored folder, relative to the project root. pulumi-kubernetes
    looks a chart up as a local path when no repository is given (helm_release.go, locateChart),
    relative to its working directory, which the Pulumi CLI sets to the project root (the folder
    of Pulumi.yaml) for the program and its plugins alike, wherever `pulumi up` was started.
    Relative, so the state does not change with the checkout's location."""
    return f"./{VENDOR_DIR}/{folder_name(chart, version)}"


def chart_name(release_inputs: Mapping) -> str:
    """The chart a Release's inputs install: `argo-cd` for `./charts/vendor/argo-cd-10.1.1`."""
    folder = Path(str(release_inputs.get("chart", ""))).name
    return folder.removesuffix(f"-{release_inputs.get('version', '')}")


def tree_sha256(folder: Path) -> str:
    """A hash of a folder's files: one line `<sha256 of the file>  <path in the folder>` per file,
    sorted by path, hashed together. From a shell, the same as
        cd <folder> && find . -type f -printf '%P\\n' | LC_ALL=C sort | xargs -d '\\n' sha256sum | sha256sum
    Empty folders count for nothing (Helm ignores them too); a symbolic link is refused."""
    files = _files(folder, "")
    # Read once per run: the program and the tests ask for the same folders many times, and a
    # file that changes changes its size or modification time.
    return _hashed(folder, tuple(sorted(files)))


def _files(folder: Path, prefix: str) -> list[tuple[str, int, int]]:
    """(path in the folder, size, modification time) of each file under `folder`/`prefix`."""
    found = []
    with os.scandir(folder / prefix if prefix else folder) as entries:
        for entry in entries:
            name = f"{prefix}{entry.name}"
            if entry.is_symlink():
                raise VendoredChartError(f"{_shown(folder)}: {name} is a symbolic link")
            if entry.is_dir():
                found += _files(folder, f"{name}/")
            else:
                stat = entry.stat()
                found.append((name, stat.st_size, stat.st_mtime_ns))
    return found


@functools.cache
def _hashed(folder: Path, files: tuple[tuple[str, int, int], ...]) -> str:
    lines = [f"{hashlib.sha256((folder / name).read_bytes()).hexdigest()}  {name}\n" for name, _, _ in files]
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def read_pins(vendor: Path | None = None) -> dict[str, str]:
    """SHA256SUMS: `<hash>  <folder>` a line, `#` for comments."""
    sums = (vendor or VENDOR) / SUMS_NAME
    if not sums.is_file():
        return {}
    pins = {}
    for number, line in enumerate(sums.read_text().splitlines(), 1):
        if line.strip() and not line.startswith("#"):
            fields = line.split()
            if len(fields) != 2 or len(fields[0]) != 64:
                raise VendoredChartError(f"{_shown(sums)}:{number}: not `<sha256>  <folder>`: {line!r}")
            pins[fields[1]] = fields[0]
    return pins


def write_pins(pins: Mapping[str, str], vendor: Path | None = None) -> None:
    header = (
        "# The hash of each vendored chart's files (components/charts.py, tree_sha256), checked by\n"
        f"# `make test` and before `pulumi up`. Re-pin after reviewing a changed copy: {REPIN}\n"
    )
    body = "".join(f"{digest}  {folder}\n" for folder, digest in sorted(pins.items()))
    ((vendor or VENDOR) / SUMS_NAME).write_text(header + body)


def problem(folder: Path, pins: Mapping[str, str]) -> str | None:
    """Why `folder` may not be installed as it is, or None."""
    shown = _shown(folder)
    if not (folder / "Chart.yaml").is_file():
        return f"{shown}: no chart there: vendor it with `make vendor-charts` (charts/vendor/README.md)"
    if folder.name not in pins:
        return f"{shown}: no hash pinned in {VENDOR_DIR}/{SUMS_NAME}: review the copy, then pin it with `{REPIN}`"
    actual = tree_sha256(folder)
    if actual != pins[folder.name]:
        return (
            f"{shown}: its files differ from the hash pinned in {VENDOR_DIR}/{SUMS_NAME} (pinned"
            f" {pins[folder.name][:12]}..., now {actual[:12]}...), and a vendored chart is installed as it is."
            f" Restore it (`git checkout -- {shown}`) or, once the change is reviewed, re-pin it with `{REPIN}`"
        )
    return None


def problems(vendor: Path | None = None) -> list[str]:
    """Every vendored chart that is not as pinned, and every pin without its chart."""
    vendor = vendor or VENDOR
    pins = read_pins(vendor)
    folders = sorted(p for p in vendor.iterdir() if p.is_dir())
    found = [why for folder in folders if (why := problem(folder, pins))]
    found += [
        f"{VENDOR_DIR}/{SUMS_NAME}: pins {name}, which is not vendored: re-pin with `{REPIN}`"
        for name in sorted(set(pins) - {f.name for f in folders})
    ]
    return found


def check(vendor: Path | None = None) -> None:
    """Raise, naming each one, when a vendored chart is not as pinned: run before any resource."""
    found = problems(vendor)
    if found:
        raise VendoredChartError("the vendored Helm charts are not as pinned:\n" + "\n".join(f"  {p}" for p in found))


def vendored(chart: str, version: str, vendor: Path | None = None) -> tuple[str, str]:
    """(`chart` for the Release, the hash of its files) for a chart at a pinned version, vendored and
    as pinned; raises otherwise."""
    vendor = vendor or VENDOR
    folder = vendor / folder_name(chart, version)
    why = problem(folder, read_pins(vendor))
    if why:
        raise VendoredChartError(why)
    return chart_path(chart, version), tree_sha256(folder)


def description(chart: str, version: str, digest: str) -> str:
    """The Release's `description` (Helm keeps it with each revision: `helm history`). It carries
    the hash, so a re-pinned copy at the same version still changes the Release and is upgraded."""
    return f"{VENDOR_DIR}/{folder_name(chart, version)} sha256:{digest}"


def pin(folders: Iterable[str] | None = None, vendor: Path | None = None) -> list[str]:
    """Pin the hash of the named vendored charts (every one by default) and drop the pins of charts
    no longer vendored; what changed, a line each."""
    vendor = vendor or VENDOR
    present = sorted(p.name for p in vendor.iterdir() if p.is_dir())
    wanted = present if folders is None else [f for f in folders if f in present]
    old = read_pins(vendor)
    new = {name: digest for name, digest in old.items() if name in present}
    done = []
    for name in wanted:
        new[name] = tree_sha256(vendor / name)
        if old.get(name) != new[name]:
            done.append(f"pinned {name} at sha256:{new[name]} (was {old.get(name, 'not pinned')})")
    done += [f"dropped the pin of {name}, which is not vendored" for name in sorted(set(old) - set(present))]
    write_pins(new, vendor)
    return done


def _shown(folder: Path) -> str:
    try:
        return folder.relative_to(PROJECT).as_posix()
    except ValueError:
        return str(folder)
