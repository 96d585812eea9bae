"""Shared fixtures: the real stack settings as the CLI would hand them to the program."""

from __future__ import annotations

import dataclasses
import functools
import gc
import json
import os
import pickle
import shutil
import sys
import tempfile
import time
import typing
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Where PYTHONDONTWRITEBYTECODE is set (these machines set it), nothing kept the compiled modules:
# each run compiled the program's modules and pytest rewrote the asserts of every test module
# again, about 1 s of CPU. Keep them (in the git-ignored __pycache__/ folders) for what is
# imported from here on; a file whose source changed is compiled again, as always.
sys.dont_write_bytecode = False

# The tests write some 2,400 files a session into their temporary folders (the e2e runs copy the
# project three times, `--out` writes plans), and pytest deletes an older session's folders at the
# end: on these machines' ext4 disk a session spent 3.2 to 4.6 s of system time, with the folders
# on the RAM-backed /dev/shm 1.3 to 1.7 s (measured 2026-12-07). Used when it is there with room to
# spare (a container's default 64 MB is not) and no TMPDIR is chosen.
_SHM = Path("/dev/shm")
if (
    "TMPDIR" not in os.environ
    and _SHM.is_dir()
    and os.access(_SHM, os.W_OK | os.X_OK)
    and shutil.disk_usage(_SHM).free > 2**30
):
    tempfile.tempdir = str(_SHM)

# Not the engine nor the plan here (the Pulumi SDK, 0.3 s): under xdist the controller imports this
# file too, before it starts the workers, and it never runs the program. The engine's lazy provider
# SDKs, though, before any test module imports one (spitikos/lazy_sdk.py).
from spitikos import lazy_sdk  # noqa: E402 - after the path is set
from spitikos.stack import PLACEHOLDER_SECRETS, offline_config  # noqa: E402

lazy_sdk.install()

DUMMY_SECRETS = PLACEHOLDER_SECRETS


def _c_safe_load(stream):
    # libyaml's safe loader builds the same data as PyYAML's pure-Python one, about ten times
    # faster: the tests read the workflows, fixtures and manifests some 140 times.
    return yaml.load(stream, Loader=yaml.CSafeLoader)


def _c_safe_load_all(stream):
    # The same for streams of documents: the root chart's Applications, rendered eleven times by
    # test_migration, took 0.2 s to load with the pure-Python loader.
    return yaml.load_all(stream, Loader=yaml.CSafeLoader)


if yaml.__with_libyaml__:
    yaml.safe_load = _c_safe_load
    yaml.safe_load_all = _c_safe_load_all
MAIN = ROOT / "__main__.py"


def stack_config(stack: str = "pi5") -> dict[str, str]:
    """Defaults, then the stack file, then placeholder account ids and secrets: a copy, which the
    caller may change, of the files as read once a session (the settings tests ask 200 times)."""
    return dict(_stack_config(stack))


@functools.cache
def _stack_config(stack: str) -> dict[str, str]:
    return offline_config(stack)[0]


# A new operator's stack: Pulumi.example.yaml (example.org), the file the README tells a newcomer
# to copy. One zone, repositories created and seeded, the seed's app of apps, nothing behind
# Access. pi5 (the real organization) covers adoption, zones and Access.
EXAMPLE = "example"


def fresh_config(**overrides: str) -> dict[str, str]:
    return {**stack_config(EXAMPLE), **{f"spitikos:{k}": v for k, v in overrides.items()}}


def run_main(config: dict[str, str] | None = None, secret_keys: list[str] | None = None):
    """`__main__.py` under mocks, as `pulumi up` would run it for the stack."""
    from spitikos.engine import run_file

    return run_file(MAIN, config or stack_config(), list(DUMMY_SECRETS) if secret_keys is None else secret_keys)


HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMockServerHostKeyForTests"
AGENT_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMockAgentHostKeyForTests"


# pi5 grown up: embedded etcd on SSDs, three servers, backups to R2 (docs/backups.md).
HA = {
    "spitikos:datastore": "etcd",
    "spitikos:etcdOnSsd": "true",
    "spitikos:servers": json.dumps(["pi6=10.0.0.206", f"pi7=10.0.0.207 {AGENT_HOST_KEY}"]),
    "spitikos:backupBucket": "spitikos-backups",
    "spitikos:backupVolumes": json.dumps(["vault/data-vault-0"]),
}


# Agents too, one with its host key, and the first server's host key pinned.
AGENTS = ["10.0.0.201", f"pi3=ubuntu@10.0.0.202:2222 {AGENT_HOST_KEY}"]


def _run_e2e():
    config, secret_keys, _ = offline_config("e2e")
    return run_main(config, secret_keys)


def _run_grown():
    return run_main({**stack_config(), **HA, "spitikos:agents": json.dumps(AGENTS), "spitikos:nodeHostKey": HOST_KEY})


