"""Leader election on top of a store's lease: who of several daemons may act right now.

`Leadership.run()` takes or renews the lease every `ttl / 3`. Being leader is judged twice:
- by the database, which grants the lease and fences writes by epoch (`FencedError`);
- locally, by the monotonic clock: leadership lasts `ttl - safety_margin` from the moment the
  last successful renewal was *sent*. The database's lease runs at least `ttl` from a later
  moment, so this daemon always stops believing it leads before another daemon can be granted
  the lease. A process that was paused (SIGSTOP, a long GC, a frozen VM) wakes up already
  past its local deadline, so `check()` refuses before it can act.

The daemon calls `await leadership.check()` right before every provider action and passes the
returned epoch to every store write. Nothing here talks to a provider.
"""

from __future__ import annotations

import inspect
import math
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Literal

import anyio
import structlog
from anyio.abc import TaskStatus

from autoscaler.store.base import FencedError, Lease, Store, StoreError

log = structlog.get_logger("autoscaler.leader")

Callback = Callable[[int], Awaitable[None] | None]


def default_holder() -> str:
    """hostname:pid:random, unique per daemon run (a restarted daemon is a new holder)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Leadership:
    """Takes and keeps the lease of one cluster; tells whether this daemon may act."""

    def __init__(
        self,
        store: Store,
        cluster: str = "default",
        *,
        ttl: float = 15.0,
        holder: str | None = None,
        safety_margin: float | None = None,
        on_elected: Callback | None = None,
        on_lost: Callback | None = None,
        release_on_exit: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not ttl > 0:
            raise ValueError(f"leader lease ttl must be positive seconds, got {ttl!r}")
        margin = ttl * 0.2 if safety_margin is None else safety_margin
        renew_every = ttl / 3
        if not 0 <= margin < ttl - renew_every:
            raise ValueError(
                f"leader safety margin {margin!r}s must be >= 0 and leave room for a renewal "
                f"every {renew_every:.3g}s inside the {ttl!r}s lease"
            )
        self.store = store
        self.cluster = cluster
        self.ttl = ttl
        self.holder = holder or default_holder()
        self.safety_margin = margin
        self.renew_every = renew_every
        self.release_on_exit = release_on_exit
        self._on_elected = on_elected
        self._on_lost = on_lost
        self._clock = clock
        self._epoch: int | None = None
        self._valid_until = -math.inf  # local monotonic deadline of the current term
        self._announced = False  # elected was announced and lost not yet
        self._changed = anyio.Event()
        self.last_error: str | None = None

    def __repr__(self) -> str:
        return f"Leadership(cluster={self.cluster!r}, holder={self.holder!r}, role={self.role})"

    # ---- what the daemon reads ---------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        return self._epoch is not None and self._clock() < self._valid_until

    @property
    def epoch(self) -> int | None:
        """The current term's epoch while leader, else None."""
        return self._epoch if self.is_leader else None

    @property
    def role(self) -> Literal["leader", "standby"]:
        return "leader" if self.is_leader else "standby"

    async def check(self) -> int:
        """The epoch to act under; FencedError when this daemon must not act now."""
        epoch = self._epoch
        if epoch is None or self._clock() >= self._valid_until:
            raise FencedError(
                f"{self.holder} does not hold the lease of cluster {self.cluster!r}"
                + (f" (last error: {self.last_error})" if self.last_error else "")
            )
        return epoch

    async def wait_elected(self) -> int:
        """Until this daemon leads; returns the epoch."""
        while not self.is_leader:
            await self._changed.wait()
        assert self._epoch is not None
        return self._epoch

    async def wait_lost(self) -> None:
        """Until this daemon has stepped down (returns at once when it does not lead)."""
        while self._announced:
            await self._changed.wait()

    # ---- the loop ----------------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Renew until cancelled, then release the lease. `started` fires after the first
        attempt, so right after `await tg.start(leadership.run)` the role is known."""
        try:
            await self.renew_once()
            task_status.started()
            while True:
                await anyio.sleep(self._next_wait())
                await self._expire_if_due()
                await self.renew_once()
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(max(self.renew_every, 1)):
                await self._shutdown()

    def _next_wait(self) -> float:
        if not self._announced:
            return self.renew_every
        # Wake up at the local deadline at the latest, to announce the loss on time.
        return max(0.0, min(self.renew_every, self._valid_until - self._clock()))

    async def renew_once(self) -> Lease | None:
        """One take-or-renew attempt; updates the role. Returns the lease when held."""
        sent = self._clock()
        timeout = max(self.renew_every, 0.1)
        try:
            with anyio.fail_after(timeout):
                lease = await self.store.acquire_lease(self.cluster, self.holder, self.ttl)
        except (StoreError, TimeoutError) as exc:
            if isinstance(exc, TimeoutError):
                self.last_error = f"lease renewal got no answer within {timeout:.3g}s"
            else:
                self.last_error = f"lease renewal failed: {exc}"
            log.warning("lease_renewal_failed", cluster=self.cluster, error=self.last_error)
            await self._step_down("renewal failed")
            return None
        if lease is None:
            self.last_error = None
            await self._step_down("lease held by another daemon")
            return None
        if self._epoch is not None and self._epoch != lease.epoch:
            # Our term ended while we were not looking (the lease lapsed); a new one begins.
            await self._step_down("term ended")
        self.last_error = None
        was_leading = self._announced
        self._epoch = lease.epoch
        self._valid_until = sent + self.ttl - self.safety_margin
        if not was_leading and self.is_leader:
            self._announced = True
            log.info("became_leader", cluster=self.cluster, holder=self.holder, epoch=lease.epoch)
            self._notify()
            await self._call(self._on_elected, lease.epoch)
        return lease

    async def _expire_if_due(self) -> None:
        if self._announced and self._clock() >= self._valid_until:
            await self._step_down("renewal overdue")

    async def _step_down(self, reason: str) -> None:
        epoch = self._epoch
        self._epoch = None
        self._valid_until = -math.inf
        if self._announced:
            self._announced = False
            log.warning("lost_leadership", cluster=self.cluster, epoch=epoch, reason=reason)
            self._notify()
            await self._call(self._on_lost, epoch if epoch is not None else 0)

    async def _shutdown(self) -> None:
        await self._step_down("shutting down")
        # Release even when we believe we do not hold it: a renewal that timed out on our side
        # may have committed. Releasing a lease someone else holds changes nothing.
        if self.release_on_exit:
            try:
                await self.store.release_lease(self.cluster, self.holder)
            except StoreError as exc:
                # The lease then simply expires after its ttl.
                log.warning("lease_release_failed", cluster=self.cluster, error=str(exc))

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def _call(self, callback: Callback | None, epoch: int) -> None:
        if callback is None:
            return
        try:
            result = callback(epoch)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:  # a broken callback must not stop the lease loop
            log.error("leadership_callback_failed", error=repr(exc))
