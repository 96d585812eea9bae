"""The provider SDKs, loaded as they are used: for offline runs only (the tests, `make plan`).

The SDKs import far more than a program uses. Every test session and every `make plan` paid
for it: pulumi_cloudflare's index imports its ~780 modules (2.5 s), its two type modules execute
6,300 classes (1.5 to 2 s), pulumi_github's index and Kubernetes's API groups do the same on a
smaller scale. Three stand-ins load the same code on first use instead:
- the Cloudflare and GitHub indexes: a package object that imports `<package>.<module>` when one
  of its names is first read (`install_lazy_index`);
- a Kubernetes API group (`pulumi_kubernetes.core.v1`, ...) whose `__init__` only star-imports
  its modules: each name is imported from the module whose `__all__` holds it;
- the generated type modules (`_inputs.py`, `outputs.py`): one class at a time (below).
What runs is the SDKs' own code, unchanged. Skipped with the indexes is only the registration of
resource modules and packages, which rehydrates resource references coming back from the engine:
the mocks never send any. `pulumi up` never loads this file: the CLI runs `__main__.py` with the
real packages.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import re
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

INDEXES = ("pulumi_cloudflare", "pulumi_github")


def install() -> None:
    """All three stand-ins, before any component imports a provider SDK."""
    for package in INDEXES:
        install_lazy_index(package)
    if not any(isinstance(finder, _LazyFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _LazyFinder())


def modules_of(name: str) -> list[str]:
    """The modules of a Cloudflare or GitHub SDK that may define `name`, by the code generator's
    naming rules: `ZeroTrustAccessApplication` in `zero_trust_access_application`,
    `get_zone_output` in `get_zone`, a nested `...Args` input type in `_inputs`, and a resource's
    own `RepositoryArgs` beside `Repository`."""
    if name.startswith("get_"):
        return [name.removesuffix("_output")]
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name.removesuffix("Args")).lower()
    return ["_inputs", snake] if name.endswith("Args") else [snake]


def _load_on_read(package: types.ModuleType, modules_for: Callable[[str], list[str]]) -> None:
    """Gives `package` a module-level `__getattr__`: a name it does not hold yet is imported from
    the first of `modules_for(name)` (its submodules) that defines it, and kept."""

    def __getattr__(attribute: str) -> Any:  # noqa: N807 - the module-level hook's name
        for candidate in modules_for(attribute):
            try:
                module = importlib.import_module(f"{package.__name__}.{candidate}")
            except ModuleNotFoundError as missing:
                if missing.name != f"{package.__name__}.{candidate}":
                    raise  # a module that exists failed to import
                continue
            if hasattr(module, attribute):
                value = getattr(module, attribute)
                setattr(package, attribute, value)
                return value
        raise AttributeError(f"module {package.__name__!r} has no attribute {attribute!r}")

    package.__getattr__ = __getattr__  # type: ignore[method-assign]


def install_lazy_index(name: str) -> None:
    """Put the lazy index of package `name` in `sys.modules`, unless the real one is loaded."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.submodule_search_locations is None:
        return
    package = types.ModuleType(name, f"{name}, its modules loaded on first use")
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    package.__file__ = spec.origin
    package.__package__ = name

    _load_on_read(package, lambda attribute: [] if attribute.startswith("__") else modules_of(attribute))
    sys.modules[name] = package


# --- A Kubernetes API group, one module at a time -------------------------------------------------
# `pulumi_kubernetes/core/v1/__init__.py` star-imports its 50 modules (Binding, ConfigMap, ...)
# and these their types. An `__init__` of only such lines, `from . import outputs` and the
# generator's three imports is run without its star imports: a name is imported on first read
# from the module that exports it. An `__init__` with anything else is run as it is. A module
# without `__all__` (helm/v3's `helm`: Chart, which imports the SDK's YAML support and with it
# `requests`, 65 ms) exports every public name it has: it is imported when a name that no later
# module lists is read, so it may only come before every module with `__all__`, which then win
# as they do when the star imports run in order.
# `pulumi_kubernetes/yaml/__init__` is of the same form one level up (`from .. import _utilities`),
# with its subpackage `v2` made lazily by the generator's `if typing.TYPE_CHECKING:` block: the
# program's ConfigGroup (yaml.v2) then no longer imports the v1 module `yaml.py` and `requests`
# (90 ms of every `make plan`).
_GROUP_LINE = re.compile(
    r"from \.(\w+) import \*|import builtins as _builtins|from \.\.\.? import _utilities|import typing"
    r"|if typing\.TYPE_CHECKING:|else:|    import pulumi_kubernetes\.[\w.]+ as __\w+|    \w+ = __\w+"
    r"|    \w+ = _utilities\.lazy_import\('pulumi_kubernetes\.[\w.]+'\)"
)


