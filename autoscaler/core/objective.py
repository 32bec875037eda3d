"""Stage 1b, objective: size the deployment from a latency objective (docs/objective.md).

`size(objective, memory, proposal, seen)` takes what the recommend stage proposed (the HPA
count of the metrics that have targets) and what was observed, and returns the count that
meets the objective (max with the proposal), the reason codes and message with the numbers,
and the stage's next memory. Steps, each with its own reason code:

1. read the signals (arrival rate, service time and its variability, in flight, queue,
   observed wait); a failed required signal sizes nothing and forbids a scale-down;
2. sized: the smallest count whose predicted wait at the quantile meets the objective
   (M/G/c, `queueing.size_for_wait`), with the service time times the correction factor;
3. forecast: the count for the profile's damped rate at now + start-up (pre-warm);
4. start-up hold: the largest of those counts within the last start-up time;
5. backlog: enough spare slots to start the queue within the objective, unless the replicas
   at hand clear it before one start-up time (a new replica would come too late); and no
   scale-down below the current count while a queue outlasts a start-up or grows;
6. correction: the factor for the next evaluation, from observed vs predicted wait.

Pure: `now` and every reading come from the caller.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from autoscaler.policy.model import Objective

from . import forecast as F
from . import reasons as R

if TYPE_CHECKING:
    from .proposal import Context, Proposal
from .peaks import Peaks, hold_peaks
from .queueing import drain_time, replicas_for_drain, replicas_for_wait, size_for_wait
from .recommend import (
    MAX_RECOMMENDATION,
    NOTHING_PROPOSED,
    Recommendation,
    direction,
    metric_value,
)

CORRECTION_MIN = 0.5
CORRECTION_MAX = 4.0
# ln f moves by this share of ln(observed / predicted) per evaluation: up fast when waits are
# longer than predicted (the objective is being missed), down slowly when shorter (a wait of
# 0 at p99 says little about how close the deployment runs to its first queue).
_GAIN_UP = 0.125
_GAIN_DOWN = 0.03125
_DECAY_TAU = 3600.0  # seconds for ln f to relax toward 0 while neither wait is significant
_SIGNIFICANT = 0.2  # a wait below this share of the objective says nothing about the model
_GROWTH_TAU = 60.0  # seconds: the queue growth's EWMA
_BUSY_CAP = 0.9  # share of the ready slots the in-flight floor may claim
_QUIET_SIGNALS = ("service_time", "service_time_cv", "observed_wait")


@dataclass(frozen=True, slots=True)
class ObjectiveMemory:
    """What the objective stage keeps between evaluations (inside `CoreState.objective`)."""

    correction: float = 1.0  # factor on the service time, in [CORRECTION_MIN, CORRECTION_MAX]
    startup: float | None = None  # the last measured start-up time, seconds
    peaks: Peaks = ()  # (slot start, count sized) over the last start-up time, quarter slots
    profile: F.Profile = field(default_factory=F.Profile)
    at: float | None = None  # the last evaluation
    # (t, requests queued) at the last evaluation, and the queue's growth (requests/s, EWMA
    # over a minute; negative when it drains): arrivals = requests served + growth.
    queue_at: tuple[float, float] | None = None
    growth: float = 0.0


_EMPTY = ObjectiveMemory()
_new = tuple.__new__  # a NamedTuple without its Python-level `__new__` (hot path)


class Seen(NamedTuple):
    """What the stage reads of the observation (a tuple: built once per decision, cheaply)."""

    values: Mapping[str, float | None]
    current: int
    ready: int
    now: float
    startup_seconds: float | None = None  # from the observation, when the runtime measured one
    has_targets: bool = False  # the proposal comes from metrics with targets (else ignore it)


class Sized(NamedTuple):
    recommendation: Recommendation  # the count, a reason for decide, message, failed reads
    reasons: tuple[str, ...]  # objective_* codes
    memory: ObjectiveMemory


def size(
    objective: Objective, memory: ObjectiveMemory, proposal: Recommendation, seen: Seen
) -> Sized:
    """Steps 1 to 6 of the module header, in order.

    Long because it is the objective mode's hot path (about 165 lines, over the ~60-line
    rule): one call per decision (benchmarks/bench_core.py --objective, >= 50,000
    decisions/s), and its steps share a dozen readings (rate, service time, correction,
    backlog, growth, lead); split into helpers they would be passed around as tuples for
    no clarity gained. Each step is a commented block, the longer rules are helpers below.
    """
    signals = objective.signals
    values = seen.values
    now = seen.now
    startup = seen.startup_seconds
    memory_startup = memory.startup
    if startup is not None and math.isfinite(startup) and startup >= 0:
        # A new measurement: half weight against the ones before (start-ups vary).
        old = memory_startup
        memory_startup = float(startup) if old is None else 0.5 * old + 0.5 * float(startup)
    lead = memory_startup if memory_startup is not None else objective.startup

    lam = metric_value(values, signals.arrival_rate)
    s = metric_value(values, signals.service_time)
    broken = lam is None or s is None
    queue = in_flight = cv_read = None
    if signals.queue is not None:
        queue = metric_value(values, signals.queue)
        broken = broken or queue is None
    if signals.in_flight is not None:
        in_flight = metric_value(values, signals.in_flight)
        broken = broken or in_flight is None
    if signals.service_time_cv is not None:
        cv_read = metric_value(values, signals.service_time_cv)
        broken = broken or cv_read is None
    observed = None
    if signals.observed_wait is not None:
        observed = metric_value(values, signals.observed_wait)
        broken = broken or observed is None
    # No traffic: a service time, its variability and a wait quantile have nothing to measure
    # (a histogram's mean over an empty window is NaN). Those reads are not failures then.
    quiet = lam == 0.0 and not queue and not in_flight
    failed = proposal.failed
    if broken:
        failed = _failed(objective, values, failed, quiet)

    current = seen.current
    hpa = proposal.replicas if seen.has_targets else None
    if lam is None or (s is None and not quiet):
        missing = signals.arrival_rate if lam is None else signals.service_time
        wanted = current if hpa is None else max(hpa, current)
        text = f"objective: {missing} failed: no sizing, keep {wanted}"
        if hpa is not None:
            text = f"{proposal.message}; {text}"
        rec = Recommendation(wanted, R.METRICS_MISSING_NO_SCALE_DOWN, text, tuple(failed))
        memory = ObjectiveMemory(
            memory.correction,
            memory_startup,
            memory.peaks,
            memory.profile,
            now,
            memory.queue_at,
            memory.growth,
        )
        return Sized(rec, (), memory)

    lam = max(lam, 0.0)
    s = max(s or 0.0, 0.0)
    cv = max(cv_read, 0.0) if cv_read is not None else objective.service_time_cv
    f = memory.correction
    s_eff = s * f
    q, wait, conc = objective.quantile, objective.queue_wait or math.inf, objective.concurrency
    ready = seen.ready
    backlog = max(queue or 0.0, 0.0)
    rate = lam
    if in_flight is not None and s_eff > 0:
        # Requests in flight are served load (Little: in flight = rate x service time), a
        # floor of the offered load when the rate signal lags (a rate of requests started or
        # finished says nothing of those still queued; with long requests it lags by
        # minutes). Capped below the ready slots: a full house is what a burst looks like
        # too, and whether it needs a replica is the backlog step's question (it may drain
        # before one could start).
        busy = min(max(in_flight, 0.0), _BUSY_CAP * ready * conc)
        rate = max(rate, busy / s_eff)
    growth = _growth(memory, queue, now)
    if growth > 0.0 and s_eff > 0:
        # A growing queue: requests arrive faster than the deployment serves them, by the
        # growth (a rate of requests started reads only the capacity then).
        served = min(max(in_flight, 0.0), ready * conc) if in_flight is not None else ready * conc
        rate = max(rate, served / s_eff + growth)

    # The wait predicted for the ready replicas feeds the correction: needed only with an
    # observed wait, and above the evidence threshold unless the observed one is.
    floor = _SIGNIFICANT * wait
    sized, predicted, at_ready = size_for_wait(
        rate,
        s_eff,
        cv,
        q,
        wait,
        conc,
        ready if observed is not None else 0,
        0,
        MAX_RECOMMENDATION,
        floor if observed is not None and observed < floor else 0.0,
    )
    shown = f"{predicted:.3g}s" if predicted == predicted else "below"
    parts = [
        f"objective: {lam:.4g}/s x {s:.4g}s{_times(f)} cv {cv:.3g} -> {sized} "
        f"(p{_pct(q)} wait {shown} <= {wait:g}s)"
    ]
    reasons = [R.OBJECTIVE_SIZED]
    if abs(f - 1.0) > 0.05:
        reasons.append(R.OBJECTIVE_CORRECTED)

    count = sized
    profile = memory.profile
    if objective.forecast:
        profile = F.update(profile, now, lam)
        ahead = F.forecast(profile, now + lead)
        if ahead is not None and ahead > rate:
            pre = replicas_for_wait(ahead, s_eff, cv, q, wait, conc, count, MAX_RECOMMENDATION)
            if pre > count:
                reasons.append(R.OBJECTIVE_FORECAST)
                parts.append(f"forecast {ahead:.4g}/s in {lead:g}s -> {pre}")
                count = pre

    # The hold remembers what the rate needed, not what a queue needed: a replica bought to
    # clear a queue is not needed again once the queue is gone.
    peaks, held = hold_peaks(memory.peaks, now, lead, count)
    if held > count:
        reasons.append(R.OBJECTIVE_STARTUP_HOLD)
        parts.append(f"{held} sized within the last start-up ({lead:g}s): keep it")
        count = held

    queue_at = memory.queue_at
    if backlog > 0.0 and s_eff > 0:
        drain = replicas_for_drain(backlog, rate, s_eff, wait, conc)
        if drain > max(count, ready):
            # Would the replicas at hand clear the queue before a new one could start?
            at_hand = _at_hand(backlog, ready * conc, rate, s_eff, growth)
            if at_hand <= lead:
                reasons.append(R.OBJECTIVE_DRAINS_FIRST)
                parts.append(
                    f"queue {backlog:g} drains in {at_hand:.3g}s on {ready} ready, "
                    f"before a start-up ({lead:g}s): no replica for it"
                )
            else:
                reasons.append(R.OBJECTIVE_BACKLOG)
                parts.append(f"queue {backlog:g} cleared within {wait:g}s needs {drain}")
                count = drain
    if backlog > 0.0 and count < current and s_eff > 0:
        # Requests wait and the replicas at hand will not clear them before a start-up (or
        # the queue is still growing): the replicas on their way are needed for this queue.
        # A scale-down now would cancel them first (a provider removes starting replicas
        # first), and the rate that sized fewer reads only what the deployment managed to
        # start. Keep the count until the queue is seen clearing in time.
        clears = _at_hand(backlog, ready * conc, rate, s_eff, growth)
        if growth > 0.0:
            clears = math.inf
        if clears > lead:
            reasons.append(R.OBJECTIVE_BACKLOG)
            shown_clear = "never" if clears == math.inf else f"in {clears:.3g}s"
            parts.append(
                f"queue {backlog:g} clears {shown_clear} on {ready} ready: "
                f"no scale down below {current}"
            )
            count = current
    count = min(count, MAX_RECOMMENDATION)

    correction = _correct(objective, memory, seen, observed, at_ready)
    if queue is not None:
        queue_at = (now, backlog)
    next_memory = ObjectiveMemory(correction, memory_startup, peaks, profile, now, queue_at, growth)

    wanted = count
    text = "; ".join(parts)
    if hpa is not None:
        text = f"{proposal.message}; {text}"
        if hpa >= wanted:
            wanted = hpa
    if failed and wanted < current:
        names = ",".join(failed)
        text = f"{text}; {names} failed: no scale down, keep {current}"
        rec = Recommendation(current, R.METRICS_MISSING_NO_SCALE_DOWN, text, tuple(failed))
        return Sized(rec, tuple(reasons), next_memory)
    reason = proposal.reason if hpa is not None and hpa >= count else direction(wanted, current)
    return Sized(Recommendation(wanted, reason, text, tuple(failed)), tuple(reasons), next_memory)


def objective_stage(ctx: Context, p: Proposal) -> Proposal:
    """Stage: when the policy states an objective, the count that meets it (max with what
    recommend proposed from the metrics with targets), its codes and the stage's memory."""
    objective = ctx.policy.objective
    if objective is None:
        return p
    obs = ctx.observation
    proposal = p.recommendation
    if proposal is None:  # no metric has a target: the plan skips recommend (plan.py)
        proposal = NOTHING_PROPOSED
    has_targets = proposal is not NOTHING_PROPOSED  # recommend's answer when none has one
    seen = _new(
        Seen, (obs.metrics, ctx.current, obs.ready, ctx.now, obs.startup_seconds, has_targets)
    )
    rec, reasons, memory = size(objective, ctx.state.objective or _EMPTY, proposal, seen)
    return p.recommended(rec, reasons, memory)


