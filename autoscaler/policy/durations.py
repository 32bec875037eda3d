"""Durations in policy and config files: `"15s"`, `"5m"`, `"1h30m"`, `"500ms"` or seconds.

Only parsing lives here; the loader turns a `ValueError` into a located `PolicyError`.
"""

from __future__ import annotations

import math
import re

from autoscaler.policy.errors import quote

# Seconds per unit. Longest suffix first so "ms" is not read as "m" followed by "s".
UNITS: dict[str, float] = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

_NUMBER = r"\d+(?:\.\d+)?"
_PART = re.compile(rf"({_NUMBER})(ms|s|m|h|d)", re.ASCII)
_WHOLE = re.compile(rf"(?:{_NUMBER}(?:ms|s|m|h|d))+", re.ASCII)
_PLAIN = re.compile(_NUMBER, re.ASCII)

DURATION_PATTERN = rf"^\s*(?:{_NUMBER}|(?:{_NUMBER}(?:ms|s|m|h|d))+)\s*$"
"""The string forms `parse_duration` accepts, as a regex (used by the JSON Schema too)."""

MAX_SECONDS = 365 * 86400.0
"""The longest duration a file may set: a year is past any real window or timeout, and far
below what the scheduler's dates and timers hold (a larger interval crashed the daemon)."""

HINT = 'a duration like "15s", "5m", "1h30m", "500ms" or a number of seconds'


def parse_duration(value: object) -> float:
    """Seconds in `value`: a non-negative number, or a string of `<number><unit>` parts.

    Units are ms, s, m, h and d; parts may be combined (`1h30m`, `2m30s`). A bare numeric
    string counts as seconds. Raises `ValueError` naming the accepted forms otherwise.
    """
    if isinstance(value, bool):
        raise ValueError(f"must be {HINT}, got boolean {str(value).lower()}")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:
            raise ValueError(f"must be {HINT}, got a number too large") from None
        return _checked(seconds, value)
    if not isinstance(value, str):
        raise ValueError(f"must be {HINT}, got {type(value).__name__}")
    text = value.strip()
    if _PLAIN.fullmatch(text):
        return _checked(float(text), value)
    if not _WHOLE.fullmatch(text):
        raise ValueError(f"must be {HINT}, got {_quote(value)}")
    total = sum(float(number) * UNITS[unit] for number, unit in _PART.findall(text))
    return _checked(total, value)


def _checked(seconds: float, original: object) -> float:
    if not math.isfinite(seconds):
        raise ValueError(f"must be {HINT}, got {_show(original)}")
    if seconds < 0:
        raise ValueError(f"must not be negative, got {_show(original)}")
    return seconds


def _show(value: object) -> str:
    return _quote(value) if isinstance(value, str) else repr(value)


def _quote(text: str) -> str:
    return quote(text, 40)  # escaped: a line break in the value must not split the error line
