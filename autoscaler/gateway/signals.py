"""What a `gateway` metric source reads inside this process, with no scrape in between.

`SignalHub` joins two kinds of demand: the gateway running in this process (its `Stats`), and
the held counts separate gateway processes send with their activation requests (kept for
`REPORT_TTL` seconds, renewed while they keep holding). The second is how a daemon that just
started, or just became leader, sees requests that were held before it existed.
Separate gateways' full signals are read from their `/signals` (the source's `urls`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from autoscaler.gateway.stats import Stats, Window

REPORT_TTL = 15.0  # seconds a reported held count counts without being renewed


@dataclass
class SignalHub:
    clock: Callable[[], float] = time.monotonic
    local: list[Stats] = field(default_factory=list)  # gateways in this process
    _reports: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)

    def attach(self, stats: Stats) -> None:
        if stats not in self.local:
            self.local.append(stats)

    def detach(self, stats: Stats) -> None:
        if stats in self.local:
            self.local.remove(stats)

    def report(self, origin: str, held: Mapping[str, int], ttl: float = REPORT_TTL) -> None:
        """A separate gateway `origin` holds `held[model]` requests now."""
        expires = self.clock() + ttl
        for model, count in held.items():
            self._reports[(origin, model)] = (float(max(0, count)), expires)

    def windows(self, models: Iterable[str], window: float) -> list[Window]:
        now = self.clock()
        wanted = set(models)
        out = [stats.aggregate(m, window, now) for stats in self.local for m in wanted]
        for key, (held, expires) in list(self._reports.items()):
            if expires <= now:
                del self._reports[key]
            elif key[1] in wanted:
                out.append(Window(held=held, concurrency=held))
        return out


DEFAULT_HUB = SignalHub()
"""The process's hub: the daemon's gateway source reads it unless a test passes its own."""
