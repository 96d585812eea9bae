"""YAML read with bounds, checked before it is expanded, for text from outside (stack files, a
kubeconfig pasted into a secret).

A few lines of nested aliases ("billion laughs") expand to 10^9 values: such a stack file once
ran 60 s at 1.7 GB without a word, and ignored Ctrl-C. libyaml's composer recurses once per
level of nesting, and crashes the interpreter when deep enough. PyYAML also keeps the last of a
key given twice, silently, where the Pulumi CLI's YAML library refuses it.
"""

from __future__ import annotations

from typing import Any

import yaml

# Far beyond any stack file (Pulumi.pi5.yaml: 3 KB, about 80 values) or kubeconfig.
MAX_DEPTH = 64
MAX_VALUES = 10_000
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlLimitError(ValueError):
    """What is wrong with a YAML text, and on which line (1-based)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def load(text: str, loader: type = SAFE_LOADER) -> Any:
    """The one document of `text`, read with `loader` (a safe one) once it is known to be within the
    bounds; `YamlLimitError` otherwise, and `yaml.YAMLError` for what is not YAML."""
    _check_nesting(text, loader)
    reader = loader(text)
    try:
        root = reader.get_single_node()
        if root is None:
            return None
        _check_size(root)
        return reader.construct_document(root)
    finally:
        reader.dispose()


def _check_nesting(text: str, loader: type) -> None:
    """Reads the events alone (libyaml's parser does not recurse) and stops at the first level too deep."""
    reader = loader(text)
    try:
        depth = 0
        while reader.check_event():
            event = reader.get_event()
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise YamlLimitError(
                        event.start_mark.line + 1, f"values nested more than {MAX_DEPTH} deep: no setting nests so deep"
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    finally:
        reader.dispose()


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def _check_keys(node: yaml.MappingNode) -> None:
    seen: dict[str, int] = {}
    for key, _ in node.value:
        if isinstance(key, yaml.ScalarNode):
            line = key.start_mark.line + 1
            if key.value in seen:
                raise YamlLimitError(line, f"`{key.value}` is given twice (first on line {seen[key.value]}): keep one")
            seen[key.value] = line


def _check_size(root: yaml.Node) -> None:
    """Counts the values the document expands to, an alias as often as it is used, without expanding
    it (each node is counted once and its count reused); refuses a key given twice, and an alias
    inside the value it names."""
    counts: dict[int, int] = {}
    open_: set[int] = set()
    todo: list[tuple[yaml.Node, bool]] = [(root, False)]
    while todo:
        node, done = todo.pop()
        if done:
            open_.discard(id(node))
            counts[id(node)] = 1 + sum(counts[id(child)] for child in _children(node))
            if counts[id(node)] > MAX_VALUES:
                raise YamlLimitError(
                    node.start_mark.line + 1,
                    f"holds more than {MAX_VALUES} values once its aliases are expanded: write them out",
                )
        elif id(node) in open_:
            raise YamlLimitError(node.start_mark.line + 1, "an alias refers to a value that contains it: remove it")
        elif id(node) not in counts:
            if isinstance(node, yaml.MappingNode):
                _check_keys(node)
            open_.add(id(node))
            todo.append((node, True))
            todo.extend((child, False) for child in _children(node))
