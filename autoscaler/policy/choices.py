"""Specs that choose between shapes: a scalar shorthand or a mapping (`Either`), a mapping
whose `type` key picks the variant (`Tagged`), one item or a list (`OneOrList`).

Like every spec, each validates a located YAML node and describes itself as JSON Schema.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from autoscaler.policy.errors import KeyPath, quote
from autoscaler.policy.fields import ListOf, Obj
from autoscaler.policy.scalars import INVALID, JSON, Spec, one_of
from autoscaler.policy.yamlnodes import (
    Collector,
    ScalarError,
    describe,
    mapping_pairs,
    scalar_value,
)


class Either(Spec):
    """A scalar shorthand or a mapping (`tolerance: 0.1` or `{up, down}`; `action`)."""

    def __init__(
        self,
        scalar: Spec,
        mapping: Spec,
        description: str = "",
        *,
        from_scalar: Callable[[Any], Any] = lambda v: v,
    ):
        self.scalar = scalar
        self.mapping = mapping
        self.description = description
        self.from_scalar = from_scalar

    def convert(self, node: Node, path: KeyPath, sink: Collector) -> Any:
        if isinstance(node, MappingNode):
            return self.mapping.convert(node, path, sink)
        if isinstance(node, SequenceNode):
            sink.visit(node, path)
            sink.error(node, path, f"must be {self.description}, got a list")
            return INVALID
        value = self.scalar.convert(node, path, sink)
        return INVALID if value is INVALID else self.from_scalar(value)

    def schema(self) -> JSON:
        return self._with_description({"anyOf": [self.scalar.schema(), self.mapping.schema()]})


class Tagged(Spec):
    """A mapping whose `type` key picks the spec for the rest (metric sources)."""

    def __init__(self, variants: Mapping[str, Obj], description: str = "", tag: str = "type"):
        self.variants = dict(variants)
        self.description = description
        self.tag = tag

    def convert(self, node: Node, path: KeyPath, sink: Collector) -> Any:
        sink.visit(node, path)
        if not isinstance(node, MappingNode):
            sink.error(node, path, f"must be a mapping, got {describe(node)}")
            return INVALID
        tag_node = next(
            (
                p.value
                for p in mapping_pairs(node, path, Collector(sink.filename))
                if p.key == self.tag
            ),
            None,
        )
        allowed = one_of(self.variants)
        if tag_node is None:
            sink.error(node, path, f"missing required key {quote(self.tag)} (one of {allowed})")
            return INVALID
        tag_value: object = None
        if isinstance(tag_node, ScalarNode):
            try:
                tag_value = scalar_value(tag_node)
            except ScalarError:
                tag_value = None
        if not isinstance(tag_value, str) or tag_value not in self.variants:
            sink.error(
                tag_node, (*path, self.tag), f"must be one of {allowed}, got {describe(tag_node)}"
            )
            return INVALID
        return self.variants[tag_value].convert(node, path, sink)

    def schema(self) -> JSON:
        return self._with_description(
            {
                "type": "object",
                "required": [self.tag],
                "properties": {
                    self.tag: {
                        "enum": list(self.variants),
                        "description": "which kind; the other keys depend on it",
                    }
                },
                "oneOf": [variant.schema() for variant in self.variants.values()],
            }
        )


class OneOrList(Spec):
    """One item or a list of them (`model: chat` or `model: [chat, chat-large]`): a tuple."""

    def __init__(self, item: Spec, description: str = ""):
        self.item = item
        self.many = ListOf(item, description, min_items=1)
        self.description = description

    def convert(self, node: Node, path: KeyPath, sink: Collector) -> Any:
        if isinstance(node, SequenceNode):
            return self.many.convert(node, path, sink)
        value = self.item.convert(node, path, sink)
        return INVALID if value is INVALID else (value,)

    def schema(self) -> JSON:
        return self._with_description(
            {"anyOf": [self.item.schema(), {"type": "array", "items": self.item.schema()}]}
        )
