"""When evaluations run: one APScheduler 3 job per policy, plus a zero-watch job while a
deployment is at zero.

Lives here: the scheduler wrapper (job ids, triggers, jitter, the start spread) and the
evaluation-lag bookkeeping (APScheduler tells us when a run was due through its submission
event; the job reads it back when it starts). What runs in a job lives in `runner.py`.
Must not live here: decisions, provider or store calls.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

EvalJob = Callable[[str, float], Awaitable[None]]
"""`job(policy_name, due_epoch)`: the evaluation coroutine a scheduled run calls."""


def jitter_for(interval: float) -> float:
    """A little jitter so policies with one interval do not fire in lockstep; never more than
    a second, never more than 5% of the interval (short test intervals stay tight)."""
    return min(1.0, interval * 0.05)


def start_spread(interval: float, policy_count: int) -> float:
    """How far the first runs are spread: a handful of policies start at once, a fleet of
    thousands is spread over (at most) one interval instead of firing in one burst."""
    return min(interval, 0.05 + policy_count * 0.0015)


class PolicyScheduler:
    """Owns the AsyncIOScheduler. Must be started inside a running asyncio loop."""

    def __init__(self) -> None:
        self._scheduler: AsyncIOScheduler | None = None
        self._due: dict[str, float] = {}  # job id -> epoch the pending run was due

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._scheduler = AsyncIOScheduler(
            event_loop=loop, timezone=UTC, job_defaults={"max_instances": 1}
        )
        self._scheduler.add_listener(self._on_submitted, EVENT_JOB_SUBMITTED)
        self._scheduler.start()

    @property
    def running(self) -> bool:
        return self._scheduler is not None and self._scheduler.running

    def _on_submitted(self, event: JobSubmissionEvent) -> None:
        # Called synchronously by the scheduler right after it created the job's task and
        # before that task runs, so the job always finds its own due time.
        if event.scheduled_run_times:
            self._due[event.job_id] = event.scheduled_run_times[-1].timestamp()

    def due_time(self, job_id: str) -> float | None:
        return self._due.pop(job_id, None)

    def _sched(self) -> AsyncIOScheduler:
        if self._scheduler is None:
            raise RuntimeError("scheduler not started")
        return self._scheduler

    def add_policy(
        self, name: str, interval: float, job: Callable[..., Awaitable[None]], *, first_in: float
    ) -> None:
        self._add(f"eval:{name}", name, interval, job, first_in=first_in)

    def add_zero_watch(
        self, name: str, interval: float, job: Callable[..., Awaitable[None]]
    ) -> None:
        if self._sched().get_job(f"zero:{name}") is None:
            self._add(f"zero:{name}", name, interval, job, first_in=interval)

    def remove_zero_watch(self, name: str) -> None:
        self._remove(f"zero:{name}")

    def has_zero_watch(self, name: str) -> bool:
        return self._scheduler is not None and self._sched().get_job(f"zero:{name}") is not None

    def remove_policy(self, name: str) -> None:
        self._remove(f"eval:{name}")
        self._remove(f"zero:{name}")

    def run_soon(self, name: str) -> None:
        """Bring the policy's next scheduled run forward to now (work arrived, deployment
        became ready); coalescing and max_instances keep it from overlapping a running one."""
        job = self._sched().get_job(f"eval:{name}")
        if job is not None:
            job.modify(next_run_time=datetime.now(UTC))

    def _add(
        self,
        job_id: str,
        name: str,
        interval: float,
        job: Callable[..., Awaitable[None]],
        *,
        first_in: float,
    ) -> None:
        self._remove(job_id)
        now = datetime.now(UTC)
        # Each job gets its own phase on the interval grid: without it every policy added in
        # one go fires in the same instant every interval (a thundering herd whose tail is
        # the evaluation lag). The first run comes sooner (`first_in`), then the grid.
        phase = timedelta(seconds=random.uniform(0.0, interval))
        self._sched().add_job(
            job,
            IntervalTrigger(
                seconds=interval,
                jitter=jitter_for(interval),
                timezone=UTC,
                start_date=now + phase,
            ),
            args=[name, job_id],
            id=job_id,
            name=job_id,
            max_instances=1,  # never two runs of one policy at once
            coalesce=True,  # runs missed while busy collapse into one
            misfire_grace_time=max(1, int(interval)),
            next_run_time=now + timedelta(seconds=random.uniform(0.0, first_in)),
        )

    def _remove(self, job_id: str) -> None:
        if self._scheduler is None:
            return
        if self._scheduler.get_job(job_id) is not None:
            self._scheduler.remove_job(job_id)
        self._due.pop(job_id, None)

    def pause(self) -> None:
        """Fire nothing more; jobs stay registered (shutdown drains before it stops)."""
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.pause()

    def stop(self) -> None:
        """Stop firing new runs; runs already started are awaited by the daemon."""
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def jobs(self) -> list[Any]:
        return [] if self._scheduler is None else list(self._scheduler.get_jobs())
