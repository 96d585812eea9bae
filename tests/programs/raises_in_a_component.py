"""A program whose component raises while the stack is being built (run by tests/test_engine.py).

Shaped like the platform: something consumes a deferred Output (as GitHub's charts webhook takes
Argo CD's secret before Argo CD exists), and the component that would resolve it raises in its
constructor. The SDK's mock harness then waits forever for that Output (pulumi/pulumi#7888).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pulumi

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from spitikos.engine import run


class Broken(pulumi.ComponentResource):
    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("test:index:Broken", name, None, opts)
        raise RuntimeError("a component raised in its constructor")


def program() -> None:
    secret, resolve_secret = pulumi.deferred_output()
    secret.apply(len)  # a consumer, as GitHub's webhook is
    broken = Broken("broken")
    resolve_secret(pulumi.Output.from_input(broken.urn))


if __name__ == "__main__":
    run(program)
