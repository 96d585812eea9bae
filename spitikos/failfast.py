"""A program that raises while the stack is being built fails at once, with its traceback.

After a Pulumi Python program returns or raises, the SDK (`pulumi.runtime.stack.run_pulumi_func`,
under the CLI and under mocks alike) waits for every outstanding RPC and Output task. A component
that raised midway can leave an Output that nothing will ever resolve (the platform's deferred
charts webhook secret, which Argo CD resolves at the end of its constructor), so that wait never
ends (pulumi/pulumi#7888): `make test`, `make plan` and mutmut hung with no output.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager


def abandon_outstanding_work() -> None:
    """Cancels and forgets every outstanding RPC and Output task: the program's exception is the answer."""
    from pulumi.runtime.settings import SETTINGS

    for task in [*SETTINGS.outputs, *SETTINGS.rpc_manager.rpcs]:
        if isinstance(task, asyncio.Future):
            task.cancel()
        elif asyncio.iscoroutine(task):
            task.close()
    SETTINGS.outputs.clear()
    SETTINGS.rpc_manager.rpcs.clear()


@contextmanager
def failing_fast() -> Iterator[None]:
    """Around the code that builds the stack: an exception leaves nothing for the SDK to wait on."""
    try:
        yield
    except BaseException:
        abandon_outstanding_work()
        raise
