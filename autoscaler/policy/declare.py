"""One declaration per field: the model dataclasses carry their own validation and schema.

A section module declares each key of a policy or config file once, on its dataclass field:

    value: float = field(metadata=spec(Num("target (> 0)", gt=0)))

`spec(...)` puts the field's spec (type, bounds, description) in the field's metadata; the
field's type annotation and default stay Python's own. `obj(Model, ...)` then reads the
dataclass and builds the `fields.Obj` the loader validates with and `schema` publishes, so the
validator, the JSON Schema and the model cannot disagree:

- required: the dataclass field has no default (and the key gives none), unless `spec` says;
- `key: null` is accepted as None exactly when the field defaults to None and is optional;
- a field without `spec(...)` metadata is not a file key (`source_file`, a profile's `name`).

Why a declaration of our own rather than pydantic models: see the commit that introduced this
module (the error messages, the libyaml fast path and the daemon's dependencies).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, fields
from typing import Any

from autoscaler.policy.fields import Check, Field, Obj
from autoscaler.policy.scalars import JSON, NO_DEFAULT, Spec

META = "autoscaler.key"


@dataclass(frozen=True)
class Key:
    """What `spec(...)` stores in a dataclass field's metadata."""

    spec: Spec
    required: bool | None = None  # None: required exactly when the field has no default
    default: Any = NO_DEFAULT  # a default the file key has and the dataclass field has not
    name: str | None = None  # the key in the file, when it differs from the attribute
    nullable: bool | None = None  # None: `key: null` is None when the field defaults to None


def spec(
    kind: Spec,
    *,
    required: bool | None = None,
    default: Any = NO_DEFAULT,
    name: str | None = None,
    nullable: bool | None = None,
) -> dict[str, Any]:
    """Field metadata declaring the file key of this dataclass field: its spec (type, bounds,
    description) and what the dataclass cannot say (a file-only default, another key name)."""
    return {META: Key(kind, required, default, name, nullable)}


class Builder:
    """Calls the model (or a custom builder) with file keys renamed to attribute names; names
    the model class so the schema can publish the dataclass defaults."""

    def __init__(
        self,
        model: type,
        fn: Callable[..., Any] | None = None,
        rename: Mapping[str, str] | None = None,
    ):
        self.model = model
        self.fn = fn or model
        self.rename = dict(rename or {})

    def __call__(self, **values: Any) -> Any:
        if self.rename:
            values = {self.rename.get(k, k): v for k, v in values.items()}
        return self.fn(**values)


def obj(
    model: type,
    description: str,
    *,
    build: Callable[..., Any] | None = None,
    checks: Sequence[Check] = (),
    extra: Mapping[str, Field] | None = None,
    first: Sequence[str] = (),
    defaults: Mapping[str, Any] | None = None,
    descriptions: Mapping[str, str] | None = None,
    schema_extra: JSON | None = None,
) -> Obj:
    """The `Obj` of `model`'s declared keys.

    `extra`: input-only keys a custom `build` folds into attributes (`url` -> `urls`);
    `first`: keys listed before the rest (messages list keys in this order);
    `defaults` / `descriptions`: per-use overrides (scale_up and scale_down share a class).
    """
    table: dict[str, Field] = {}
    rename: dict[str, str] = {}
    for f in fields(model):
        declared = f.metadata.get(META)
        if declared is None:
            continue
        name = declared.name or f.name
        default = (defaults or {}).get(name, declared.default)
        has_default = f.default is not MISSING or f.default_factory is not MISSING
        required = declared.required
        if required is None:
            required = not has_default and default is NO_DEFAULT
        nullable = declared.nullable
        if nullable is None:
            nullable = f.default is None and not required
        table[name] = Field(declared.spec, required=required, default=default, nullable=nullable)
        if name != f.name:
            rename[name] = f.name
    table.update(extra or {})
    ordered = {name: table[name] for name in first}
    ordered.update(table)
    return Obj(
        Builder(model, build, rename),
        ordered,
        description,
        checks=checks,
        descriptions=descriptions,
        schema_extra=schema_extra,
    )
