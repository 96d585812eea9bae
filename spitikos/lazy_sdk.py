"""Load pulumi_cloudflare's modules on first use, for offline runs only.

pulumi_cloudflare 6's `__init__` imports all of its ~780 modules eagerly: about 2.5 s of every
test session and every `make plan`, for the dozen classes this program uses. Offline runs
install a stand-in package object that imports `pulumi_cloudflare.<module>` when one of its
names is first read. The modules themselves are the SDK's own, unchanged; only the index is
skipped (and with it the registration of resource modules, which rehydrates resource
references coming back from the engine: the mocks never send any). `pulumi up` never loads
this file: the CLI runs `__main__.py` with the real package.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import types
from typing import Any

PACKAGE = "pulumi_cloudflare"


def module_of(name: str) -> str:
    """The SDK module that defines `name`, by the code generator's naming rules:
    `ZeroTrustAccessApplication` in `zero_trust_access_application`, `get_zone_output` in
    `get_zone`, every `...Args` input type in `_inputs`."""
    if name.endswith("Args"):
        return "_inputs"
    if name.startswith("get_"):
        return name.removesuffix("_output")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def install() -> None:
    """Put the lazy index in `sys.modules`, unless the real one is loaded already."""
    if PACKAGE in sys.modules:
        return
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.submodule_search_locations is None:
        return
    package = types.ModuleType(PACKAGE, "pulumi_cloudflare, its modules loaded on first use")
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    package.__file__ = spec.origin
    package.__package__ = PACKAGE

    def __getattr__(name: str) -> Any:  # noqa: N807 - the module-level hook's name
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            module = importlib.import_module(f"{PACKAGE}.{module_of(name)}")
        except ModuleNotFoundError as missing:
            raise AttributeError(f"module {PACKAGE!r} has no attribute {name!r}") from missing
        value = getattr(module, name)
        setattr(package, name, value)
        return value

    package.__getattr__ = __getattr__  # type: ignore[method-assign]
    sys.modules[PACKAGE] = package
