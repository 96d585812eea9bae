"""A program that raises while the stack is being built fails within seconds, with its traceback."""

from __future__ import annotations

import runpy
import signal
import time

import pytest
from conftest import ROOT

from spitikos.engine import run

PROGRAM = ROOT / "tests" / "programs" / "raises_in_a_component.py"
BOUND_S = 20


class _HungError(Exception):
    """Raised by the alarm in the main thread, which the SDK's harness blocks when it hangs."""


def _hung(signum, frame):
    raise _HungError


def test_a_component_that_raises_fails_at_once_with_its_traceback():
    """Without spitikos/failfast.py the SDK's harness waits forever (pulumi/pulumi#7888): `make test`,
    `make plan` and mutmut hung. Run under an alarm, so a regression fails here instead of hanging
    (in this process: a subprocess spent half a second of CPU importing the SDK again)."""
    program = runpy.run_path(str(PROGRAM))["program"]
    previous = signal.signal(signal.SIGALRM, _hung)
    signal.setitimer(signal.ITIMER_REAL, BOUND_S)
    started = time.monotonic()
    try:
        with pytest.raises(RuntimeError, match=r"^a component raised in its constructor$") as raised:
            run(program)
    except _HungError:
        raise AssertionError(f"a program whose component raised was still running after {BOUND_S} s") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert time.monotonic() - started < 10
    assert raised.traceback[-1].path == PROGRAM  # the traceback, down to the raise


def test_the_stack_program_builds_the_platform_failing_fast():
    """`pulumi up` runs __main__.py under the same SDK harness: the platform is built inside the guard."""
    main = (ROOT / "__main__.py").read_text()
    guarded = main.split("with failing_fast():", 1)[1].split("\n\n", 1)[0]
    assert "Platform(" in guarded
