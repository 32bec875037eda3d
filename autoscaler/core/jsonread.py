"""Checks shared by the core's readers of its stored JSON form (profile.py, objective_memory.py)."""

from __future__ import annotations

import math


def finite(v: object, where: str) -> float:
    """`v` as a float: a finite int or float (not a bool), else a ValueError naming `where`."""
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ValueError(f"{where}: expected a finite number, got {v!r}")
    return float(v)
