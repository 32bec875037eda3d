"""Times and durations as people read them: ISO 8601 instants and `4m10s` durations.

Pure formatting of values the caller passes in (the core gets `now` as epoch seconds); no
clock is read here. Used by the core's messages, `/status`, the logs and the CLI, so every
place writes a time the same way.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def iso(t: float | None) -> str | None:
    """Epoch seconds -> `2026-12-01T02:06:45Z` (UTC, whole seconds; milliseconds when the
    instant has a fraction worth showing). None stays None; an instant outside the years
    1-9999 (which ISO 8601 and `datetime` cannot write; a corrupt stored time) is written as
    epoch seconds."""
    if t is None or not math.isfinite(t):
        return None
    try:
        moment = datetime.fromtimestamp(t, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return f"epoch {t:.6g}s"
    if moment.microsecond >= 1000:
        text = moment.isoformat(timespec="milliseconds")
    else:
        text = moment.replace(microsecond=0).isoformat()
    return text.replace("+00:00", "Z")


def setting(seconds: float) -> str:
    """`duration` of a policy setting (a window, a cooldown, a period): the same few values
    come back every decision, so their text is remembered (a pure memo, bounded)."""
    text = _SETTINGS.get(seconds)
    if text is None:
        text = duration(seconds)
        if len(_SETTINGS) < _MAX_SETTINGS:
            _SETTINGS[seconds] = text
    return text


_MAX_SETTINGS = 1024
_SETTINGS: dict[float, str] = {}


def duration(seconds: float) -> str:
    """Seconds -> `4m10s`, `1h`, `2d3h`, `750ms`, `0s`; negative durations get a `-`.

    Milliseconds below a second, tenths below a minute, whole seconds above."""
    if not math.isfinite(seconds):
        return str(seconds)
    if seconds < 0:
        return "-" + duration(-seconds)
    if seconds < 1:
        ms = round(seconds * 1000)
        return "0s" if ms == 0 else ("1s" if ms >= 1000 else f"{ms}ms")
    if seconds < 60 and round(seconds, 1) != round(seconds):
        return f"{round(seconds, 1):g}s"  # 59.6s < 1m must not read as 1m < 1m
    rest = round(seconds)
    parts = []
    for unit, size in _UNITS:
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
