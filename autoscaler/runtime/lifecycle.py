"""The daemon's lifecycle: where it is between starting and stopped, and the work in flight.

Lives here: started, stopping, the stop request and the `stopped` event, the task group the
daemon runs in, and the count of in-flight evaluations with the drain that waits for them
(`shutdown.py` bounds and shields it). Every evaluation the daemon runs, scheduled or asked
for, goes through `tracked`, so a drain waits for admin and gateway activations too.

Must not live here: what is started or closed (`daemon.py` orders that; `connections.py`,
`policyset.py`), signals (`shutdown.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import anyio
import anyio.abc


class Lifecycle:
    def __init__(self) -> None:
        self.started = False  # config loaded, policies scheduled: ready
        self.stopping = False  # draining: nothing new runs
        self.tg: anyio.abc.TaskGroup | None = None  # the daemon's, while `Daemon.run` runs
        self.stopped = anyio.Event()  # set once `Daemon.run` has drained and closed everything
        self._stop = anyio.Event()
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    # -- stopping -------------------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    async def wait_for_stop_request(self) -> None:
        await self._stop.wait()

    # -- work in flight ---------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        return self._inflight

    async def tracked(self, work: Awaitable[object]) -> None:
        """Run one evaluation, counted as in flight while it runs."""
        self._inflight += 1
        self._idle.clear()
        try:
            await work
        finally:
            self._inflight -= 1
            if self._inflight == 0:
                self._idle.set()

    async def drain(self, timeout: float) -> bool:
        """Stopping from now on; wait up to `timeout` for the in-flight evaluations. True when
        all finished."""
        self.stopping = True
        with anyio.move_on_after(timeout):
            await self._idle.wait()
        return self._idle.is_set()
