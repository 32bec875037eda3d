"""Field specs: small combinators that validate YAML nodes AND describe themselves as JSON Schema.

Here: containers (lists, maps, free maps) and `Obj` (a mapping with known keys, built into a
model object). The `Spec` base and the scalar specs live in `scalars`; specs that choose between
shapes (`Either`, `Tagged`, `OneOrList`) in `choices`.
The policy and config tables are derived from the model dataclasses (`declare`), so the
validator and the published schema cannot drift. No policy-specific rule lives here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, is_dataclass
from dataclasses import fields as dataclass_fields
from types import MappingProxyType
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from autoscaler.policy.errors import KeyPath, quote
from autoscaler.policy.scalars import (
    INVALID,
    JSON,
    NO_DEFAULT,
    Spec,
    Str,
    unknown_key_message,
)
from autoscaler.policy.yamlnodes import (
    MAX_DEPTH,
    Abort,
    Collector,
    ScalarError,
    describe,
    describe_value,
    is_null,
    locate,
    mapping_pairs,
    scalar_value,
)

# --- containers -----------------------------------------------------------------------------


class ListOf(Spec):
    def __init__(self, item: Spec, description: str = "", *, min_items: int = 0):
        self.item = item
        self.description = description
        self.min_items = min_items

    def convert(self, node: Node, path: KeyPath, sink: Collector) -> Any:
        sink.visit(node, path)
        if not isinstance(node, SequenceNode):
            sink.error(node, path, f"must be a list, got {describe(node)}")
            return INVALID
        if len(node.value) < self.min_items:
            sink.error(node, path, f"must list at least {self.min_items} item, got an empty list")
            return INVALID
        items = [self.item.convert(child, (*path, i), sink) for i, child in enumerate(node.value)]
        if any(item is INVALID for item in items):
            return INVALID
        return tuple(items)

    def schema(self) -> JSON:
        out: JSON = {"type": "array", "items": self.item.schema()}
        if self.min_items:
            out["minItems"] = self.min_items
        return self._with_description(out)


class MapOf(Spec):
    """A mapping from free keys to `value` specs (label matchers, headers, provider profiles)."""

    def __init__(
        self,
        value: Spec,
        description: str = "",
        *,
        key: Str | None = None,
        min_items: int = 0,
    ):
        self.value = value
        self.description = description
        self.key = key or Str()
        self.min_items = min_items

    def convert(self, node: Node, path: KeyPath, sink: Collector) -> Any:
        sink.visit(node, path)
        if not isinstance(node, MappingNode):
            sink.error(node, path, f"must be a mapping, got {describe(node)}")
            return INVALID
        pairs = mapping_pairs(node, path, sink)
        if len(pairs) < self.min_items:
            sink.error(node, path, f"must have at least {self.min_items} entry, got none")
            return INVALID
        out: dict[str, Any] = {}
        ok = True
        for pair in pairs:
            sub = (*path, pair.key)
            if self.key.convert(pair.key_node, sub, sink) is INVALID:
                ok = False
                continue
            if isinstance(self.value, Obj):
                value = self.value.convert(pair.value, sub, sink, extra={"name": pair.key})
            else:
                value = self.value.convert(pair.value, sub, sink)
            ok = ok and value is not INVALID
            out[pair.key] = value
        return MappingProxyType(out) if ok else INVALID

    def schema(self) -> JSON:
        out: JSON = {"type": "object", "additionalProperties": self.value.schema()}
        key_schema = self.key.schema()
        key_schema.pop("description", None)
        if len(key_schema) > 1:
            out["propertyNames"] = key_schema
        if self.min_items:
            out["minProperties"] = self.min_items
        return self._with_description(out)


class FreeMap(Spec):
    """Any mapping of plain data, frozen recursively (provider-specific `deployment.create`)."""

    def __init__(self, description: str = ""):
        self.description = description

    def convert(self, node: Node, path: KeyPath, sink: Collector) -> Any:
        if not isinstance(node, MappingNode):
            sink.visit(node, path)
            sink.error(node, path, f"must be a mapping, got {describe(node)}")
            return INVALID
        return self._freeze(node, path, sink, 0)

    def _freeze(self, node: Node, path: KeyPath, sink: Collector, depth: int) -> Any:
        sink.visit(node, path)
        if depth > MAX_DEPTH:
            sink.error(
                node, path, f"nested deeper than {MAX_DEPTH} levels (self-referencing alias?)"
            )
            raise Abort
        if isinstance(node, MappingNode):
            out: dict[str, Any] = {}
            for pair in mapping_pairs(node, path, sink, depth):
                out[pair.key] = self._freeze(pair.value, (*path, pair.key), sink, depth + 1)
            if any(v is INVALID for v in out.values()):
                return INVALID
            return MappingProxyType(out)
        if isinstance(node, SequenceNode):
            items = tuple(
                self._freeze(child, (*path, i), sink, depth + 1)
                for i, child in enumerate(node.value)
            )
            return INVALID if any(i is INVALID for i in items) else items
        assert isinstance(node, ScalarNode)
        try:
            value = scalar_value(node)
        except ScalarError as exc:
            sink.error(node, path, str(exc))
            return INVALID
        if isinstance(value, float) and not math.isfinite(value):
            sink.error(node, path, f"must be a finite number, got {describe_value(value)}")
            return INVALID
        if value is not None and not isinstance(value, str | int | float | bool):
            sink.error(
                node,
                path,
                f"must be a string, number, boolean or null, got {describe_value(value)}",
            )
            return INVALID
        return value

    def schema(self) -> JSON:
        return self._with_description({"type": "object"})


@dataclass(frozen=True)
class Field:
    """One key of an `Obj`: its spec, whether it is required, and its default when absent.

    Without an explicit `default`, an absent key is simply not passed to the builder, so the
    model's own dataclass default applies (one source of truth for defaults).
    """

    spec: Spec
    required: bool = False
    default: Any = NO_DEFAULT
    nullable: bool = False  # `key: null` means None (only for optional model fields)


@dataclass
class Here:
    """What a cross-field check sees: the converted values of one mapping, and where it is."""

    values: dict[str, Any]
    node: MappingNode
    path: KeyPath
    sink: Collector

    def ok(self, *names: str) -> bool:
        """True when every name has a valid value (given, or defaulted)."""
        return all(name in self.values and self.values[name] is not INVALID for name in names)

    def has(self, name: str) -> bool:
        """True when the key was written in the file (and is valid)."""
        return self.ok(name) and name in self.given

    @property
    def given(self) -> set[str]:
        given: set[str] = self.values.get("__given__", set())
        return given

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def error(self, keys: Sequence[str | int], message: str) -> None:
        node, path = locate(self.node, self.path, keys, self.sink)
        self.sink.error(node, path, message)


Check = Callable[[Here], None]


class Obj(Spec):
    """A mapping with known keys, built into a model object by `build(**values)`."""

    def __init__(
        self,
        build: Callable[..., Any],
        fields: Mapping[str, Field],
        description: str = "",
        *,
        checks: Sequence[Check] = (),
        descriptions: Mapping[str, str] | None = None,
        schema_extra: JSON | None = None,
    ):
        self.build = build
        self.fields = dict(fields)
        self.description = description
        self.checks = tuple(checks)
        self.descriptions = dict(descriptions or {})
        self.schema_extra = schema_extra or {}

    def convert(
        self,
        node: Node,
        path: KeyPath,
        sink: Collector,
        extra: Mapping[str, Any] | None = None,
    ) -> Any:
        sink.visit(node, path)
        if not isinstance(node, MappingNode):
            sink.error(node, path, f"must be a mapping, got {describe(node)}")
            return INVALID
        errors_before = len(sink.errors)
        values: dict[str, Any] = {}
        for pair in mapping_pairs(node, path, sink):
            spec_field = self.fields.get(pair.key)
            if spec_field is None:
                sink.error(
                    pair.key_node, (*path, pair.key), unknown_key_message(pair.key, self.fields)
                )
                continue
            if spec_field.nullable and is_null(pair.value):
                values[pair.key] = None
                continue
            values[pair.key] = spec_field.spec.convert(pair.value, (*path, pair.key), sink)
        given = set(values)
        for name, spec_field in self.fields.items():
            if name in values:
                continue
            if spec_field.required:
                sink.error(node, path, f"missing required key {quote(name)}")
            elif spec_field.default is not NO_DEFAULT:
                default = spec_field.default
                values[name] = default() if callable(default) else default
        here = Here({**values, "__given__": given}, node, path, sink)
        for check in self.checks:
            check(here)
        if len(sink.errors) > errors_before or any(v is INVALID for v in values.values()):
            return INVALID
        try:
            return self.build(**values, **(extra or {}))
        except (ValueError, TypeError) as exc:  # a builder's own consistency check
            sink.error(node, path, str(exc))
            return INVALID

    def schema(self) -> JSON:
        defaults = _dataclass_defaults(self.build)
        properties: JSON = {}
        for name, spec_field in self.fields.items():
            prop = spec_field.spec.schema()
            if name in self.descriptions:
                prop["description"] = self.descriptions[name]
            default = spec_field.default
            if default is NO_DEFAULT:
                default = defaults.get(name, NO_DEFAULT)
            elif callable(default):
                default = NO_DEFAULT
            if default is not NO_DEFAULT and _json_scalar(default):
                prop["default"] = default
            if spec_field.nullable:
                doc = _lift_doc(prop)
                prop = {"anyOf": [prop, {"type": "null"}], **doc}
            properties[name] = prop
        out: JSON = {
            "type": "object",
            "properties": properties,
            "additionalProperties": False,
        }
        required = [name for name, f in self.fields.items() if f.required]
        if required:
            out["required"] = required
        out.update(self.schema_extra)
        return self._with_description(out)


def _lift_doc(prop: JSON) -> JSON:
    """Move description and default out of a branch, to the `anyOf` that wraps it."""
    return {k: prop.pop(k) for k in ("description", "default") if k in prop}


def _json_scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _dataclass_defaults(build: Callable[..., Any]) -> dict[str, Any]:
    if not (isinstance(build, type) and is_dataclass(build)):
        build = getattr(build, "model", build)
    if not (isinstance(build, type) and is_dataclass(build)):
        return {}
    return {f.name: f.default for f in dataclass_fields(build) if f.default is not MISSING}
