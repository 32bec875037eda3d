"""Field specs, part 1: the `Spec` base, scalar specs (strings, URLs, enums, numbers with
bounds, durations) and credentials (`Secret`). Containers and `Obj` are in `fields`.

Each spec turns a located node into a typed value (reporting errors to a `Collector`), and
`schema()` returns the JSON Schema of what it accepts. No policy-specific rule lives here.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from yaml.nodes import MappingNode, Node, ScalarNode

from autoscaler.policy.durations import DURATION_PATTERN, HINT, MAX_SECONDS, parse_duration
from autoscaler.policy.errors import KeyPath, quote
from autoscaler.policy.values import SecretRef
from autoscaler.policy.yamlnodes import (
    Collector,
    ScalarError,
    describe,
    describe_value,
    mapping_pairs,
    plain_number,
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
    """`[a, b]`; a user's name that is long or holds control characters is quoted."""
    shown = (t if (t := str(v)).isprintable() and len(t) <= 60 else quote(t) for v in values)
    return "[" + ", ".join(shown) + "]"


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
    numeric = False  # reads `1e3` as a number; refuses `010` and `1:30` (`plain_number`)

    def convert(self, node: Node, path: KeyPath, sink: Collector) -> Any:
        sink.visit(node, path)
        if not isinstance(node, ScalarNode):
            sink.error(node, path, f"must be {self.expected}, got {describe(node)}")
            return INVALID
        try:
            value = scalar_value(node)
            if self.numeric:
                value = plain_number(node, value)
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
        if self.min_len and not value.strip():  # a name or query of spaces is a slip
            raise ValueError(f"must not be blank, got {quote(value)}")
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
            parts.port  # noqa: B018 - raises for a port that is not a number in 0-65535
        except ValueError as exc:
            raise ValueError(f"must be a URL, got {quote(text)}: {exc}") from None
        if has_host and (not parts.hostname or any(c.isspace() for c in text)):
            raise ValueError(f"must be a URL with a host name and no spaces, got {quote(text)}")
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
    numeric = True

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
    numeric = True

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
    numeric = True

    def __init__(self, description: str = "", *, positive: bool = False, at_least: float = 0.0):
        self.description, self.positive, self.at_least = description, positive, at_least

    def accept(self, value: object) -> Any:
        if value is None or not isinstance(value, bool | int | float | str):
            raise ValueError(f"must be {HINT}, got {describe_value(value)}")
        seconds = parse_duration(value)
        if (self.positive and seconds <= 0) or seconds < self.at_least:
            least = f"of at least {self.at_least * 1000:g}ms" if self.at_least else "> 0"
            raise ValueError(f"must be a duration {least}, got {describe_value(value)}")
        if seconds > MAX_SECONDS:
            raise ValueError(f"must be a duration of at most 365d, got {describe_value(value)}")
        return seconds

    def schema(self) -> JSON:
        floor = "exclusiveMinimum" if self.positive and not self.at_least else "minimum"
        number: JSON = {"type": "number", "maximum": MAX_SECONDS, floor: self.at_least}
        out: JSON = {"anyOf": [number, {"type": "string", "pattern": DURATION_PATTERN}]}
        return self._with_description(out)


# --- credentials ----------------------------------------------------------------------------

ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
PATH, PATH_TEXT = r"[^\x00]+", "a path without NUL bytes"  # the OS cannot open such a path
_ENV = Str(
    "name of the environment variable holding the secret",
    pattern=ENV_NAME,
    pattern_text="an environment variable name",
)
_FILE = Str(
    "file holding the secret; a relative name is looked up in $CREDENTIALS_DIRECTORY, then "
    "/run/secrets",
    pattern=PATH,
    pattern_text=PATH_TEXT,
)


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
                env = _ENV.convert(pair.value, sub, sink)
                ok = ok and env is not INVALID
            elif pair.key == "file":
                file = _FILE.convert(pair.value, sub, sink)
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
                "properties": {"env": _ENV.schema(), "file": _FILE.schema()},
                "additionalProperties": False,
                "oneOf": [{"required": ["env"]}, {"required": ["file"]}],
            }
        )
