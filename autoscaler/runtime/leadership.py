"""Leadership: who may act. Election, takeover, fencing, and the epoch every store write
carries.

Without a lease (SQLite, one daemon) this daemon always leads. With one (PostgreSQL, several
daemons, `autoscaler.store.leader.Leadership`) it acts only while leader: every provider
action is preceded by `check()` and every store write carries the term's epoch. A
`FencedError` makes it step down at once. On election it forgets what it believed (the
previous leader changed the store), reloads every policy's state, finishes every pending
intent (`reconcile`), and only then acts again: until then `can_act()` is false.

Must not live here: the lease itself (`store/leader.py`), what an evaluation does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

import anyio
import anyio.abc
import structlog
from anyio.abc import TaskStatus

from autoscaler.runtime.protocols import Recorder
from autoscaler.runtime.runner import PolicyRunner
from autoscaler.store.base import FencedError, Store

log = structlog.get_logger("autoscaler.daemon")

TAKEOVER_LOADS = 4  # concurrent state loads on election (the pool also serves the lease)


class LeadershipLike(Protocol):
    """What the daemon needs of `autoscaler.store.leader.Leadership`."""

    @property
    def is_leader(self) -> bool: ...

    @property
    def epoch(self) -> int | None: ...

    async def check(self) -> int: ...

    async def run(self, *, task_status: TaskStatus[None] = ...) -> None: ...


class LeaderRole:
    """This daemon's part in the election. `runners` and `reconcile` are the daemon's: a
    takeover reloads the one and runs the other."""

    def __init__(
        self,
        recorder: Recorder,
        lease: LeadershipLike | None,
        runners: Callable[[], Iterable[PolicyRunner]],
        reconcile: Callable[[], Awaitable[None]],
    ) -> None:
        self.recorder = recorder
        self.lease = lease
        self._runners = runners
        self._reconcile = reconcile
        self.fenced = False  # stepped down without election (cannot happen with one)
        self.needs_reconcile = False  # elected, takeover not finished: no action yet
        self.term_epoch: int | None = None
        self._scope: anyio.CancelScope | None = None
        self._done = anyio.Event()
        self._takeovers: anyio.abc.TaskGroup | None = None  # lives with the lease loop
        self._takeover_done: anyio.Event | None = None

    # -- who may act --------------------------------------------------------------------------

    def epoch(self) -> int | None:
        """The epoch every store write carries: the term we were last elected in (never None
        under election, so a write after losing the lease is refused, not unfenced)."""
        if self.lease is None:
            return None
        return self.term_epoch if self.term_epoch is not None else -1

    async def check(self) -> None:
        """Before every provider call: raises FencedError unless we lead now."""
        if self.fenced:
            raise FencedError("this daemon stepped down")
        if self.lease is not None:
            await self.lease.check()

    def can_act(self) -> bool:
        if self.fenced or self.needs_reconcile:
            return False
        return self.lease is None or bool(self.lease.is_leader)

    def role(self) -> str:
        if self.lease is None:
            return "leader"
        return "leader" if self.can_act() else "standby"

    def status(self) -> dict[str, Any]:
        return {"role": self.role(), "epoch": self.epoch()}

    # -- election -----------------------------------------------------------------------------

    def elect_on(self, store: Store, ttl: float) -> None:
        """A shared (PostgreSQL) store: take part in its election."""
        from autoscaler.store.leader import Leadership

        self.lease = Leadership(
            store,
            getattr(store, "cluster", "default"),
            ttl=ttl,
            on_elected=self.on_elected,
            on_lost=self.on_lost,
        )

    async def first_election(self, tg: anyio.abc.TaskGroup) -> None:
        """Start the lease loop and wait until the first election (and its takeover) settled:
        no action before that."""
        assert self.lease is not None
        self.needs_reconcile = True
        await tg.start(self.run)
        while self._takeover_done is not None and not self._takeover_done.is_set():
            await self._takeover_done.wait()  # (a newer term may replace the event)
        self.needs_reconcile = False
        if not self.lease.is_leader:
            self.recorder.leadership(False, 0)
            log.info("standby", note="another daemon leads; evaluating without acting")

    async def on_elected(self, epoch: int) -> None:
        """Leader now: forget what we believed, finish every pending intent, then act again.

        The lease loop awaits this callback and renews only after it, so the reload runs in a
        task beside the loop: reloading thousands of policies inline outlasted the lease, and
        the leader lost it and was re-elected over and over without ever acting (10,000
        policies, 15 s ttl). Until the task is done, can_act() is false."""
        self.recorder.leadership(True, epoch)
        self.term_epoch = epoch
        self.needs_reconcile = True
        if self._takeovers is None:
            await self._take_over(epoch)
            return
        done = anyio.Event()
        self._takeover_done = done
        self._takeovers.start_soon(self._take_over, epoch, done)

    async def _take_over(self, epoch: int, done: anyio.Event | None = None) -> None:
        limiter = anyio.CapacityLimiter(TAKEOVER_LOADS)

        async def reload(runner: PolicyRunner) -> None:
            # Every runner's lock is waited for at once: a standby's evaluation holds it while
            # it waits for a shared provider list (seconds with 10,000 deployments), and
            # waiting for them one after another took minutes. The loads are bounded.
            async with runner.lock, limiter:
                if self.term_epoch == epoch:
                    await runner.load()

        try:
            async with anyio.create_task_group() as reloads:
                for runner in list(self._runners()):
                    reloads.start_soon(reload, runner)
            if self.term_epoch != epoch:
                return  # that term ended meanwhile; a newer takeover does the work
            self.fenced = False
            self.needs_reconcile = False
            await self._reconcile()
        except Exception as exc:
            self.needs_reconcile = False
            log.error("election_reconcile_failed", error=str(exc))
        finally:
            if done is not None:
                done.set()

    async def on_lost(self, epoch: int) -> None:
        self.recorder.leadership(False, epoch)
        log.warning("leadership_lost", epoch=epoch, note="standing by; no provider action")

    async def on_fenced(self, exc: FencedError) -> None:
        if not self.fenced:
            log.error("fenced", error=str(exc), note="another daemon leads; standing down")
        if self.lease is not None:
            # The lease loop re-elects us (or not); until then can_act() is false because
            # the lease says so. Without election a fence cannot happen (no epochs). The
            # epoch gauge keeps the term last held, as its help text says.
            self.recorder.leadership(False, self.term_epoch or 0)
        else:
            self.fenced = True

    # -- the lease loop -----------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        assert self.lease is not None
        try:
            with anyio.CancelScope() as scope:
                self._scope = scope
                async with anyio.create_task_group() as takeovers:
                    self._takeovers = takeovers
                    await self.lease.run(task_status=task_status)
        finally:
            self._takeovers = None
            self._done.set()

    async def release(self) -> None:
        """Release the lease (Leadership does it, shielded and bounded) before the store
        closes, so a standby takes over at once instead of after the TTL."""
        if self._scope is not None:
            self._scope.cancel()
            with anyio.move_on_after(5):
                await self._done.wait()
