"""The loaded policies: one `PolicyRunner` per policy, the scheduler that runs them, and the
pending intents they finish before anything is scheduled.

Lives here: the runners by name, the policies the daemon started with, the scheduled jobs (one
evaluation job per policy, a fast watch while its deployment is at zero) and what a job does
when it fires, bringing a run forward (`run_soon`), and reconciling the pending intents of
the loaded policies. Every evaluation runs through the lifecycle's `tracked`, so a drain
waits for it.

Must not live here: building a runner from its provider and environment (`daemon.py`), what
an evaluation does (`runner.py`), who may act (`leadership.py`), a reload's changes
(`apply.py`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from autoscaler.policy.model import Policy
from autoscaler.runtime.actions import ActionContext
from autoscaler.runtime.lifecycle import Lifecycle
from autoscaler.runtime.protocols import UnknownPolicyError
from autoscaler.runtime.reconcile import reconcile_pending
from autoscaler.runtime.runner import PolicyRunner
from autoscaler.runtime.scheduling import PolicyScheduler, start_spread


class PolicySet:
    def __init__(
        self,
        policies: Sequence[Policy],
        lifecycle: Lifecycle,
        *,
        schedule: bool,
        zero_poll: Callable[[], float],
    ) -> None:
        self.initial = list(policies)  # what `Daemon.start` loads; reloads change `runners`
        self.runners: dict[str, PolicyRunner] = {}
        self.scheduler = PolicyScheduler()
        self.schedule_jobs = schedule  # False: tests drive `evaluate` themselves
        self.reconciled: list[dict[str, Any]] = []  # what the last reconcile did
        self._lifecycle = lifecycle
        self._zero_poll = zero_poll  # seconds between fast watches (the config in force)

    # -- the runners ---------------------------------------------------------------------------

    def runner(self, name: str) -> PolicyRunner:
        runner = self.runners.get(name)
        if runner is None:
            raise UnknownPolicyError(name)
        return runner

    def add(self, runner: PolicyRunner) -> None:
        self.runners[runner.name] = runner

    async def remove(self, name: str) -> PolicyRunner:
        """Stop evaluating `name` (its deployment is left as it is)."""
        gone = self.runners.pop(name)
        async with gone.lock:
            self.scheduler.remove_policy(name)
            await gone.detach_sources()
        return gone

    async def detach_sources(self) -> None:
        for runner in list(self.runners.values()):
            await runner.detach_sources()

    def status(self) -> dict[str, Any]:
        return {name: r.status() for name, r in sorted(self.runners.items())}

    async def evaluate(self, runner: PolicyRunner, lag: float = 0.0) -> None:
        await self._lifecycle.tracked(runner.evaluate(lag))

    # -- pending intents -----------------------------------------------------------------------

    async def reconcile(self, actions: ActionContext) -> None:
        """Finish every pending intent of the loaded policies (FencedError: we do not lead);
        what is still open, its runner finishes before its next decision."""
        policies = {name: r.policy for name, r in self.runners.items()}
        providers = {r.policy.deployment.provider: r.provider for r in self.runners.values()}
        self.reconciled, oldest = await reconcile_pending(actions, policies, providers)
        for runner in self.runners.values():
            runner.pending = oldest.get(runner.name)

    # -- scheduling ----------------------------------------------------------------------------

    def scheduling(self) -> bool:
        """Jobs are scheduled (False: tests drive `evaluate` themselves, or stopping)."""
        return self.schedule_jobs and self.scheduler.running and not self._lifecycle.stopping

    def start_scheduling(self) -> None:
        """Schedule every runner, their first runs spread by how many there are."""
        if not self.schedule_jobs:
            return
        self.scheduler.start()
        count = len(self.runners)
        for runner in self.runners.values():
            self.schedule(runner, count)

    def schedule(self, runner: PolicyRunner, count: int) -> None:
        interval = runner.policy.interval
        self.scheduler.add_policy(
            runner.name, interval, self._eval_job, first_in=start_spread(interval, count)
        )

    def run_soon(self, name: str) -> None:
        if self.scheduling():
            self.scheduler.run_soon(name)

    def set_fast_watch(self, name: str, on: bool) -> None:
        if not self.scheduling():
            return
        if on:
            self.scheduler.add_zero_watch(name, self._zero_poll(), self._fast_job)
        elif self.scheduler.has_zero_watch(name):
            self.scheduler.remove_zero_watch(name)

    async def _eval_job(self, name: str, job_id: str) -> None:
        due = self.scheduler.due_time(job_id)
        lag = max(0.0, time.time() - due) if due is not None else 0.0
        runner = self.runners.get(name)
        if runner is None or self._lifecycle.stopping:
            return
        await self.evaluate(runner, lag)

    async def _fast_job(self, name: str, job_id: str) -> None:
        self.scheduler.due_time(job_id)
        runner = self.runners.get(name)
        if runner is None or self._lifecycle.stopping:
            return
        await self._lifecycle.tracked(runner.fast_watch())
