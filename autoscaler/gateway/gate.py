"""One model's state in the gateway (`service.Gateway` keeps one `Gate` per model): its hold
queue, the futures of its held requests, what the lookups of its deployment said (the route,
whether it has answered yet, whether it failed), and the tasks that run while something is held.

A lookup that failed (a provider outage) says nothing about the deployment but that it cannot
be reached now: not ready, never failed.
Must not live here: when to look up, hold or refuse (`service.py`), the queue's rules
(`hold.py`).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from autoscaler.gateway import hold
from autoscaler.gateway.routes import Failed, ModelRoute
from autoscaler.providers.base import InferenceRoute


@dataclass
class Gate:
    route: ModelRoute
    queue: hold.HoldQueue
    upstream: InferenceRoute | None = None
    resolved: bool = False  # looked up at least once
    warming: bool = False  # found ready, has not answered yet: a 404 is start-up
    checked_at: float = -math.inf
    failed: Failed | None = None  # the last lookup found the deployment failed
    failed_at: float = -math.inf  # when a lookup last found it failed
    failure_told: bool = False  # logged, and no lookup found it otherwise since
    waiters: dict[int, asyncio.Future[str]] = field(default_factory=dict)
    watcher: asyncio.Task[None] | None = None
    activating: asyncio.Task[None] | None = None
    refreshing: asyncio.Task[None] | None = None

    def looked_up(
        self, answer: InferenceRoute | Failed | None, now: float, *, answered: bool = True
    ) -> InferenceRoute | None:
        """Remember a lookup's answer (`answered` False: the lookup failed, `answer` None);
        the route to send requests to, or None (not ready, or failed)."""
        self.failed = answer if isinstance(answer, Failed) else None
        if self.failed is not None:
            self.failed_at = now
        elif answered:
            self.failure_told = False
        found = None if isinstance(answer, Failed) else answer
        self.resolved = True
        self.checked_at = now
        if found is not None and found != self.upstream:
            self.warming = True
        self.upstream = found
        if found is None:
            self.queue.mark_not_ready()
        return found

    def refuses_failed(self, now: float, within: float) -> bool:
        """Requests must be refused, not held: the last lookup, at most `within` seconds ago,
        found the deployment failed, and the daemon will not recreate it."""
        return (
            self.route.refuse_failed and self.failed is not None and now - self.failed_at < within
        )

    def settle(self, rids: Iterable[int], result: str) -> None:
        """End the waits of the held requests `rids` (which have left the queue) with `result`:
        "released", or a refusal reason."""
        for rid in rids:
            future = self.waiters.get(rid)
            if future is not None and not future.done():
                future.set_result(result)
