"""Checks shared by the core's readers of its stored JSON form (state.py, profile.py,
objective_memory.py)."""

from __future__ import annotations

import math


def is_finite_number(v: object) -> bool:
    """An int or float (not a bool) that is a finite float. JSON integers have no size limit,
    and one past the float range raises OverflowError wherever it is used as a number."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def finite(v: object, where: str) -> float:
    """`v` as a float: a finite int or float (not a bool), else a ValueError naming `where`."""
    if isinstance(v, int | float) and is_finite_number(v):
        return float(v)
    raise ValueError(f"{where}: expected a finite number, got {_short(v)}")


def _short(v: object) -> str:
    text = repr(v)
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)"


COUNT_MAX = 2**53  # counts past this are not stored by the core and would not survive a float


def is_count(v: object, minimum: int = 0) -> bool:
    """An int (not a bool) in [minimum, 2**53]: a replica count, a number of events."""
    return isinstance(v, int) and not isinstance(v, bool) and minimum <= v <= COUNT_MAX


def count(v: object, where: str, minimum: int = 0) -> int:
    """`v` as a count (`is_count`), else a ValueError naming `where`."""
    if isinstance(v, int) and is_count(v, minimum):
        return v
    raise ValueError(f"{where}: expected an integer >= {minimum}, got {_short(v)}")