def group_exports(path: str, source: str) -> tuple[types.CodeType, dict[str, str], list[str]] | None:
    """An API group's `__init__`: what it runs besides its star imports, the module that exports
    each name (the last one, as with star imports), and the modules without `__all__`, which
    export any other public name; None for any other `__init__`."""
    kept, exports, unlisted = [], {}, []
    folder = path.rsplit("/", 1)[0]
    for line in source.splitlines():
        if not line or line.startswith("#"):
            continue
        if line == "from . import outputs":
            kept.append(line)
            continue
        match = _GROUP_LINE.fullmatch(line)
        if match is None:
            return None
        if match[1] is None:
            kept.append(line)
            continue
        with open(f"{folder}/{match[1]}.py", encoding="utf-8") as file:
            names = _all_of(file.read())
        if names is None:
            if exports:  # its names would replace earlier ones, which cannot be known unrun
                return None
            unlisted.append(match[1])
            continue
        exports |= dict.fromkeys(names, match[1])
    return compile("\n".join(kept), path, "exec", dont_inherit=True), exports, unlisted


def _all_of(source: str) -> list[str] | None:
    """A generated module's `__all__` list, read from its text."""
    start = source.find("\n__all__ = [")
    if start < 0:
        return None
    end = source.index("]", start)
    return ast.literal_eval(source[start + len("\n__all__ = ") : end + 1])


class _LazyGroup:
    """The loader of one Kubernetes API group's package."""

    def __init__(self, code: types.CodeType, exports: dict[str, str], unlisted: list[str]) -> None:
        self.code = code
        self.exports = exports
        self.unlisted = unlisted

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, package: types.ModuleType) -> None:
        exports, unlisted = self.exports, self.unlisted
        # A submodule's name (`from . import outputs` asks for it first) is the submodule once it
        # is imported, whatever a star import brought: never a reason to import an unlisted module.
        submodules = {name.partition(".")[0] for name in os.listdir(package.__path__[0])} if unlisted else set()

        def modules_for(name: str) -> list[str]:
            if name in exports:
                return [exports[name]]
            # A star import skips `_` names.
            return [] if name.startswith("_") or name in submodules else unlisted

        _load_on_read(package, modules_for)
        exec(self.code, package.__dict__)  # noqa: S102 - the SDK's own imports


# --- The generated type modules, one class at a time ---------------------------------------------
# A provider SDK keeps every input and output type of a package (or of a Kubernetes API group) in
# two generated modules, `_inputs.py` and `outputs.py`: pulumi_cloudflare's hold 2,942 and 3,379
# classes and take 1.5 to 2 s to execute, Kubernetes's core/v1 another 0.4 s, for the few hundred
# this program uses. Offline, each class is made from its body's compiled code (the module's own
# bytecode, from the installed .pyc) when it is first needed, with the decorators and bases of its
# `class` line, as the class statement would make it. Every class a type hint can name is there
# when the SDK resolves the hint:
# - a resource module's `from ._inputs import *` gets exactly the names its own source mentions;
# - a package's `from ._inputs import *` (Kubernetes's `core/v1/__init__`) gets none, and the
#   package resolves the rest on attribute access (`'_core.v1.PodSpecArgs'`);
# - a class brings every class its own code mentions.
# A module with any top-level statement but its imports, `__all__` and classes is executed whole.
TYPE_MODULES = ("_inputs", "outputs")
TYPE_PACKAGES = ("pulumi_cloudflare", "pulumi_github", "pulumi_kubernetes")
# The names a generated module's top level may use besides its imports and classes.
_CLASS_LINE_NAMES = {"__all__", "pulumi", "input_type", "output_type", "TypedDict", "dict"}


