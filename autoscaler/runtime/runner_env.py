"""What a `PolicyRunner` is given and what it shows: `RunnerEnv` (shared by every runner,
provided by the daemon) and `RunnerStatus` (one policy's /status figures, written by
`record.py`). Their own module so that `runner.py` and `record.py` both import them without
importing each other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from autoscaler.policy.model import DaemonConfig
from autoscaler.runtime.actions import ActionContext
from autoscaler.runtime.protocols import Recorder
from autoscaler.runtime.reads import SourcePool
from autoscaler.store.base import FencedError, Store

DEFAULT_WAIT_READY = 1800.0  # seconds, for a provider profile that is gone (reloaded away)


@dataclass
class RunnerEnv:
    """What every runner shares, provided by the daemon. Questions the runner asks (the clock,
    the config in force, whether it may act) and the two places it hands results to: the
    leadership (`on_fenced`) and `record.py` (recorder, history, fast watch)."""

    store: Store
    recorder: Recorder
    clock: Callable[[], float]  # unix seconds; the core's `now`
    actions: ActionContext
    sources: SourcePool
    config: Callable[[], DaemonConfig]  # the config in force (a reload replaces it)
    can_act: Callable[[], bool]  # leader (or no election), takeover finished
    on_fenced: Callable[[FencedError], Awaitable[None]]
    set_fast_watch: Callable[[str, bool], None]
    # (policy, t, observation, decision) -> the decision history (history.HistoryBuffer.add)
    record_history: Callable[[str, float, dict[str, Any], dict[str, Any]], None] | None = None

    def fast_poll(self) -> float:
        return self.config().zero_poll_interval

    def wait_ready_timeout(self, provider: str) -> float:
        profile = self.config().providers.get(provider)
        return profile.wait_ready_timeout if profile else DEFAULT_WAIT_READY


@dataclass
class RunnerStatus:
    last_observation: dict[str, Any] | None = None
    last_decision: dict[str, Any] | None = None
    last_error: str | None = None
    transition: str | None = None  # "initializing", "recreating", ...
    evaluations: int = 0
