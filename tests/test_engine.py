"""A program that raises while the stack is being built fails within seconds, with its traceback."""

from __future__ import annotations

import subprocess
import sys
import time

from conftest import ROOT

PROGRAM = ROOT / "tests" / "programs" / "raises_in_a_component.py"


def test_a_component_that_raises_fails_at_once_with_its_traceback():
    """Without spitikos/failfast.py the SDK's harness waits forever (pulumi/pulumi#7888): `make test`,
    `make plan` and mutmut hung. Run in a subprocess with a timeout, so a regression fails here."""
    started = time.monotonic()
    try:
        result = subprocess.run(
            [sys.executable, str(PROGRAM)], cwd=ROOT, capture_output=True, text=True, timeout=20, check=False
        )
    except subprocess.TimeoutExpired as hung:
        raise AssertionError("a program whose component raised was still running after 20 s") from hung
    assert time.monotonic() - started < 10
    assert result.returncode == 1
    assert result.stderr.rstrip().endswith("RuntimeError: a component raised in its constructor")
    assert 'raises_in_a_component.py", line' in result.stderr  # the traceback, down to the raise


def test_the_stack_program_builds_the_platform_failing_fast():
    """`pulumi up` runs __main__.py under the same SDK harness: the platform is built inside the guard."""
    main = (ROOT / "__main__.py").read_text()
    guarded = main.split("with failing_fast():", 1)[1].split("\n\n", 1)[0]
    assert "Platform(" in guarded