# The settings variants the session fixtures below run, each once a session; the seconds are one
# run's on these machines, which decide which worker runs which (see SharedRuns).
VARIANTS: dict[str, tuple[float, typing.Callable]] = {
    "stack": (1.5, run_main),
    "grown": (0.9, _run_grown),
    "fresh": (0.7, lambda: run_main(fresh_config())),
    "own_cluster": (0.35, _run_e2e),
}
# Fixtures that are a variant under another name.
VARIANT_OF = {"pi5_plan": "stack", "ha": "grown", "with_agent_and_host_key": "grown"}


class SharedRuns:
    """One run of each variant a session, whatever the number of pytest-xdist workers.

    Each worker would otherwise run every variant its share of the tests asks for: with two workers
    nearly every variant ran twice, 3.5 s of the suite's 19 s of CPU (measured 2026-12-07). The
    workers share a folder the controller makes for the session. A variant is run by the worker
    that claims it first (an exclusively created file), which writes the Recording there; another
    worker that needs it reads it (a few milliseconds), after waiting while it is being run. Every
    worker collects the whole session, so each knows which variants some test asks for: before its
    first test it claims and runs its part of them (the longest first, each to the worker with the
    least so far), so that the workers run different variants at the same time. A worker that
    never gets a test (xdist stops it) claims nothing and so is waited for by no one. A run that
    raises leaves a mark, and the worker whose test asks runs the variant itself, so the error
    reaches that test. Without xdist (a plain `pytest`, mutmut), each variant is run when a test
    first asks for it. A Recording crosses without `result`, the program's own objects: no shared
    variant's test reads it.
    """

    WAIT = 300.0  # seconds: past this, a worker stops waiting for another and runs the variant itself

    def __init__(self, folder: Path | None, worker: int, workers: int) -> None:
        self.folder, self.worker, self.workers = folder, worker, workers
        self.runs: dict[str, typing.Any] = {}
        self.mine: list[str] = []
        self.ran_here: set[str] = set()

    def plan(self, needed: set[str]) -> None:
        loads = [0.0] * self.workers
        for name in sorted(needed, key=lambda n: (-VARIANTS[n][0], n)):
            least = loads.index(min(loads))
            loads[least] += VARIANTS[name][0]
            if least == self.worker:
                self.mine.append(name)

    def run_mine(self) -> None:
        """Before this worker's first test: its part of the variants, unless another has claimed one."""
        for name in self.mine:
            if name not in self.runs and self._claim(name):
                self._run_and_write(name, raising=False)

    def get(self, name: str):
        if name not in self.runs:
            self.runs[name] = self._read_or_run(name) if self.folder else self._run(name)
        return self.runs[name]

    def run_here(self, *names: str):
        """One of `names` as this process ran it (for a test of what a run leaves in the process)."""
        done = [name for name in names if name in self.ran_here]
        if not done:
            self.runs[names[0]] = self._run(names[0])
        return self.runs[(done or names)[0]]

    def _run(self, name: str):
        recording = VARIANTS[name][1]()
        self.ran_here.add(name)
        return recording

    def _claim(self, name: str) -> bool:
        try:
            os.close(os.open(self.folder / f"{name}.claimed", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        return True

    def _run_and_write(self, name: str, raising: bool):
        try:
            recording = self.runs[name] = self._run(name)
        except Exception:
            (self.folder / f"{name}.failed").touch()
            if raising:
                raise
            return None  # the test that asks runs it again, and gets the error
        partial = self.folder / f"{name}.{self.worker}.partial"
        partial.write_bytes(pickle.dumps(dataclasses.replace(recording, result=None), pickle.HIGHEST_PROTOCOL))
        partial.rename(self.folder / f"{name}.pickle")  # whole or absent for a reader
        return recording

    def _read_or_run(self, name: str):
        written, failed = self.folder / f"{name}.pickle", self.folder / f"{name}.failed"
        deadline = time.monotonic() + self.WAIT
        while time.monotonic() < deadline:
            if written.exists():
                return pickle.loads(written.read_bytes())  # noqa: S301 - written by this session's own workers
            if failed.exists():
                return self._run(name)
            if self._claim(name):
                return self._run_and_write(name, raising=True)
            time.sleep(0.005)  # another worker is running it
        return self._run(name)


_SHARED = SharedRuns(None, 0, 1)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """xdist's controller, for each worker it starts: where the session's variants are written."""
    node.workerinput["spitikos_variants"] = node.config.spitikos_variants


def pytest_collection_finish(session):
    global _SHARED
    workerinput = getattr(session.config, "workerinput", None)
    if workerinput is None or "spitikos_variants" not in workerinput:
        return
    _SHARED = SharedRuns(
        Path(workerinput["spitikos_variants"]), int(workerinput["workerid"][2:]), int(workerinput["workercount"])
    )
    needed = {VARIANT_OF.get(n, n) for item in session.items for n in item.fixturenames}
    _SHARED.plan(needed & set(VARIANTS))


@pytest.fixture(scope="session", autouse=True)
def _run_this_workers_variants():
    _SHARED.run_mine()


@pytest.fixture(scope="session")
def ran_here():
    """A run of a stack with Cloudflare and Kubernetes made in this process, not read from another."""
    return _SHARED.run_here("stack", "grown", "fresh")


@pytest.fixture(scope="session")
def stack():
    """One run of the real pi5 stack, shared by every test module."""
    return _SHARED.get("stack")


@pytest.fixture(scope="session")
def pi5_plan(stack):
    """The offline plan of the session's run of pi5 (the program is not run again). It makes the
    snapshot's and `--out`'s files once (`Plan.texts`), for every test that writes or reads them."""
    from spitikos.plan import from_recording

    return from_recording(stack, "pi5")


@pytest.fixture(scope="session")
def fresh():
    """One run of the example stack (Pulumi.example.yaml), shared by every test module."""
    return _SHARED.get("fresh")


@pytest.fixture(scope="session")
def own_cluster():
    """One run of the e2e stack (Pulumi.e2e.yaml): a cluster it is given by kubeconfig, no Cloudflare,
    no GitHub, the root at a public Git URL. Every bring-your-own-cluster test shares it."""
    return _SHARED.get("own_cluster")


@pytest.fixture(scope="session")
def grown():
    """pi5 grown up (HA) with two agents and pinned host keys: one run, shared by every test of
    more than one node (each variant costs a whole run of the program)."""
    return _SHARED.get("grown")


@pytest.fixture(scope="session")
def ha(grown):
    """The pi5 stack with etcd, three servers and backups (see HA)."""
    return grown


@pytest.fixture(scope="session")
def with_agent_and_host_key(grown):
    """The pi5 stack plus agents, with the server's SSH host key pinned."""
    return grown


# --- Mutation testing: credit a shared fixture's calls to every test that uses it ---------------
# mutmut 3 runs each mutant only against the tests it saw call the mutated function in its stats
# run (MUTANT_UNDER_TEST=stats): the trampoline adds each function called to
# mutmut.state.state()._stats, and at every test's teardown mutmut credits that set to the test
# and clears it. A session or module fixture is built once, in the setup of the first test that
# asks for it, so all the program it runs would be credited to that test alone, and its mutants
# would "survive" against one test. While (and only while) stats are collected, remember what
# each shared fixture's setup called, and add it to every test that uses the fixture.
# The check is made at run time, not import time: mutmut's fork server imports this file before
# it knows which mutant (or "stats") its children will run. Normal runs never import mutmut.
_calls_by_shared_fixture: dict[str, set[str]] = {}


def _collecting_mutmut_stats() -> bool:
    return os.environ.get("MUTANT_UNDER_TEST") == "stats"


class _SharedFixtureCalls:
    """A plugin, not a conftest hook: pytest calls a conftest's hooks only for nodes under its
    folder, and a session fixture is set up on the Session node, at the root."""

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef, request):
        if fixturedef.scope == "function" or not _collecting_mutmut_stats():
            return (yield)
        from mutmut.state import state

        # A fixture's own dependencies are set up before this hook: what is recorded here is its own.
        calls = state()._stats
        earlier = set(calls)
        calls.clear()
        try:
            return (yield)
        finally:
            _calls_by_shared_fixture[fixturedef.argname] = set(calls)
            calls |= earlier


def pytest_configure(config):
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        # xdist's controller: the folder of the session's shared variants (SharedRuns).
        config.spitikos_variants = tempfile.mkdtemp(prefix="spitikos-variants-")
    config.pluginmanager.register(_SharedFixtureCalls(), "spitikos-shared-fixture-calls")
    # The session builds millions of objects that live to its end (the SDKs' classes, four runs
    # of the program) and few cycles: the collector's passes over them were a quarter of its time.
    # Without it the suite peaks at 600 MB, 20 MB more (measured 2026-12-01). `make plan` does
    # the same (spitikos/__main__.py).
    gc.disable()


@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config):
    """After the summary, pytest collects garbage over the whole heap twice (for exceptions raised
    in finalizers, which none of the session's objects has raised), and the interpreter's exit
    collects again: 1.2 s of CPU walking the SDKs' and the runs' objects, which all die with the
    process. The collector skips frozen objects: 0.1 s (measured 2026-12-07)."""
    if hasattr(config, "spitikos_variants"):
        shutil.rmtree(config.spitikos_variants, ignore_errors=True)
    gc.freeze()


@pytest.fixture(autouse=True)
def _credit_shared_fixtures_to_mutmut(request):
    """Runs after every session/module fixture of the test (pytest sets up wider scopes first)."""
    if _collecting_mutmut_stats():
        from mutmut.state import state

        for name in request.fixturenames:
            state()._stats.update(_calls_by_shared_fixture.get(name, ()))
