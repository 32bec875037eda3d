"""Field specs: small combinators that validate YAML nodes AND describe themselves as JSON Schema.

Each spec turns a located node into a typed value (reporting errors to a `Collector`), and
`schema()` returns the JSON Schema of what it accepts. The policy and config tables
(`tables.py`) are built from these, so the validator and the published schema cannot drift.
No policy-specific rule lives here.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import MISSING, dataclass, is_dataclass
from dataclasses import fields as dataclass_fields
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from autoscaler.policy.durations import DURATION_PATTERN, HINT, parse_duration
from autoscaler.policy.errors import KeyPath, quote
from autoscaler.policy.values import SecretRef
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

JSON = dict[str, Any]


class _Invalid:
    """Marks a value that failed validation (its error is already reported)."""

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Any = _Invalid()
NO_DEFAULT: Any = object()


def one_of(values: Iterable[object]) -> str:
    return "[" + ", ".join(str(v) for v in values) + "]"


def unknown_key_message(key: str, allowed: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
    if close:
        return f"unknown key {quote(key)} (did you mean {quote(close[0])}?)"
    return f"unknown key {quote(key)}; allowed keys: {one_of(allowed)}"


class Spec:
    """Validates one node. Subclasses implement `convert` and `schema`."""

    description: str = ""

    def convert(self, node: Node, path: KeyPath, sink: Collector) -> Any:
        raise NotImplementedError

    def schema(self) -> JSON:
        raise NotImplementedError

    def _with_description(self, schema: JSON) -> JSON:
        if self.description:
            schema["description"] = self.description
        return schema


# --- scalars --------------------------------------------------------------------------------


class Scalar(Spec):
    """A scalar node; `accept` checks the Python value and raises ValueError with a message."""

    expected = "a value"

    def convert(self, node: Node, path: KeyPath, sink: Collector) -> Any:
        sink.visit(node, path)
        if not isinstance(node, ScalarNode):
            sink.error(node, path, f"must be {self.expected}, got {describe(node)}")
            return INVALID
        try:
            value = scalar_value(node)
            return self.accept(value)
        except (ValueError, ScalarError) as exc:
            sink.error(node, path, str(exc))
            return INVALID

    def accept(self, value: object) -> Any:
        raise NotImplementedError


def _wrong_type(expected: str, value: object) -> ValueError:
    hint = ""
    if expected == "a string" and isinstance(value, bool | int | float):
        hint = " (quote it to make it a string)"
    return ValueError(f"must be {expected}, got {describe_value(value)}{hint}")


@dataclass(frozen=True)
class Bounds:
    """Numeric bounds, shared by the check and the schema."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None

    def check(self, number: float | int, shown: str) -> None:
        if (
            (self.gt is not None and not number > self.gt)
            or (self.ge is not None and not number >= self.ge)
            or (self.lt is not None and not number < self.lt)
            or (self.le is not None and not number <= self.le)
        ):
            raise ValueError(f"must be {self.text()}, got {shown}")

    def text(self) -> str:
        parts = []
        for op, bound in ((">", self.gt), (">=", self.ge), ("<", self.lt), ("<=", self.le)):
            if bound is not None:
                parts.append(f"{op} {_num(bound)}")
        return " and ".join(parts)

    def schema(self) -> JSON:
        out: JSON = {}
        if self.gt is not None:
            out["exclusiveMinimum"] = self.gt
        if self.ge is not None:
            out["minimum"] = self.ge
        if self.lt is not None:
            out["exclusiveMaximum"] = self.lt
        if self.le is not None:
            out["maximum"] = self.le
        return out


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


class Str(Scalar):
    expected = "a string"

    def __init__(
        self,
        description: str = "",
        *,
        pattern: str | None = None,
        pattern_text: str = "",
        min_len: int = 1,
        max_len: int | None = None,
        check: Callable[[str], None] | None = None,
    ):
        self.description = description
        self.pattern = pattern
        self._regex = re.compile(pattern) if pattern else None
        self.pattern_text = pattern_text
        self.min_len = min_len
        self.max_len = max_len
        self.check = check

    def accept(self, value: object) -> Any:
        if not isinstance(value, str):
            raise _wrong_type("a string", value)
        if len(value) < self.min_len:
            raise ValueError("must not be empty")
        if self.max_len is not None and len(value) > self.max_len:
            raise ValueError(
                f"must be at most {self.max_len} characters, got {len(value)}: {quote(value)}"
            )
        if self._regex is not None and not self._regex.fullmatch(value):
            raise ValueError(f"must be {self.pattern_text}, got {quote(value)}")
        if self.check is not None:
            self.check(value)
        return value

    def schema(self) -> JSON:
        out: JSON = {"type": "string"}
        if self.min_len:
            out["minLength"] = self.min_len
        if self.max_len is not None:
            out["maxLength"] = self.max_len
        if self.pattern:
            out["pattern"] = f"^(?:{self.pattern})$"
        return self._with_description(out)


