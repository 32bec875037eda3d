"""The request-level discrete-event simulation: every request, every replica, every decision.

Events, in time order (ties: lifecycle events, then completions, then the controller, then
arrivals, so a freed slot or a new replica is used by requests arriving at the same instant):
- a request arrives and joins one FIFO queue at the deployment (the gateway);
- queued requests start on the least busy ready replica with a free slot (at most
  `max_concurrency` each) and hold it for input/prefill_tps + output/decode_tps seconds (or the
  service model's time);
- a request that waited longer than `queue_timeout_s` is dropped;
- every `interval` the controller observes the deployment and the signals and decides; the
  decision goes to the `Deployment`, which behaves like a provider.

Deterministic: no clock, no randomness here (arrivals and sizes come in as arrays).
The fluid (aggregated) mode for very long traces lives in `aggregated.py`.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from autoscaler.simulate.controllers import Controller
from autoscaler.simulate.deployment import Deployment, DeploymentTiming
from autoscaler.simulate.signals import SIGNAL_WINDOW_S, Signals, SignalWindow

Progress = Callable[[float], None]  # called with the fraction of the run done

# After the last arrival the run continues until every request is served or dropped, but not
# forever: a policy that never serves its queue leaves those requests unserved (dropped).
DRAIN_LIMIT_S = 6 * 3600.0


@dataclass(frozen=True, slots=True)
class RunSettings:
    timing: DeploymentTiming = field(default_factory=DeploymentTiming)
    queue_timeout_s: float | None = None
    initial_replicas: int = 1  # used when the controller does not fix its own start
    # The trace starts mid-traffic, but a controller started at t=0 has empty windows and
    # sees an empty deployment: it would scale down at once. For `warmup_s` it observes and
    # decides (its windows fill as in a daemon that has been running) while the deployment
    # holds its opening size; decisions apply from then on. Costs and waits count from 0.
    warmup_s: float = 0.0


@dataclass
class RunResult:
    """Everything one run produced; `summary.summarize` turns it into figures."""

    name: str
    mode: str  # "request" or "aggregated"
    requests_total: float
    requests_served: float
    requests_dropped: float
    wait_values: np.ndarray  # waits of started requests (request mode) or histogram bin waits
    wait_weights: np.ndarray | None  # None: each value is one request
    timeline: list[tuple[float, int, int, int, float, float]]  # t, ready, prov, billed, w, r
    billed_replica_seconds: float
    scale_actions: Counter[str]
    end_s: float
    evaluations: int
    replica_hourly_usd: float | None
    # request mode only
    arrival_s: np.ndarray | None = None
    start_s: np.ndarray | None = None  # NaN when dropped
    end_s_each: np.ndarray | None = None
    replica: np.ndarray | None = None  # -1 when dropped
    replica_ready_s: np.ndarray | None = None  # when each replica became ready (NaN: never)
    replica_left_s: np.ndarray | None = None  # when each replica left (end of run if alive)
    max_active_per_replica: int = 0
    started_before_ready: int = 0
    # aggregated mode only: (t, how long the oldest queued work has waited) at each evaluation
    delay_series: list[tuple[float, float]] | None = None


def run_requests(
    controller: Controller,
    arrival_s: np.ndarray,
    service_s: np.ndarray,
    settings: RunSettings,
    progress: Progress | None = None,
) -> RunResult:
    """Simulate `controller` over requests (sorted arrivals with their service times).

    Long because it is the request simulator's hot loop (one pass over every arrival, completion
    and tick of a run, millions on a long trace): its state lives in locals and the closures
    beside them, where splitting it into functions would move it into an object and cost an
    attribute lookup per event.
    """
    timing = settings.timing
    mc = timing.max_concurrency
    arrivals: list[float] = arrival_s.tolist()
    services: list[float] = service_s.tolist()
    n = len(arrivals)
    start = [math.nan] * n
    finish = [math.nan] * n
    served_by = [-1] * n
    timeout = settings.queue_timeout_s
    horizon = arrivals[-1] if n else 0.0

    deployment = Deployment(timing)
    first = controller.initial_replicas
    deployment.start(0.0, settings.initial_replicas if first is None else first)
    queue: deque[int] = deque()
    completions: list[tuple[float, int, int]] = []  # (end time, request, replica id)
    timeline: list[tuple[float, int, int, int, float, float]] = []
    actions: Counter[str] = Counter()
    running = 0
    dropped = 0
    interval = controller.interval
    next_tick = 0.0 if interval else math.inf
    mean_service = float(service_s.mean()) if n else 0.0
    cv_service = float(service_s.std() / mean_service) if n and mean_service > 0 else 0.0
    window = SignalWindow(SIGNAL_WINDOW_S, mean_service, cv_service, weighted=False)
    i = 0
    max_active = 0
    early = 0
    progress_step = max(n // 200, 1)

    def record(now: float) -> None:
        ready, provisioning, _draining, billed = deployment.counts()
        timeline.append((now, ready, provisioning, billed, float(len(queue)), float(running)))

    def expire(now: float) -> None:
        nonlocal dropped
        if timeout is None:
            return
        while queue and arrivals[queue[0]] + timeout < now:
            queue.popleft()
            dropped += 1

    def dispatch(now: float) -> None:
        nonlocal running, max_active, early
        if not queue:
            return
        expire(now)
        if not queue:
            return
        candidates = [r for r in deployment.serving() if r.active < mc]
        while queue and candidates:
            replica = min(candidates, key=lambda r: (r.active, r.id))
            req = queue.popleft()
            replica.active += 1
            replica.served += 1
            if replica.active > max_active:
                max_active = replica.active
            if replica.ready_at > now:
                early += 1
            running += 1
            start[req] = now
            window.started(now - arrivals[req])
            end = now + services[req]
            finish[req] = end
            served_by[req] = replica.id
            heapq.heappush(completions, (end, req, replica.id))
            if replica.active >= mc:
                candidates.remove(replica)

    record(0.0)
    last_event = 0.0
    while True:
        t_arrival = arrivals[i] if i < n else math.inf
        t_done = completions[0][0] if completions else math.inf
        t_life = deployment.next_event_time()
        idle = i >= n and not completions and not queue
        if idle and t_life == math.inf:
            break
        t_tick = next_tick if (next_tick <= horizon or not idle) else math.inf
        now = min(t_arrival, t_done, t_life, t_tick)
        if now == math.inf or (i >= n and now > horizon + DRAIN_LIMIT_S):
            break  # requests still queued this long after the trace ends are never served
        last_event = now
        if t_life <= now:
            if deployment.advance(now):
                dispatch(now)
                record(now)
            continue
        if t_done <= now:
            while completions and completions[0][0] <= now:
                _, req, rid = heapq.heappop(completions)
                running -= 1
                window.completed(1.0, services[req])
                before = deployment.counts()[3]
                deployment.finished(deployment.replicas[rid], now)
                if deployment.counts()[3] != before:
                    record(now)
            dispatch(now)
            continue
        if t_tick <= now:
            expire(now)
            view = deployment.provider_view()
            ready = view.ready
            stats = window.close(now, interval or 1.0)
            signals = Signals(
                waiting=float(len(queue)),
                running=float(running),
                arrival_rate=stats.arrival_rate,
                utilization=min(running / (ready * mc), 1.0) if ready else 0.0,
                reporting=ready + deployment.counts()[2],
                completion_rate=stats.completion_rate,
                start_rate=stats.start_rate,
                service_time=stats.service_time,
                service_time_cv=stats.service_time_cv,
                wait_values=stats.wait_values,
                oldest_wait=now - arrivals[queue[0]] if queue else 0.0,
                startup_s=deployment.last_startup_s,
            )
            observation = controller.observe(view, signals)
            decision = controller.evaluate(observation, signals, now)
            label = "none"
            if now >= settings.warmup_s:
                label = deployment.apply(decision.action, decision.replicas, now)
            if label != "none":
                actions[label] += 1
            next_tick = now + (interval or math.inf)
            dispatch(now)
            record(now)
            continue
        # arrivals at `now`
        while i < n and arrivals[i] <= now:
            queue.append(i)
            i += 1
            window.arrived()
            if progress is not None and i % progress_step == 0:
                progress(i / n)
        dispatch(now)

    end_time = max(horizon, last_event)
    if completions:  # stopped at the drain limit with requests still being served
        end_time = max(end_time, max(c[0] for c in completions))
    deployment.close(end_time)
    record(end_time)
    billed = sum(r.billed_seconds for r in deployment.replicas)
    start_arr = np.asarray(start, dtype=np.float64)
    arr = np.asarray(arrivals, dtype=np.float64)
    started = ~np.isnan(start_arr)
    waits = (start_arr - arr)[started]
    return RunResult(
        name=controller.name,
        mode="request",
        requests_total=float(n),
        requests_served=float(started.sum()),
        requests_dropped=float(n - int(started.sum())),  # timed out, or never served
        wait_values=waits,
        wait_weights=None,
        timeline=timeline,
        billed_replica_seconds=billed,
        scale_actions=actions,
        end_s=end_time,
        evaluations=getattr(controller, "evaluations", 0),
        replica_hourly_usd=controller.replica_hourly_usd,
        arrival_s=arr,
        start_s=start_arr,
        end_s_each=np.asarray(finish, dtype=np.float64),
        replica=np.asarray(served_by, dtype=np.int64),
        replica_ready_s=np.asarray(
            [math.nan if r.became_ready is None else r.became_ready for r in deployment.replicas]
        ),
        replica_left_s=np.asarray(
            [math.nan if r.left_at is None else r.left_at for r in deployment.replicas]
        ),
        max_active_per_replica=max_active,
        started_before_ready=early,
    )
