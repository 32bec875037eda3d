"""The aggregated (fluid) mode: requests as amounts per time step, for traces too long to
simulate request by request (weeks of a rate trace are millions of requests).

Per step of `step_s` seconds: the arrivals of the step join a FIFO queue of cohorts; started
work occupies slots for a service time drawn from `ServiceBins` (the service-time
distribution's quantile groups, each split between the two neighbouring whole steps so the mean
is kept); queued amounts start when `ready x max_concurrency` has room. A cohort that starts j
steps after it arrived waited j x step_s, so waits have the step's resolution. Replicas removed
while still serving are billed for the slots they hold (ceil(running / max_concurrency) beyond
the ready count) until that work ends.

The controller loop is the same as in request mode: every `interval` it observes the same
signals and calls the real decision core; the `SimulatedDeployment` model is shared.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass

import numpy as np

from autoscaler.simulate.controllers import Controller
from autoscaler.simulate.deployment import SimulatedDeployment
from autoscaler.simulate.engine import DRAIN_LIMIT_S, Progress, RunResult, RunSettings
from autoscaler.simulate.signals import SIGNAL_WINDOW_S, Signals, SignalWindow
from autoscaler.simulate.traces import RateTrace, RequestTrace


@dataclass(frozen=True, slots=True)
class ServiceBins:
    """Service time as K equally likely groups, each completing after `lo` steps (weight
    `w_lo`) or `lo + 1` steps (weight `w_hi`)."""

    lo: tuple[int, ...]
    w_lo: tuple[float, ...]
    w_hi: tuple[float, ...]

    @property
    def longest(self) -> int:
        return max(self.lo) + 1

    def survival(self) -> np.ndarray:
        """P(a request started at step 0 still runs at step j), for j = 0..longest."""
        out = np.zeros(self.longest + 1)
        for lo, wl, wh in zip(self.lo, self.w_lo, self.w_hi, strict=True):
            out[:lo] += wl
            out[: lo + 1] += wh
        return out

    def mean_cv(self, step_s: float) -> tuple[float, float]:
        """Mean and coefficient of variation of the service time the groups carry."""
        steps = np.asarray([*self.lo, *(lo + 1 for lo in self.lo)], dtype=np.float64) * step_s
        weights = np.asarray([*self.w_lo, *self.w_hi])
        mean = float(np.sum(steps * weights) / np.sum(weights))
        var = float(np.sum(weights * (steps - mean) ** 2) / np.sum(weights))
        return mean, (math.sqrt(var) / mean if mean > 0 else 0.0)


def service_bins(service_s: np.ndarray, step_s: float, groups: int = 16) -> ServiceBins:
    ordered = np.sort(service_s)
    parts = np.array_split(ordered, min(groups, max(ordered.size, 1)))
    lo: list[int] = []
    w_lo: list[float] = []
    w_hi: list[float] = []
    for part in parts:
        if part.size == 0:
            continue
        steps = max(float(part.mean()) / step_s, 1.0)  # at least one step: no same-step exit
        whole = int(steps)
        frac = steps - whole
        share = part.size / ordered.size
        lo.append(whole)
        w_lo.append(share * (1.0 - frac))
        w_hi.append(share * frac)
    return ServiceBins(tuple(lo), tuple(w_lo), tuple(w_hi))


def rate_step_arrivals(trace: RateTrace, step_s: float, rng: np.random.Generator) -> np.ndarray:
    """Arrivals per step for a rate trace: mean rate x step, and the variance a gamma renewal
    process with the window's coefficient of variation has over a step (rate x step x cv^2);
    Poisson where cv is 1 or missing."""
    steps = math.ceil(trace.duration_s / step_s)
    t = np.arange(steps) * step_s
    window = np.clip(np.searchsorted(trace.window_start_s, t, side="right") - 1, 0, None)
    mean = trace.rate_rps[window] * step_s
    cv = trace.rate_cv[window]
    out = np.zeros(steps)
    poisson = np.isnan(cv) | (cv == 1.0)
    live = mean > 0
    sel = live & poisson
    out[sel] = rng.poisson(mean[sel])
    sel = live & ~poisson
    cv2 = cv[sel] ** 2
    out[sel] = rng.gamma(mean[sel] / cv2, cv2)
    # A very bursty gamma draw is often a vanishing amount (1e-30 of a request): no request.
    out[out < 1e-6] = 0.0
    return out


def request_step_arrivals(trace: RequestTrace, step_s: float) -> np.ndarray:
    steps = math.floor(trace.duration_s / step_s) + 1
    return np.bincount((trace.arrival_s // step_s).astype(np.int64), minlength=steps).astype(
        np.float64
    )


def fluid_in_flight(arrivals: np.ndarray, bins: ServiceBins) -> np.ndarray:
    """In flight per step when every request starts on arrival (for the bound)."""
    return np.convolve(arrivals, bins.survival())[: arrivals.size + bins.longest]


def run_aggregated(
    controller: Controller,
    arrivals: np.ndarray,
    step_s: float,
    bins: ServiceBins,
    settings: RunSettings,
    progress: Progress | None = None,
) -> RunResult:
    """Long because it is the aggregated simulator's hot loop (one pass over every time step of
    a run): its state lives in locals, where splitting it into functions would move it into an
    object and cost an attribute lookup per step.
    """
    timing = settings.timing
    mc = timing.max_concurrency
    amounts: list[float] = arrivals.tolist()
    n_steps = len(amounts)
    ring_len = bins.longest + 2
    ring = [0.0] * ring_len
    offsets = list(zip(bins.lo, bins.w_lo, bins.w_hi, strict=True))
    timeout_steps = None if settings.queue_timeout_s is None else settings.queue_timeout_s / step_s
    interval = controller.interval
    tick_every = max(round(interval / step_s), 1) if interval else 0
    drain_steps = int(DRAIN_LIMIT_S / step_s)

    deployment = SimulatedDeployment(timing)
    first = controller.initial_replicas
    deployment.start(0.0, settings.initial_replicas if first is None else first)
    ready, provisioning, draining, billed_base = deployment.counts()
    view = deployment.provider_view()

    cohorts: deque[list[float]] = deque()  # [arrival step, amount]
    waits: dict[int, float] = {}
    delays: list[tuple[float, float]] = []
    timeline: list[tuple[float, int, int, int, float, float]] = []
    actions: Counter[str] = Counter()
    waiting = running = dropped = extra_seconds = 0.0
    window = SignalWindow(SIGNAL_WINDOW_S, *bins.mean_cv(step_s), weighted=True)
    last_row: tuple[int, int, int] | None = None
    last_tick_step = -tick_every
    progress_every = max(n_steps // 200, 1)
    k = 0
    while True:
        if k >= n_steps and ((waiting < 1e-9 and running < 1e-9) or k >= n_steps + drain_steps):
            break
        t = k * step_s
        if deployment.next_event_time() <= t and deployment.advance(t):
            ready, provisioning, draining, billed_base = deployment.counts()
            view = deployment.provider_view()
        slot = k % ring_len
        done = ring[slot]
        if done:
            ring[slot] = 0.0
            running -= done
            window.completed(done)
            if running < 1e-9:
                running = 0.0
        if k < n_steps:
            a = amounts[k]
            if a > 0.0:
                cohorts.append([float(k), a])
                waiting += a
                window.arrived(a)
            if progress is not None and k % progress_every == 0:
                progress(k / n_steps)
        if timeout_steps is not None:
            while cohorts and k - cohorts[0][0] > timeout_steps:
                dropped += cohorts[0][1]
                waiting -= cohorts.popleft()[1]
            if not cohorts:
                waiting = 0.0
        ticked = False
        if tick_every and k - last_tick_step >= tick_every:
            stats = window.close(t, interval or 1.0)
            signals = Signals(
                waiting=waiting,
                running=running,
                arrival_rate=stats.arrival_rate,
                utilization=min(running / (view.ready * mc), 1.0) if view.ready else 0.0,
                reporting=ready + draining,
                completion_rate=stats.completion_rate,
                start_rate=stats.start_rate,
                service_time=stats.service_time,
                service_time_cv=stats.service_time_cv,
                wait_values=stats.wait_values,
                wait_weights=stats.wait_weights,
                oldest_wait=(k - cohorts[0][0]) * step_s if cohorts else 0.0,
                startup_s=deployment.last_startup_s,
            )
            observation = controller.observe(view, signals)
            decision = controller.evaluate(observation, signals, t)
            label = "none"
            if t >= settings.warmup_s:  # see RunSettings.warmup_s
                label = deployment.apply(decision.action, decision.replicas, t)
            if label != "none":
                actions[label] += 1
                ready, provisioning, draining, billed_base = deployment.counts()
                view = deployment.provider_view()
            last_tick_step = k
            ticked = True
            delays.append((t, (k - cohorts[0][0]) * step_s if cohorts else 0.0))
        room = ready * mc - running
        if room > 1e-9 and waiting > 1e-9:
            start = room if room < waiting else waiting
            left = start
            while left > 1e-12 and cohorts:
                head = cohorts[0]
                lag = int(k - head[0])
                if head[1] <= left:
                    take = head[1]
                    cohorts.popleft()
                else:
                    take = left
                    head[1] -= left
                    if head[1] < 1e-9:  # rounding residue, not requests
                        cohorts.popleft()
                waits[lag] = waits.get(lag, 0.0) + take
                window.started(lag * step_s, take)
                left -= take
            waiting -= start
            if waiting < 1e-9 or not cohorts:
                # float residue: what is left in the cohorts is the rounding of `waiting`;
                # leaving it would age forever at the head of the queue
                waiting = 0.0
                cohorts.clear()
            running += start
            for lo, wl, wh in offsets:
                ring[(k + lo) % ring_len] += start * wl
                if wh:
                    ring[(k + lo + 1) % ring_len] += start * wh
        extra = 0
        holding = ready + draining  # replicas billed anyway that may hold running work
        if running > holding * mc + 1e-9:  # removed replicas still finishing their requests
            extra = math.ceil(running / mc - 1e-9) - holding
            extra_seconds += extra * step_s
        billed = billed_base + extra
        row = (ready, provisioning, billed)
        if ticked or row != last_row:
            timeline.append((t, ready, provisioning, billed, waiting, running))
            last_row = row
        k += 1
    end_time = k * step_s
    deployment.close(end_time)
    timeline.append((end_time, 0, 0, 0, waiting, running))
    billed_total = sum(r.billed_seconds for r in deployment.replicas) + extra_seconds
    lags = sorted(waits)
    served = float(sum(waits.values()))
    total = float(sum(amounts))
    return RunResult(
        name=controller.name,
        mode="aggregated",
        requests_total=total,
        requests_served=served,
        requests_dropped=max(total - served, 0.0),
        wait_values=np.asarray(lags, dtype=np.float64) * step_s,
        wait_weights=np.asarray([waits[lag] for lag in lags], dtype=np.float64),
        timeline=timeline,
        billed_replica_seconds=billed_total,
        scale_actions=actions,
        end_s=end_time,
        evaluations=getattr(controller, "evaluations", 0),
        replica_hourly_usd=controller.replica_hourly_usd,
        delay_series=delays,
    )