@dataclass
class TypeIndex:
    """A generated type module: its header's code, and each class's decorators, bases and body."""

    header: types.CodeType
    lines: list[str]
    bodies: dict[str, types.CodeType]

    @classmethod
    def of(cls, name: str, path: str) -> TypeIndex | None:
        """The index, or None for a module of any other shape (executed whole)."""
        with open(path, encoding="utf-8") as file:
            text = file.read()
        at = text.find("\n__all__ = [\n")
        if at < 0:
            return None
        header = compile(text[: at + 1], path, "exec", dont_inherit=True)
        code = importlib.machinery.SourceFileLoader(name, path).get_code(name)
        if code is None:
            return None
        bodies = {c.co_name: c for c in code.co_consts if isinstance(c, types.CodeType)}
        if set(code.co_names) - set(header.co_names) - bodies.keys() - _CLASS_LINE_NAMES:
            return None
        return cls(header, text.splitlines(), bodies)

    def build(self, name: str, namespace: dict[str, Any]) -> None:
        """Defines class `name` in `namespace` as its `class` statement would."""
        body = self.bodies[name]
        number = body.co_firstlineno - 1  # the first decorator's line, or the class line
        decorators = []
        while self.lines[number].startswith("@"):
            decorators.append(self.lines[number][1:])
            number += 1
        line = self.lines[number]
        if not (line.startswith(f"class {name}") and line.endswith(":")):
            raise ImportError(f"{body.co_filename}:{number + 1}: not a one-line class statement")
        bases = line[len(f"class {name}") : -1].strip().removeprefix("(").removesuffix(")")
        made = eval(  # noqa: S307 - the SDK's own class line
            f"__build_class__(__body__, {name!r}, {bases})",
            namespace,
            {"__body__": types.FunctionType(body, namespace, name), "__build_class__": builtins.__build_class__},
        )
        for decorator in reversed(decorators):
            made = eval(decorator, namespace)(made)  # noqa: S307 - the SDK's own decorator
        namespace[name] = made

    def mentioned_by(self, code: types.CodeType) -> set[str]:
        """The classes of this module that `code` names: unquoted, or quoted whole as a type hint
        (`pulumi.Input['PodSpecArgs']` holds the constant 'PodSpecArgs')."""
        found = {name for name in code.co_names if name in self.bodies}
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                found |= self.mentioned_by(const)
            elif isinstance(const, str) and const in self.bodies:
                found.add(const)
        return found


class _LazyTypes:
    """The loader of one generated type module."""

    def __init__(self, index: TypeIndex) -> None:
        self.index = index

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        index = self.index
        namespace = module.__dict__
        exec(index.header, namespace)  # noqa: S102 - the SDK's own imports

        def build(name: str) -> Any:
            pending = [name]
            while pending:
                todo = pending.pop()
                if todo not in namespace:
                    index.build(todo, namespace)
                    pending.extend(index.mentioned_by(index.bodies[todo]))
            return namespace[name]

        def __getattr__(name: str) -> Any:  # noqa: N807 - the module-level hook's name
            if name == "__all__":
                return star_import_for(sys._getframe(1))  # the importing module's frame
            if name in index.bodies:
                return build(name)
            raise AttributeError(f"module {module.__name__!r} has no attribute {name!r}")

        def star_import_for(importer: types.FrameType) -> list[str]:
            if "__path__" in importer.f_globals:  # a package: it resolves the rest when read
                importer.f_globals.setdefault("__getattr__", lambda name: getattr(module, name))
                return []
            names = sorted(index.mentioned_by(importer.f_code))
            for name in names:
                build(name)
            return names

        namespace["__getattr__"] = __getattr__


class _LazyFinder(importlib.abc.MetaPathFinder):
    """Finds the SDKs' generated type modules and Kubernetes's API groups, with lazy loaders."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        top, _, _ = fullname.partition(".")
        if top not in TYPE_PACKAGES or "." not in fullname:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            return None
        if fullname.rsplit(".", 1)[-1] in TYPE_MODULES:
            index = TypeIndex.of(fullname, spec.origin)
            if index is not None:
                spec.loader = _LazyTypes(index)
        elif top == "pulumi_kubernetes" and spec.submodule_search_locations:
            with open(spec.origin, encoding="utf-8") as file:
                group = group_exports(spec.origin, file.read())
            if group is not None:
                spec.loader = _LazyGroup(*group)
        return spec
