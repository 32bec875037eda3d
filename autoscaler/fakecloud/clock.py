"""Clocks for the simulators: the wall clock, or a virtual clock that tests advance by hand.

The simulators compute every lifecycle step lazily from `clock.time()` on each request, so a
virtual clock makes a 15-minute provisioning take no real time at all.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Seconds since the epoch (used for timestamps and for every delay)."""
        ...


class WallClock:
    def time(self) -> float:
        return time.time()


class VirtualClock:
    """A clock that moves only when told to. `sleep` advances it (hand it to a client's
    `sleep=` so polling loops run instantly)."""

    def __init__(self, start: float = 1_767_225_600.0):  # 2026-01-01T00:00:00Z
        self._now = float(start)

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"cannot move a clock backwards ({seconds} s)")
        self._now += seconds

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))

    def monotonic(self) -> float:
        return self._now
