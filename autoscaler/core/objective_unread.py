"""The objective stage with traffic but no service time read yet (`objective_service_unread`).

vLLM records a request's service time and queue time when it finishes, so when traffic starts
after a quiet spell both read NaN (a rate of 0 over 0) for up to a request's length while the
arrival rate, the requests in flight and the queue are read. Such a stretch is excused for a
while (`UNREAD_GRACE`): sized with the last service time read (objective.py does, with a
note), or, when none was ever read, from the requests in flight and queued (`sized_unread`);
never scaled down, and its reads are no failures. Past the grace the read fails like any
other (a metric that broke under traffic). The core cannot tell a NaN from a failed query.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Final, Protocol

from autoscaler.policy.model import Objective

from . import reasons as R
from .objective_memory import ObjectiveMemory
from .peaks import hold_peaks
from .proposal import Recommendation
from .recommend import MAX_RECOMMENDATION, direction

UNREAD_GRACE: Final = 300.0  # seconds, or five of the last service times read when longer


class _Seen(Protocol):
    """What is read of objective.py's `Seen` (which imports this module)."""

    @property
    def now(self) -> float: ...

    @property
    def current(self) -> int: ...


def unread_stretch(
    memory: ObjectiveMemory, rate: float | None, unread: bool, quiet: bool, now: float
) -> tuple[float | None, bool]:
    """(when the current stretch of traffic without a service time began, or None when there
    is none; whether it is still excused). The start is kept while the arrival rate fails."""
    if rate is None:
        return memory.unread_since, False
    if not unread or quiet:
        return None, False
    last = memory.service
    grace = UNREAD_GRACE if last is None or 5.0 * last < UNREAD_GRACE else 5.0 * last
    since = memory.unread_since
    if since is None or (memory.at is not None and now - memory.at > grace):
        since = now  # (a stretch seen before a gap in evaluations says nothing of this one)
    return since, now - since <= grace


def sized_unread(
    objective: Objective,
    memory: ObjectiveMemory,
    proposal: Recommendation,
    hpa: int | None,
    reading: tuple[float, float | None, float | None],
    seen: _Seen,
    lead: float,
    failed: tuple[str, ...],
) -> tuple[Recommendation, tuple[str, ...], ObjectiveMemory]:
    """No service time read yet and none remembered (the first requests a policy sees): a slot
    for every request in flight or queued (`reading`: rate, in flight, queue), held for a
    start-up like any sized count, at least `hpa` (the metrics with targets), never below the
    current count. `memory` carries this evaluation's start-up and stretch start already."""
    now, current = seen.now, seen.current
    since = now if memory.unread_since is None else memory.unread_since
    rate, in_flight, queue = reading
    busy = in_flight if in_flight is not None and in_flight > 0.0 else 0.0
    backlog = queue if queue is not None and queue > 0.0 else 0.0
    slots = (busy + backlog) / objective.concurrency  # (inf for two readings near 1e308)
    need = math.ceil(slots) if slots < MAX_RECOMMENDATION else MAX_RECOMMENDATION
    peaks, held = hold_peaks(memory.peaks, now, lead, need)
    reasons = [R.OBJECTIVE_SERVICE_UNREAD]
    text = (
        f"objective: {rate:.4g}/s, {objective.signals.service_time} without a reading for "
        f"{now - since:g}s under traffic and none read before: {busy:g} in flight and "
        f"{backlog:g} queued need {need}"
    )
    count = need
    if held > count:
        reasons.append(R.OBJECTIVE_STARTUP_HOLD)
        text = f"{text}; {held} sized within the last start-up ({lead:g}s): keep it"
        count = held
    if hpa is not None:
        text = f"{proposal.message}; {text}"
        count = max(hpa, count)
    reason = direction(count, current)
    if count < current:
        text = f"{text}; no scale down, keep {current}"
        count, reason = current, R.METRICS_MISSING_NO_SCALE_DOWN
    memory = dataclasses.replace(memory, peaks=peaks, at=now)
    return Recommendation(count, reason, text, failed), tuple(reasons), memory
