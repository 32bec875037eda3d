"""Drafts: building a frozen slots dataclass on the hot path without its `__init__`.

A frozen dataclass's `__init__` sets each field through `object.__setattr__` by name; for the
values every decision makes (the next `CoreState`, fifteen fields, and the objective stage's
memory) that was a seventh of a decision's cost. A draft is a plain class with the same slots:
the builder stores each field on it by name (a plain slot store, several times cheaper), then
turns it into the real class by `__class__` assignment, which Python allows only between
classes of the same slot layout (a TypeError otherwise, never a half-built value). What comes
out is an instance like any other: the real type, frozen, equal and hashing by value
(tests/core/test_core_state.py checks it). A slot the builder forgot stays unset and fails
loudly on first read.

    s: Any = _Draft()        # _Draft = draft(CoreState), once, at import
    s.field = value          # every field, by name
    s.__class__ = CoreState
"""

from __future__ import annotations


def draft(cls: type) -> type:
    """A class with `cls`'s slots (same names, same order) and nothing else."""
    slots = cls.__dict__["__slots__"]
    return type(f"{cls.__name__}Draft", (), {"__slots__": slots, "__module__": cls.__module__})
