"""YAML as located nodes: parsing, scalar values, mapping pairs, and the error collector.

The loader validates `yaml.compose` nodes (not plain Python objects) so every error can point
at the line and column of the key or value at fault. This module hides PyYAML's corners:
parse errors become located errors, duplicate keys are errors, merge keys (`<<: *base`) are
flattened, aliases are bounded (no billion laughs), and custom tags are refused.
Validation rules do not live here (see `sections`, `fields` and `scalars`).
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from autoscaler.policy.errors import FILE_PATH, KeyPath, PolicyError, format_path, quote

MERGE_TAG = "tag:yaml.org,2002:merge"
MAP_TAG = "tag:yaml.org,2002:map"
SEQ_TAG = "tag:yaml.org,2002:seq"
NULL_TAG = "tag:yaml.org,2002:null"

MAX_NODES = 100_000
"""Nodes visited per document; aliases can make a small file expand exponentially."""

MAX_DEPTH = 40
"""Nesting bound for free-form values; also stops self-referencing aliases."""

MAX_TEXT = 4 * 1024 * 1024
"""A policy file is a few KB; refuse anything absurd before the parser sees it."""


class Abort(Exception):
    """Stop validating the current document (already reported as an error)."""


@dataclass
class Collector:
    """Collects located errors for one file; counts visited nodes to bound alias expansion."""

    filename: str
    errors: list[PolicyError] = field(default_factory=list)
    visited: int = 0

    def error(self, node: Node | None, path: KeyPath | str, message: str) -> None:
        line, col = position(node)
        shown = path if isinstance(path, str) else format_path(path)
        self.errors.append(PolicyError(self.filename, line, col, shown, message))

    def error_at(self, line: int, col: int, path: str, message: str) -> None:
        self.errors.append(PolicyError(self.filename, max(1, line), max(1, col), path, message))

    def visit(self, node: Node, path: KeyPath) -> None:
        """Count a node against the size bound; refuse tags on mappings and lists
        (`!!set`, `!!omap`, `!custom`): they would mean something this loader ignores."""
        self.visited += 1
        if (isinstance(node, MappingNode) and node.tag != MAP_TAG) or (
            isinstance(node, SequenceNode) and node.tag != SEQ_TAG
        ):
            self.error(node, path, f"unsupported tag {quote(node.tag)}")
        if self.visited > MAX_NODES:
            self.error(
                node, path, f"document too large (more than {MAX_NODES} values; check aliases)"
            )
            raise Abort


def position(node: Node | None) -> tuple[int, int]:
    """1-based (line, column) where a node starts."""
    if node is None:
        return 1, 1
    mark = node.start_mark
    return mark.line + 1, mark.column + 1


def parse_documents(text: str, sink: Collector) -> list[Node]:
    """Every non-empty document of `text` as a node tree; parse errors go to `sink`.

    Documents before a syntax error are still returned, so their errors are reported too.
    """
    if len(text) > MAX_TEXT:
        sink.error_at(
            1, 1, FILE_PATH, f"file too large ({len(text)} characters, at most {MAX_TEXT})"
        )
        return []
    fast = _compose_fast(text)
    if fast is not None:
        return fast
    documents: list[Node] = []
    try:
        for node in yaml.compose_all(text, Loader=yaml.SafeLoader):
            if node is None or (isinstance(node, ScalarNode) and node.tag == NULL_TAG):
                continue  # an empty document (`---` at the end, comments only)
            documents.append(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        problem = exc.problem or exc.context or "syntax error"
        sink.error_at(line, col, format_path(()), f"invalid YAML: {problem}{_hint(problem)}")
    except yaml.reader.ReaderError as exc:
        line, col = _offset_position(text, exc.position)
        sink.error_at(
            line, col, format_path(()), f"invalid YAML: {exc.reason} (character {exc.character!r})"
        )
    except RecursionError:
        sink.error_at(1, 1, format_path(()), "invalid YAML: nesting too deep")
    except Exception as exc:  # PyYAML has a few unmarked failure modes; never leak them.
        sink.error_at(1, 1, format_path(()), f"invalid YAML: {exc}")
    return documents


# PyYAML's words for the commonest slips, and what to do about them.
_HINTS = (
    ("found character '\\t'", "indent with spaces, not tabs"),
    ("expected <block end>", "check this line's indentation against the lines above"),
    ("mapping values are not allowed here", "quote a value holding ': ', or check indentation"),
    ("could not find expected ':'", "a key needs ': ' after it"),
)


def _hint(problem: str) -> str:
    return next((f" ({hint})" for words, hint in _HINTS if words in problem), "")


# libyaml's composer recurses on the C stack and crashes the process on very deep nesting
# (seen at 50,000 levels), so it is used only when a cheap scan bounds the depth well below
# that: block nesting cannot exceed the longest line, flow nesting the bracket balance.
_FAST_MAX_DEPTH = 2000
_FAST_LOADER = getattr(yaml, "CSafeLoader", None)


def _nesting_bound(text: str) -> int:
    longest_line = max((len(line) for line in text.split("\n")), default=0)
    depth = deepest = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
        elif ch in "]}" and depth:
            depth -= 1
    return max(longest_line, deepest)


def _compose_fast(text: str) -> list[Node] | None:
    """Every document via libyaml (about 10x faster), or None to take the pure-Python path:
    no libyaml, possibly deep nesting, or any problem at all (the pure path reports it with
    the messages users see)."""
    if _FAST_LOADER is None or _nesting_bound(text) > _FAST_MAX_DEPTH:
        return None
    try:
        nodes = list(yaml.compose_all(text, Loader=_FAST_LOADER))
    except Exception:
        return None
    return [
        node
        for node in nodes
        if node is not None and not (isinstance(node, ScalarNode) and node.tag == NULL_TAG)
    ]


def _offset_position(text: str, offset: int) -> tuple[int, int]:
    before = text[:offset]
    line = before.count("\n") + 1
    col = offset - (before.rfind("\n") + 1) + 1
    return line, col


class ScalarError(ValueError):
    """A scalar PyYAML cannot turn into a value (unknown tag, absurd number, bad base64)."""


def scalar_value(node: ScalarNode) -> object:
    """The Python value of a scalar node, by the YAML 1.1 safe rules."""
    if node.tag.startswith("!") or not node.tag.startswith("tag:yaml.org,2002:"):
        raise ScalarError(f"unsupported tag {quote(node.tag)}")
    try:
        return SafeConstructor().construct_object(node, deep=True)
    except Exception as exc:
        reason = getattr(exc, "problem", None) or str(exc) or type(exc).__name__
        raise ScalarError(f"cannot read value: {reason}") from None


# YAML 1.1 (PyYAML) reads some plain numbers unlike YAML 1.2, JSON and editors: `1e3` is
# text (its exponent needs a dot and a sign), `010` is octal 8 and `1:30` is base 60 (90).
_EXPONENT = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+")
_OCTAL = re.compile(r"[-+]?0[0-7_]+")
_BASE60 = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?")


def plain_number(node: ScalarNode, value: object) -> object:
    """`value` as a numeric field reads it: `1e3` as the number it is in YAML 1.2 and JSON, and
    a number YAML 1.1 reads otherwise than it looks (`010`, `1:30`) refused (ScalarError)
    rather than used silently. Quoted scalars are left as they are."""
    if node.style not in (None, ""):
        return value
    text = node.value
    if _EXPONENT.fullmatch(text):
        number = float(text)
        if not math.isfinite(number):
            raise ScalarError(f"must be a finite number, got {text} (beyond the float range)")
        return number
    if isinstance(value, int) and _OCTAL.fullmatch(text):
        raise ScalarError(
            f"must be written without a leading 0, got {text} (YAML reads it as octal {value})"
        )
    if isinstance(value, int | float) and _BASE60.fullmatch(text):
        raise ScalarError(
            f"must be a plain number, got {text} (YAML reads it as base 60: {value:g}); write "
            'the number, or a duration like "1m30s"'
        )
    return value


def describe(node: Node) -> str:
    """What a node holds, for `got ...` in messages."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    assert isinstance(node, ScalarNode)
    try:
        value = scalar_value(node)
    except ScalarError:
        return quote(node.value)
    return describe_value(value)


