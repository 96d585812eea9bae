"""The session's settings variants are run once however many workers share the suite
(tests/conftest.py SharedRuns): what a worker reads is what the worker that ran it recorded, no
variant runs twice, and a variant whose run raises raises in the test that asks for it."""

from __future__ import annotations

import conftest
import pytest
from conftest import SharedRuns

from spitikos.engine import Recording


@pytest.fixture
def variants(monkeypatch):
    """Two variants whose runs are counted: `slow` (2 s by its estimate) and `quick`."""
    calls: list[str] = []

    def runner(name, result):
        def run():
            calls.append(name)
            if isinstance(result, Exception):
                raise result
            return result if isinstance(result, Recording) else Recording({}, {}, result=result)

        return run

    def use(**results):
        estimates = {"slow": 2.0, "quick": 1.0, "broken": 0.5}
        monkeypatch.setattr(conftest, "VARIANTS", {n: (estimates[n], runner(n, r)) for n, r in results.items()})
        return calls

    return use


def test_a_recording_read_from_the_shared_folder_is_the_one_recorded(stack, tmp_path, variants):
    variants(slow=stack, quick=stack)
    writer, reader = SharedRuns(tmp_path, 0, 2), SharedRuns(tmp_path, 1, 2)
    writer.plan({"slow", "quick"})
    writer.run_mine()
    read = reader.get("slow")
    assert read is not stack and read.result is None
    assert [(r.urn, r.inputs, r.state) for r in read.all()] == [(r.urn, r.inputs, r.state) for r in stack.all()]
    assert read.exports == stack.exports and read.invokes == stack.invokes


def test_each_variant_runs_once_and_the_workers_run_different_ones_first(tmp_path, variants):
    calls = variants(slow="s", quick="q")
    first, second = SharedRuns(tmp_path, 0, 2), SharedRuns(tmp_path, 1, 2)
    for worker in (first, second):
        worker.plan({"slow", "quick"})
    assert (first.mine, second.mine) == (["slow"], ["quick"])
    first.run_mine()
    second.run_mine()
    got = [first.get("quick"), second.get("slow"), first.get("slow"), second.get("quick")]
    assert [r.result for r in got] == [None, None, "s", "q"]  # the runs' own objects stay where they ran
    assert sorted(calls) == ["quick", "slow"]


def test_a_worker_that_never_starts_is_not_waited_for(tmp_path, variants):
    calls = variants(slow="s", quick="q")
    idle, busy = SharedRuns(tmp_path, 0, 2), SharedRuns(tmp_path, 1, 2)
    idle.plan({"slow", "quick"})  # xdist stops a worker it has no test for: run_mine never comes
    busy.WAIT = 1.0
    assert busy.get("slow").result == "s" and calls == ["slow"]


def test_a_run_that_raises_raises_in_the_test_that_asks(tmp_path, variants):
    calls = variants(broken=ValueError("spitikos:domain is not a domain"))
    owner, asker = SharedRuns(tmp_path, 0, 2), SharedRuns(tmp_path, 1, 2)
    owner.plan({"broken"})
    owner.run_mine()  # before the owner's first test: nothing raises there
    with pytest.raises(ValueError, match="spitikos:domain is not a domain"):
        asker.get("broken")
    assert calls == ["broken", "broken"]


def test_without_workers_a_variant_runs_when_first_asked_for(variants):
    calls = variants(quick="q")
    alone = SharedRuns(None, 0, 1)
    assert calls == []
    assert alone.get("quick") is alone.get("quick") and calls == ["quick"]
