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

import dataclasses
import math
from collections.abc import Mapping
from math import isfinite
from typing import Any, Final, NamedTuple

from autoscaler.policy.model import Objective

from . import forecast as F
from . import reasons as R
from .correction import SIGNIFICANT, corrected, queue_growth
from .drafts import draft
from .objective_memory import ObjectiveMemory
from .objective_unread import sized_unread, unread_stretch
from .peaks import Peaks, hold_peaks
from .profile import Profile
from .proposal import Context, Proposal, Recommendation
from .queueing import drain_time, replicas_for_drain, replicas_for_wait, size_for_wait
from .recommend import (
    MAX_RECOMMENDATION,
    NOTHING_PROPOSED,
    direction,
    metric_value,
)

_BUSY_CAP: Final = 0.9  # share of the ready slots the in-flight floor may claim
CV_MAX: Final = 100.0  # the largest service-time variability the model takes
_QUIET_SIGNALS = ("service_time", "service_time_cv", "observed_wait")


_EMPTY = ObjectiveMemory()
_MemoryDraft = draft(ObjectiveMemory)


def _memory(
    correction: float,
    startup: float | None,
    peaks: Peaks,
    profile: Profile,
    at: float | None,
    queue_at: tuple[float, float] | None,
    growth: float,
    service: float | None,
    unread_since: float | None,
) -> ObjectiveMemory:
    """`ObjectiveMemory(...)` stored field by field on a draft (drafts.py): one per decision."""
    m: Any = _MemoryDraft()
    m.correction = correction
    m.startup = startup
    m.peaks = peaks
    m.profile = profile
    m.at = at
    m.queue_at = queue_at
    m.growth = growth
    m.service = service
    m.unread_since = unread_since
    m.__class__ = ObjectiveMemory
    return m


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

    # A reading is None when it failed (missing, null, NaN or infinite: `metric_value`, read
    # inline here: six calls a decision otherwise).
    get = values.get
    lam = get(signals.arrival_rate)
    lam = float(lam) if lam is not None and isfinite(lam) else None
    s = get(signals.service_time)
    s = float(s) if s is not None and isfinite(s) else None
    broken = lam is None or s is None
    queue = in_flight = cv_read = observed = None
    if signals.queue is not None:
        queue = get(signals.queue)
        queue = float(queue) if queue is not None and isfinite(queue) else None
        broken = broken or queue is None
    if signals.in_flight is not None:
        in_flight = get(signals.in_flight)
        in_flight = float(in_flight) if in_flight is not None and isfinite(in_flight) else None
        broken = broken or in_flight is None
    if signals.service_time_cv is not None:
        cv_read = get(signals.service_time_cv)
        cv_read = float(cv_read) if cv_read is not None and isfinite(cv_read) else None
        broken = broken or cv_read is None
    if signals.observed_wait is not None:
        observed = get(signals.observed_wait)
        observed = float(observed) if observed is not None and isfinite(observed) else None
        broken = broken or observed is None
    # No traffic: a service time, its variability and a wait quantile have nothing to measure
    # (a histogram's mean over an empty window is NaN). Those reads are not failures then.
    quiet = lam == 0.0 and not queue and not in_flight
    # Traffic but no service time yet (objective_unread.py): excused for a while.
    unread_since, warming = unread_stretch(memory, lam, s is None, quiet, now)
    failed = proposal.failed
    if broken:
        failed = _failed(objective, values, failed, quiet or warming)

    current = seen.current
    hpa = proposal.replicas if seen.has_targets else None
    if warming and memory.service is None:
        reading = (lam or 0.0, in_flight, queue)
        kept = dataclasses.replace(memory, startup=memory_startup, unread_since=unread_since)
        return Sized(*sized_unread(objective, kept, proposal, hpa, reading, seen, lead, failed))
    if lam is None or (s is None and not quiet and not warming):
        missing = signals.arrival_rate if lam is None else signals.service_time
        wanted = current if hpa is None else max(hpa, current)
        text = f"objective: {missing} failed: no sizing, keep {wanted}"
        if hpa is not None:
            text = f"{proposal.message}; {text}"
        rec = Recommendation(wanted, R.METRICS_MISSING_NO_SCALE_DOWN, text, tuple(failed))
        kept = dataclasses.replace(
            memory, startup=memory_startup, at=now, unread_since=unread_since
        )
        return Sized(rec, (), kept)

    # (max and min as comparisons from here on: a builtin call costs several times more)
    if lam < 0.0:
        lam = 0.0
    read = s is not None
    if warming:
        s = memory.service
    s = s or 0.0
    if s < 0.0:
        s = 0.0
    service = s if read else memory.service
    # A read variability is bounded like a declared one (policy schema: 0 to CV_MAX): beyond
    # it a reading is garbage, and squared it would overflow the queueing model.
    cv = objective.service_time_cv if cv_read is None else min(max(cv_read, 0.0), CV_MAX)
    f = memory.correction
    s_eff = s * f
    q, wait, conc = objective.quantile, objective.queue_wait or math.inf, objective.concurrency
    ready = seen.ready
    backlog = queue or 0.0
    if backlog < 0.0:
        backlog = 0.0
    rate = lam
    busy = 0.0 if in_flight is None or in_flight < 0.0 else in_flight  # (in flight, >= 0)
    if in_flight is not None and s_eff > 0:
        # Requests in flight are served load (Little: in flight = rate x service time), a
        # floor of the offered load when the rate signal lags (a rate of requests started or
        # finished says nothing of those still queued; with long requests it lags by
        # minutes). Capped below the ready slots: a full house is what a burst looks like
        # too, and whether it needs a replica is the backlog step's question (it may drain
        # before one could start).
        cap = _BUSY_CAP * ready * conc
        floor_rate = (cap if cap < busy else busy) / s_eff
        if floor_rate > rate:
            rate = floor_rate
    growth = queue_growth(memory.queue_at, memory.growth, queue, now)
    if growth > 0.0 and s_eff > 0:
        # A growing queue: requests arrive faster than the deployment serves them, by the
        # growth (a rate of requests started reads only the capacity then).
        slots = ready * conc
        served = slots if in_flight is None or slots < busy else busy
        if served / s_eff + growth > rate:
            rate = served / s_eff + growth

    # The wait predicted for the ready replicas feeds the correction: needed only with an
    # observed wait, and above the evidence threshold unless the observed one is.
    floor = SIGNIFICANT * wait
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
    cv_text = f"{cv:.3g}" if cv_read is not None else _fixed(cv, ".3g")
    times = "" if f == 1.0 else f" x{f:.3g}"
    parts = [
        f"objective: {lam:.4g}/s x {s:.4g}s{times} cv {cv_text} -> {sized} "
        f"(p{_fixed(q * 100, '.10g')} wait {shown} <= {_fixed(wait, 'g')}s)"
    ]
    reasons = [R.OBJECTIVE_SIZED]
    if warming:
        reasons.append(R.OBJECTIVE_SERVICE_UNREAD)
        parts.append(
            f"{signals.service_time} without a reading for {now - (unread_since or now):g}s "
            f"under traffic: the last read, {s:.4g}s, stands"
        )
    off = f - 1.0
    if off > 0.05 or off < -0.05:  # abs(f - 1) > 0.05
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
        if drain > (ready if ready > count else count):  # max(count, ready)
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
    if count > MAX_RECOMMENDATION:
        count = MAX_RECOMMENDATION

    correction = corrected(memory.correction, memory.at, now, ready, wait, observed, at_ready)
    if queue is not None:
        queue_at = (now, backlog)
    next_memory = _memory(
        correction, memory_startup, peaks, profile, now, queue_at, growth, service, unread_since
    )

    wanted = count
    text = "; ".join(parts)
    if hpa is not None:
        text = f"{proposal.message}; {text}"
        if hpa >= wanted:
            wanted = hpa
    if (failed or warming) and wanted < current:
        why = f"{','.join(failed)} failed" if failed else f"{signals.service_time} not read"
        text = f"{text}; {why}: no scale down, keep {current}"
        rec = Recommendation(current, R.METRICS_MISSING_NO_SCALE_DOWN, text, tuple(failed))
        return Sized(rec, tuple(reasons), next_memory)
    reason = proposal.reason if hpa is not None and hpa >= count else direction(wanted, current)
    rec = _new(Recommendation, (wanted, reason, text, failed))
    return _new(Sized, (rec, tuple(reasons), next_memory))


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


def _fixed(x: float, spec: str) -> str:
    """`format(x, spec)` of a policy constant (quantile, objective, assumed cv): the same few
    values come back every decision, so their text is remembered (a pure memo, bounded; only
    for x > 0, where equal floats format alike: 0.0 and -0.0 are equal and do not)."""
    key = (x, spec)
    text = _FIXED.get(key) if x > 0.0 else None
    if text is None:
        text = format(x, spec)
        if x > 0.0 and len(_FIXED) < 1024:
            _FIXED[key] = text
    return text


_FIXED: dict[tuple[float, str], str] = {}


def _at_hand(backlog: float, slots: float, rate: float, s: float, growth: float) -> float:
    """Seconds the slots at hand take to clear `backlog`: at the rate read now (a burst that
    goes on), or as fast as the queue is seen shrinking (a burst that has passed; a rate of
    requests started cannot tell: a saturated deployment reads its own capacity)."""
    at_hand = drain_time(backlog, slots, rate, s)
    if growth < 0.0:
        at_hand = min(at_hand, backlog / -growth)
    return at_hand