def describe_value(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, int):
        text = str(value) if value.bit_length() < 200 else "a huge integer"
        return text
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, datetime.datetime | datetime.date):
        return f"a timestamp {value.isoformat()} (quote it to make it a string)"
    if isinstance(value, bytes):
        return "binary data"
    return type(value).__name__


@dataclass(frozen=True)
class Pair:
    key: str
    key_node: ScalarNode
    value: Node


def mapping_pairs(node: MappingNode, path: KeyPath, sink: Collector, depth: int = 0) -> list[Pair]:
    """The key/value pairs of a mapping in file order, merge keys flattened.

    Duplicate keys and non-scalar keys are reported; explicit keys win over merged ones.
    """
    if depth > MAX_DEPTH:
        sink.error(node, path, "merge keys nested too deep (self-referencing alias?)")
        raise Abort
    pairs: list[Pair] = []
    merged: list[Pair] = []
    seen: dict[str, ScalarNode] = {}
    for key_node, value_node in node.value:
        sink.visit(key_node, path)
        if key_node.tag == MERGE_TAG:
            merged.extend(_merge_sources(value_node, path, sink, depth))
            continue
        if not isinstance(key_node, ScalarNode):
            sink.error(key_node, path, f"keys must be plain strings, got {describe(key_node)}")
            continue
        key = key_node.value
        if key in seen:
            first_line, _ = position(seen[key])
            sink.error(
                key_node,
                (*path, key),
                f"duplicate key {quote(key)} (first set on line {first_line})",
            )
            continue
        seen[key] = key_node
        pairs.append(Pair(key, key_node, value_node))
    for pair in merged:
        if pair.key not in seen:
            seen[pair.key] = pair.key_node
            pairs.append(pair)
    return pairs