def _failed(
    objective: Objective,
    values: Mapping[str, float | None],
    failed: tuple[str, ...],
    quiet: bool,
) -> tuple[str, ...]:
    """The proposal's failed reads plus the signals that failed (and count as failures)."""
    out = list(failed)
    for key, name in objective.signals.names():
        excused = quiet and key in _QUIET_SIGNALS
        if metric_value(values, name) is None and not excused and name not in out:
            out.append(name)
    return tuple(out)


def _times(f: float) -> str:
    return "" if f == 1.0 else f" x{f:.3g}"


def _pct(q: float) -> str:
    text = _PCT.get(q)
    if text is None:
        text = _PCT[q] = f"{q * 100:.10g}"
    return text


_PCT: dict[float, str] = {}  # quantile -> "99" (a handful of values per process)


def _at_hand(backlog: float, slots: float, rate: float, s: float, growth: float) -> float:
    """Seconds the slots at hand take to clear `backlog`: at the rate read now (a burst that
    goes on), or as fast as the queue is seen shrinking (a burst that has passed; a rate of
    requests started cannot tell: a saturated deployment reads its own capacity)."""
    at_hand = drain_time(backlog, slots, rate, s)
    if growth < 0.0:
        at_hand = min(at_hand, backlog / -growth)
    return at_hand


