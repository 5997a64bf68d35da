"""Load YAML while remembering the line of every key, so errors can point at it.

Hostile documents are refused before they are built: text above `MAX_CHARS`, nesting deeper
than `MAX_DEPTH`, more than `MAX_VALUES` values once aliases are expanded (the "billion laughs"),
a recursive alias, and a key given twice in one mapping (YAML would silently keep the last).
"""

from __future__ import annotations

from typing import Any

import yaml

from cosim.scenario.errors import field_path

Path_ = tuple[str | int, ...]

MAX_CHARS = 1_000_000  # a scenario is a few kB; 1 MB holds thousands of explicit events
MAX_DEPTH = 64  # nesting levels of mappings and lists (scenarios need fewer than 10)
MAX_VALUES = 200_000  # values of the document with every alias expanded
_MERGE = "tag:yaml.org,2002:merge"


class YamlSyntaxError(Exception):
    """The file is not valid YAML, or is beyond a limit; carries the line number (and key path) of the problem."""

    def __init__(self, line: int | None, message: str, path: Path_ = ()):
        super().__init__(message)
        self.line = line
        self.message = message
        self.path = path


class _Loader(yaml.SafeLoader):
    """The safe loader with a nesting limit while composing (the composer recurses once per level)."""

    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise YamlSyntaxError(mark.line + 1, f"nested deeper than {MAX_DEPTH} levels of mappings and lists "
                                                     f"(limit MAX_DEPTH = {MAX_DEPTH})")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _measure(root: yaml.Node) -> None:
    """Refuse a node graph whose aliases expand beyond MAX_VALUES values or MAX_DEPTH levels, or refer to themselves."""
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (values, depth) with aliases expanded
    active: set[int] = set()

    def visit(node: yaml.Node) -> tuple[int, int]:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise YamlSyntaxError(node.start_mark.line + 1, "an alias (*name) refers to the mapping or list that "
                                                            "contains it: recursive documents are not allowed")
        active.add(key)
        children = ([n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode)
                    else node.value if isinstance(node, yaml.SequenceNode) else [])
        values, depth = 1, 1
        for child in children:
            v, d = visit(child)
            values, depth = values + v, max(depth, d + 1)
            if values > MAX_VALUES:
                raise YamlSyntaxError(node.start_mark.line + 1, f"the document expands to more than {MAX_VALUES:,} "
                                      f"values through its aliases (*name) (limit MAX_VALUES = {MAX_VALUES:,})")
        if depth > MAX_DEPTH:
            raise YamlSyntaxError(node.start_mark.line + 1, f"nested deeper than {MAX_DEPTH} levels of mappings and "
                                  f"lists once its aliases are expanded (limit MAX_DEPTH = {MAX_DEPTH})")
        active.discard(key)
        sizes[key] = (values, depth)
        return values, depth

    visit(root)


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key, line = key_node.value, key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                raise YamlSyntaxError(line, "a key must be a plain name or number, not a mapping or list", path)
            if key_node.tag != _MERGE:
                if key in seen:
                    where = f" in {field_path(path)}" if path else " at the top level"
                    raise YamlSyntaxError(line, f"duplicate key {key!r}{where}: given on line {seen[key]} and again "
                                                f"on line {line} (YAML would silently keep the last)", path + (key,))
                seen[key] = line
            lines[path + (key,)] = line
            _walk(value_node, path + (key,), lines)
            lines[path + (key,)] = line
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, path + (i,), lines)


def load_yaml_with_lines(text: str) -> tuple[Any, dict[Path_, int]]:
    """Parse YAML text within the limits above; return the data and a map from key path to 1-based line."""
    if len(text) > MAX_CHARS:
        raise YamlSyntaxError(None, f"the file has {len(text):,} characters; YAML input is limited to "
                                    f"{MAX_CHARS:,} (limit MAX_CHARS)")
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        _measure(node)
        lines: dict[Path_, int] = {}
        _walk(node, (), lines)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        message = f"invalid YAML: {exc.problem or exc}"
        if exc.context and exc.context_mark:
            message += f" ({exc.context} that starts on line {exc.context_mark.line + 1})"
        raise YamlSyntaxError(line, message) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(None, f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    return data, lines


def line_for(lines: dict[Path_, int], path: Path_) -> int | None:
    """Line of the deepest known prefix of `path` (a missing key points at its parent)."""
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None
