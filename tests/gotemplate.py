"""A minimal Helm (Go text/template) renderer, for the one template the tests render: the real
root chart's `charts/argocd/templates/applications.yaml`.

It knows only what that template uses: `range`, `if`, `end`; `.field`, `$.Values.field`,
`.Values.field`; the functions `toYaml`, `nindent`, `quote`, `required`; and `{{-`/`-}}`
whitespace trimming. Anything else raises, so a template the org changes past this subset
fails the test loudly instead of rendering wrong. Helm itself is not installed here.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

import yaml

ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.DOTALL)


class UnsupportedTemplateError(Exception):
    pass


def render(template: str, values: dict[str, Any], **builtins: Any) -> str:
    """The template with `.Values` = values and any other top-level objects (`Release={...}`)."""
    tokens = _tokens(template)
    tree, rest = _parse(tokens, 0)
    if rest != len(tokens):
        raise UnsupportedTemplateError("unbalanced {{ end }}")
    root = {"Values": values, **builtins}
    return "".join(_run(tree, root, root))


def _tokens(template: str) -> list[tuple[str, str]]:
    """("text", s) and ("action", s) in order, with `{{-`/`-}}` trimming applied to the text."""
    tokens: list[tuple[str, str]] = []
    at, trim_next = 0, False
    for match in ACTION.finditer(template):
        text = template[at : match.start()]
        if trim_next:
            text = text.lstrip()
        if match.group(1):
            text = text.rstrip()
        tokens.append(("text", text))
        tokens.append(("action", match.group(2)))
        at, trim_next = match.end(), bool(match.group(3))
    tail = template[at:]
    tokens.append(("text", tail.lstrip() if trim_next else tail))
    return tokens


def _parse(tokens: list[tuple[str, str]], at: int) -> tuple[list, int]:
    nodes: list = []
    while at < len(tokens):
        kind, body = tokens[at]
        if kind == "text":
            nodes.append(("text", body))
        elif body.startswith("/*"):
            pass
        elif body == "end":
            return nodes, at
        elif body.startswith(("range ", "if ")):
            keyword, expression = body.split(" ", 1)
            children, at = _parse(tokens, at + 1)
            if at >= len(tokens):
                raise UnsupportedTemplateError(f"{keyword} without end")
            nodes.append((keyword, expression, children))
        else:
            nodes.append(("expr", body))
        at += 1
    return nodes, at


def _run(nodes: list, dot: Any, root: dict) -> list[str]:
    out: list[str] = []
    for node in nodes:
        if node[0] == "text":
            out.append(node[1])
        elif node[0] == "expr":
            out.append(_string(_pipeline(node[1], dot, root)))
        elif node[0] == "if":
            if _truthy(_pipeline(node[1], dot, root)):
                out.extend(_run(node[2], dot, root))
        else:  # range
            for item in _pipeline(node[1], dot, root) or []:
                out.extend(_run(node[2], item, root))
    return out


def _pipeline(expression: str, dot: Any, root: dict) -> Any:
    value: Any = None
    for i, command in enumerate(expression.split("|")):
        words = shlex.split(command.strip(), posix=False)
        if i > 0:
            words.append(_Piped(value))
        value = _call(words, dot, root)
    return value


class _Piped:
    def __init__(self, value: Any) -> None:
        self.value = value


def _call(words: list, dot: Any, root: dict) -> Any:
    name, args = words[0], [_arg(w, dot, root) for w in words[1:]]
    if len(words) == 1:
        return _arg(name, dot, root)
    if name == "toYaml":
        return yaml.safe_dump(args[0], sort_keys=True, default_flow_style=False).rstrip("\n")
    if name == "nindent":
        return "\n" + "\n".join(" " * int(args[0]) + line for line in _string(args[1]).split("\n"))
    if name == "quote":
        return json.dumps(_string(args[0]))
    if name == "required":
        if not _truthy(args[1]):
            raise ValueError(f"required: {args[0]}")
        return args[1]
    raise UnsupportedTemplateError(f"function {name}")


def _arg(word: Any, dot: Any, root: dict) -> Any:
    if isinstance(word, _Piped):
        return word.value
    if word.startswith('"'):
        return json.loads(word)
    if word.isdigit():
        return int(word)
    if word.startswith("$."):
        return _field(root, word[2:])
    if word == ".":
        return dot
    if word.startswith("."):
        return _field(dot, word[1:])
    raise UnsupportedTemplateError(f"argument {word}")


def _field(value: Any, path: str) -> Any:
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _truthy(value: Any) -> bool:
    return bool(value)


def _string(value: Any) -> str:
    return "" if value is None else str(value)