def _growth(memory: ObjectiveMemory, queue: float | None, now: float) -> float:
    """The queue's growth rate, requests/s: an EWMA (one minute) of its change per second."""
    before = memory.queue_at
    if queue is None or before is None or now <= before[0]:
        return memory.growth
    dt = now - before[0]
    alpha = 1.0 - math.exp(-min(dt, _GROWTH_TAU) / _GROWTH_TAU)
    return memory.growth + alpha * ((max(queue, 0.0) - before[1]) / dt - memory.growth)


def _correct(
    objective: Objective,
    memory: ObjectiveMemory,
    seen: Seen,
    observed: float | None,
    predicted: float,
) -> float:
    """The next correction factor, from the wait observed with the ready replicas against
    the wait the model predicted for them (`predicted`, NaN when it was not computed)."""
    f = memory.correction
    wait = objective.queue_wait or math.inf
    log_f = math.log(f)
    if observed is not None and seen.ready > 0 and predicted == predicted:
        floor = _SIGNIFICANT * wait
        if predicted >= floor or observed >= floor:
            eps = 0.05 * wait
            ratio = (max(observed, 0.0) + eps) / (min(predicted, 1e12) + eps)
            ratio = min(max(ratio, 0.25), 4.0)
            log_f += (_GAIN_UP if ratio > 1.0 else _GAIN_DOWN) * math.log(ratio)
            return _bounded(log_f)
    if log_f != 0.0 and memory.at is not None and seen.now > memory.at:
        log_f *= math.exp(-(seen.now - memory.at) / _DECAY_TAU)
    return _bounded(log_f)


def _bounded(log_f: float) -> float:
    f = math.exp(log_f)
    if abs(log_f) < 1e-6:
        return 1.0
    return min(max(f, CORRECTION_MIN), CORRECTION_MAX)
