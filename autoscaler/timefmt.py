"""Times as people read them: unix seconds -> ISO 8601 in UTC (`2026-12-01T02:15:42Z`).

For `/status` and messages; the core keeps plain floats."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_utc(t: float | None) -> str | None:
    """`t` (unix seconds) as ISO 8601 UTC to the second, or None."""
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
