"""Reading one field of a request trace row: a number, a token count, an arrival time in its
unit; and the check that the arrival times span a trace, not centuries. Every fault is a
`TraceError` naming `file:line`, the column and the text.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from autoscaler.simulate.trace_files import TraceError

TimeUnit = Literal["iso", "s", "ms", "us", "ns"]
TIME_UNITS: tuple[str, ...] = ("iso", "s", "ms", "us", "ns")
_PER_SECOND = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}

# More tokens than any model's context or output: a count above this is a corrupt field (or a
# byte count), and one such request would hold a slot for years and size the aggregated
# mode's service-time arrays by its length.
MAX_TOKENS = 100_000_000

# The longest trace the simulator replays: its cost grows with the span (every evaluation of
# every controller is simulated, idle or not). Published traces span days to four months; a
# longer span is a time in another unit (ns read as s) or a corrupt row, and would run for
# hours or exhaust memory.
MAX_SPAN_S = 400 * 86400.0

# A numeric arrival time (in seconds, after its unit) from this on is an epoch time
# (2000-01-01): no trace counted from its own start runs 30 years.
EPOCH_2000_S = 946_684_800.0


def guess_unit(name: str, sample: str) -> TimeUnit:
    """The unit of a mapped time column: from its name's suffix, else from its first value."""
    low = name.lower()
    for unit in ("ms", "us", "ns"):
        if low.endswith(unit):
            return unit
    if low.endswith("_s"):
        return "s"
    try:
        float(sample)
    except ValueError:
        return "iso"
    return "s"


def time_parser(unit: TimeUnit) -> Callable[[str, str, str], float]:
    """Seconds (since the epoch for ISO times) from a time field in `unit`."""
    per_second = _PER_SECOND.get(unit, 1.0)

    def seconds(text: str, where: str, column: str) -> float:
        value = number(text, where, column)
        return value / per_second if per_second != 1.0 else value

    def iso(text: str, where: str, column: str) -> float:
        if not text.strip():
            raise _missing(where, column)
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            raise TraceError(
                f"{where}: column {column!r}: {text!r} is not an ISO date-time "
                "(use --time-unit s, ms, us or ns for numbers)"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)  # trace timestamps without a zone are UTC
        return moment.timestamp()

    return iso if unit == "iso" else seconds


def _missing(where: str, column: str) -> TraceError:
    return TraceError(f"{where}: column {column!r} has no value (empty, or no such JSON key)")


def number(text: str, where: str, column: str) -> float:
    if not text.strip():
        raise _missing(where, column)
    try:
        value = float(text)
    except ValueError:
        raise TraceError(f"{where}: column {column!r}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise TraceError(f"{where}: column {column!r}: {text!r} is not a finite number")
    return value


def tokens(text: str, where: str, column: str) -> int:
    value = number(text, where, column)
    if value < 0 or value != int(value):
        raise TraceError(
            f"{where}: column {column!r}: {text!r} is not a token count (a whole number >= 0)"
        )
    if value > MAX_TOKENS:
        raise TraceError(
            f"{where}: column {column!r}: {text!r} is more tokens than any model reads or "
            f"writes (at most {MAX_TOKENS:,}): a corrupt field, or a column of another kind?"
        )
    return int(value)


def span_error(
    where: str, column: str, text: str, low: float, high: float, unit: str = " (see --time-unit)"
) -> TraceError:
    """The fault of a time that stretches the trace past `MAX_SPAN_S` (`low`..`high`: the
    earliest and latest arrival so far, this one included)."""
    days = (high - low) / 86400.0
    return TraceError(
        f"{where}: column {column!r}: {text!r} stretches the trace to {days:,.0f} days "
        f"(at most {MAX_SPAN_S / 86400:.0f}): a time in another unit{unit} or a corrupt row?"
    )
