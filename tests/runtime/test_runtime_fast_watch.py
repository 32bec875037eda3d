"""The fast watch at zero wakes an evaluation exactly when the core's activation rule
(`core.zero.activity`) says there is work: the same rule the decision applies, not a copy.

The runner reads its metrics through a real `SourcePool` over an in-memory source; the
evaluation it would start is counted instead of run (the pass itself is covered by the loop
and crash tests).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import anyio
from hypothesis import given, settings
from hypothesis import strategies as st

from autoscaler.core.zero import activity
from autoscaler.policy.loader import load_policy_text
from autoscaler.policy.model import DaemonConfig, Policy
from autoscaler.runtime.actions import ActionContext
from autoscaler.runtime.evaluation import EvaluationResult
from autoscaler.runtime.metrics import Metrics
from autoscaler.runtime.reads import SourcePool
from autoscaler.runtime.runner import PolicyRunner
from autoscaler.runtime.runner_env import RunnerEnv
from autoscaler.sources.base import TemporarySourceError
from autoscaler.store.sqlite import SQLiteStore

POLICY = """name: idle
deployment:
  provider: sim
  name: idle
  create: {catalog_id: c, region: r, gpu_config_id: g, plan_id: p}
replicas: {min: 0, max: 4}
metrics:
  - name: queue
    source: {type: http_json, url: "http://unused.invalid/q", path: depth}
    target: {type: average_value, value: 5}
  - name: waiting
    source: {type: http_json, url: "http://unused.invalid/w", path: depth}
    target: {type: average_value, value: 5}
scale_to_zero:
  after: 5s
  activation: [{metric: queue, threshold: 2}, {metric: waiting, threshold: 0}]
"""

VALUES = st.one_of(
    st.none(),  # the source fails
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, 2.0, 2.0000001, -1.0]),
    st.floats(min_value=-10, max_value=10),
)


class Memory:
    """A source answering what the test put in `values` (None: the read fails)."""

    def __init__(self, values: dict[str, float | None], metric: str) -> None:
        self.values, self.metric = values, metric
        self.describe = f"memory {metric}"

    async def read(self) -> float:
        value = self.values[self.metric]
        if value is None:
            raise TemporarySourceError("memory", "down")
        return value

    async def aclose(self) -> None:
        pass


class Woken(PolicyRunner):
    """Counts the evaluations the watch starts instead of running them."""

    woke: int = 0

    async def evaluate(self, lag: float = 0.0) -> EvaluationResult | None:
        self.woke += 1
        return None


def runner(policy: Policy, values: dict[str, float | None], tmp: Path) -> Woken:
    def factory(spec: Any, *, name: str) -> Memory:
        return Memory(values, name)

    async def fenced(exc: Exception) -> None:
        raise AssertionError(exc)

    async def leader() -> None:
        pass

    store = SQLiteStore(str(tmp / "state.db"))  # never opened: the watch does not write
    env = RunnerEnv(
        store=store,
        recorder=Metrics(),
        clock=lambda: 1000.0,
        actions=ActionContext(store=store, epoch=lambda: None, check_leader=leader),
        sources=SourcePool(factory),
        config=lambda: DaemonConfig(policies=(), providers={}),
        can_act=lambda: True,
        on_fenced=fenced,
        set_fast_watch=lambda name, on: None,
    )
    woken = Woken(policy=policy, provider=None, env=env)  # type: ignore[arg-type]
    woken.attach_sources()
    woken.status_info.last_observation = {"status": "absent"}  # at zero, nothing in flight
    return woken


@settings(max_examples=60, deadline=None)
@given(queue=VALUES, waiting=VALUES)
def test_the_watch_wakes_exactly_when_the_core_sees_work(
    tmp_path_factory: Any, queue: float | None, waiting: float | None
) -> None:
    (policy,) = load_policy_text(POLICY)
    values = {"queue": queue, "waiting": waiting}
    watched = runner(policy, values, tmp_path_factory.mktemp("w"))
    anyio.run(watched.fast_watch)
    active, _text = activity(policy, values)
    assert watched.woke == (1 if active else 0), (values, _text)


def test_an_infinite_reading_is_a_failed_one_for_the_watch_as_for_the_decision(
    tmp_path: Path,
) -> None:
    """A copy of the rule (`value > threshold`) woke on +inf; the core counts it as failed."""
    (policy,) = load_policy_text(POLICY)
    watched = runner(policy, {"queue": math.inf, "waiting": 0.0}, tmp_path)
    anyio.run(watched.fast_watch)
    assert watched.woke == 0
    watched = runner(policy, {"queue": math.inf, "waiting": 0.5}, tmp_path)
    anyio.run(watched.fast_watch)
    assert watched.woke == 1  # work on the other activation metric still wakes it