def _merge_sources(value: Node, path: KeyPath, sink: Collector, depth: int) -> list[Pair]:
    sources: Sequence[Node]
    if isinstance(value, MappingNode):
        sources = [value]
    elif isinstance(value, SequenceNode):
        sources = value.value
    else:
        sink.error(
            value,
            path,
            f"a merge key (<<) needs a mapping or a list of mappings, got {describe(value)}",
        )
        return []
    pairs: list[Pair] = []
    for source in sources:
        if not isinstance(source, MappingNode):
            sink.error(source, path, f"a merge key (<<) needs mappings, got {describe(source)}")
            continue
        pairs.extend(mapping_pairs(source, path, sink, depth + 1))
    return pairs


def is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == NULL_TAG


def locate(
    node: Node, path: KeyPath, keys: Sequence[str | int], sink: Collector
) -> tuple[Node, KeyPath]:
    """The node at `keys` below `node` (or the deepest existing ancestor) and its path.

    Used by cross-field checks to point at the value a message is about.
    """
    current, current_path = node, path
    for key in keys:
        found: Node | None = None
        if isinstance(key, str) and isinstance(current, MappingNode):
            quiet = Collector(sink.filename)  # errors were reported on the first pass
            for pair in mapping_pairs(current, current_path, quiet):
                if pair.key == key:
                    found = pair.value
                    break
        elif (
            isinstance(key, int)
            and isinstance(current, SequenceNode)
            and 0 <= key < len(current.value)
        ):
            found = current.value[key]
        if found is None:
            break
        current, current_path = found, (*current_path, key)
    return current, current_path