class Url(Str):
    """A URL whose scheme is one of `schemes` and which names a host."""

    def __init__(self, description: str, schemes: Sequence[str]):
        super().__init__(description)
        self.schemes = tuple(schemes)

    def accept(self, value: object) -> Any:
        text = super().accept(value)
        try:
            parts = urlsplit(text)
            has_host = bool(parts.netloc)
        except ValueError:
            raise ValueError(f"must be a URL, got {quote(text)}") from None
        if parts.scheme not in self.schemes or not has_host:
            raise ValueError(
                f"must be a URL starting with one of {one_of(s + '://' for s in self.schemes)}"
                f", got {quote(text)}"
            )
        return text

    def schema(self) -> JSON:
        out = super().schema()
        out["pattern"] = "^(" + "|".join(re.escape(s) for s in self.schemes) + ")://[^/]+"
        out["format"] = "uri"
        return out


class Enum(Scalar):
    def __init__(self, values: Sequence[str], description: str = "", *, expected: str = ""):
        self.values = tuple(values)
        self.description = description
        self.expected = expected or f"one of {one_of(self.values)}"

    def accept(self, value: object) -> Any:
        if not isinstance(value, str) or value not in self.values:
            raise ValueError(f"must be {self.expected}, got {describe_value(value)}")
        return value

    def schema(self) -> JSON:
        return self._with_description({"type": "string", "enum": list(self.values)})


class Bool(Scalar):
    expected = "true or false"

    def __init__(self, description: str = ""):
        self.description = description

    def accept(self, value: object) -> Any:
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false, got {describe_value(value)}")
        return value

    def schema(self) -> JSON:
        return self._with_description({"type": "boolean"})


class Int(Scalar):
    expected = "an integer"

    def __init__(self, description: str = "", **bounds: float):
        self.description = description
        self.bounds = Bounds(**bounds)

    def accept(self, value: object) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong_type("an integer", value)
        self.bounds.check(value, describe_value(value))
        return value

    def schema(self) -> JSON:
        return self._with_description({"type": "integer", **self.bounds.schema()})


class Num(Scalar):
    expected = "a number"

    def __init__(self, description: str = "", **bounds: float):
        self.description = description
        self.bounds = Bounds(**bounds)

    def accept(self, value: object) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _wrong_type("a number", value)
        try:
            number = float(value)
        except OverflowError:
            raise ValueError("must be a finite number, got a huge integer") from None
        if not math.isfinite(number):
            raise ValueError(f"must be a finite number, got {describe_value(value)}")
        self.bounds.check(number, describe_value(value))
        return number

    def schema(self) -> JSON:
        return self._with_description({"type": "number", **self.bounds.schema()})


class Duration(Scalar):
    """Seconds, from `15s` / `1h30m` / `500ms` / a number (see `durations`)."""

    expected = HINT

    def __init__(self, description: str = "", *, positive: bool = False):
        self.description = description
        self.positive = positive

    def accept(self, value: object) -> Any:
        if value is None or not isinstance(value, bool | int | float | str):
            raise ValueError(f"must be {HINT}, got {describe_value(value)}")
        seconds = parse_duration(value)
        if self.positive and seconds <= 0:
            raise ValueError(f"must be a duration > 0, got {describe_value(value)}")
        return seconds

    def schema(self) -> JSON:
        number: JSON = {"type": "number"}
        number["exclusiveMinimum" if self.positive else "minimum"] = 0
        out: JSON = {"anyOf": [number, {"type": "string", "pattern": DURATION_PATTERN}]}
        return self._with_description(out)


# --- credentials ----------------------------------------------------------------------------

ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"


class Secret(Spec):
    """`{env: NAME}` or `{file: PATH}`; a literal secret in the file is refused."""

    def __init__(self, description: str = ""):
        self.description = description

    def convert(self, node: Node, path: KeyPath, sink: Collector) -> Any:
        sink.visit(node, path)
        if not isinstance(node, MappingNode):
            what = "a literal value" if isinstance(node, ScalarNode) else describe(node)
            sink.error(
                node,
                path,
                f"must be {{env: NAME}} or {{file: PATH}}, got {what}; never write the secret "
                "itself in the file, put it in an environment variable or a file",
            )
            return INVALID
        env: str | None = None
        file: str | None = None
        ok = True
        pairs = mapping_pairs(node, path, sink)
        for pair in pairs:
            sub = (*path, pair.key)
            if pair.key == "env":
                env = Str(pattern=ENV_NAME, pattern_text="an environment variable name").convert(
                    pair.value, sub, sink
                )
                ok = ok and env is not INVALID
            elif pair.key == "file":
                file = Str().convert(pair.value, sub, sink)
                ok = ok and file is not INVALID
            else:
                sink.error(pair.key_node, sub, unknown_key_message(pair.key, ["env", "file"]))
                ok = False
        keys = {pair.key for pair in pairs}
        if "env" in keys and "file" in keys:
            sink.error(node, path, 'set either "env" or "file", not both')
            return INVALID
        if not keys & {"env", "file"}:
            if ok:
                sink.error(node, path, 'missing required key "env" or "file"')
            return INVALID
        return SecretRef(env=env, file=file) if ok else INVALID

    def schema(self) -> JSON:
        return self._with_description(
            {
                "type": "object",
                "properties": {
                    "env": {
                        "type": "string",
                        "pattern": f"^{ENV_NAME}$",
                        "description": "name of the environment variable holding the secret",
                    },
                    "file": {
                        "type": "string",
                        "minLength": 1,
                        "description": "file holding the secret; a relative name is looked up "
                        "in $CREDENTIALS_DIRECTORY, then /run/secrets",
                    },
                },
                "additionalProperties": False,
                "oneOf": [{"required": ["env"]}, {"required": ["file"]}],
            }
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
