"""The start-up-aware clairvoyant reference: what a controller that knows the future pays.

The fluid **bound** (`service.request_bound`) bills ceil(in_flight(t) / max_concurrency)
replicas at every instant, as if replicas appeared and vanished for free. The **clairvoyant
reference** keeps the same demand profile R(t) (every request starts at its arrival, nothing
waits) but pays for start-ups the way the simulated deployment bills them: a replica is billed
from the call that requests it and serves only after its start-up. Knowing the future, it
keeps a replica idle over a dip in demand when that is cheaper than releasing and starting it
again.

Exact, by levels. Any plan is a replica count C(t) >= R(t) (the ready replicas; replicas alive
at time 0 are warm, as in every run). Its cost is the ready time plus one start-up per
replica started after 0: integral C(t) dt + S * (up-steps of C after 0). Both terms split over
levels k = 1, 2, ...: the set {C >= k} covers {R >= k}, costs its length, and S for each of its
stretches that does not begin at 0. Per level the optimum fills exactly the gaps of
{R >= k} (including the leading one, from 0) no longer than the restart cost, so level k costs
|{R >= k}| + sum over its gaps of min(gap, restart_k); the trailing gap is free (release).
These per-level optima are nested (a short gap of level k+1 only contains shorter gaps of
level k), so together they are one feasible plan, hence the optimum.

Restart cost: `provision_s` for any level above the first; level 1 going to zero means a delete
and a create, so `delete_s + create_s` (the deployment bills through the delete, and from the
create call). With billing from ready a restart costs nothing and the reference is the bound.
Like the bound, it places requests freely among replicas (no request pins a replica).

The gaps of every level are found in one pass with a monotonic stack (the "trapped water"
walk): when a bar lower than the current one leaves the stack, the levels between it and the
lower of its two walls have one gap each, spanning the two walls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Reference:
    """The clairvoyant plan's cost and, for plots, its replicas over time."""

    replica_seconds: float
    bound_replica_seconds: float
    # the replicas it keeps beyond R(t): a step function, `extra_values[i]` from `extra_times[i]`
    extra_times: np.ndarray
    extra_values: np.ndarray
    restarts: int  # replica start-ups after time 0


def demand_profile(
    arrival_s: np.ndarray, service_s: np.ndarray, max_concurrency: int
) -> tuple[np.ndarray, np.ndarray]:
    """R(t) of a request trace as (segment starts, replicas), one value per segment, the last
    segment ending when the last request does (its value is 0)."""
    if arrival_s.size == 0:
        return np.zeros(1), np.zeros(1, np.int64)
    times = np.concatenate([arrival_s, arrival_s + service_s])
    deltas = np.concatenate([np.ones(arrival_s.size, np.int64), -np.ones(arrival_s.size, np.int64)])
    order = np.lexsort((deltas, times))  # ends before starts at one instant, as the bound
    times, level = times[order], np.cumsum(deltas[order])
    last = np.append(times[1:] != times[:-1], True)  # the level after all events at an instant
    times, level = times[last], level[last]
    replicas = -(-level // max_concurrency)
    if times[0] > 0.0:
        times, replicas = np.append(0.0, times), np.append(0, replicas)
    return times, replicas


def clairvoyant(
    starts: np.ndarray,
    replicas: np.ndarray,
    end_s: float,
    restart_s: float,
    first_restart_s: float | None = None,
) -> Reference:
    """The optimal plan over the step function R = `replicas[i]` on [starts[i], starts[i+1])
    (the last segment ends at `end_s`). `restart_s` is what releasing and starting a replica
    again costs above the first level; `first_restart_s` (default: the same) for level 1.

    Long because it is one stack walk over the step function with its bookkeeping in local lists
    (a month-long trace has millions of segments), followed by the vectorised sum of what it
    kept; the walk and its state do not separate.
    """
    first = restart_s if first_restart_s is None else first_restart_s
    if first < restart_s:
        raise ValueError("the first level's restart cannot be cheaper than the others'")
    values = np.asarray(replicas, dtype=np.int64)
    ends = np.append(np.asarray(starts[1:], dtype=np.float64), end_s)
    widths = ends - starts
    bound = float(np.sum(values * widths))
    keep = widths > 0  # an instant is not a need
    values, seg_starts, ends = values[keep], np.asarray(starts, np.float64)[keep], ends[keep]
    if values.size:  # runs of one value are one bar: fewer steps for the walk below
        first_of_run = np.append(True, values[1:] != values[:-1])
        last_of_run = np.append(first_of_run[1:], True)
        values, seg_starts, ends = values[first_of_run], seg_starts[first_of_run], ends[last_of_run]
    heights: list[int] = values.tolist()
    seg_start: list[float] = seg_starts.tolist()
    seg_end: list[float] = ends.tolist()

    extra = 0.0
    restarts = 0
    add_at: list[float] = []
    add_by: list[int] = []
    big = math.inf
    stack_h: list[float] = [big]  # a wall at time 0: replicas there are warm
    stack_end: list[float] = [0.0]
    for h, t0, t1 in zip(heights, seg_start, seg_end, strict=True):
        while stack_h[-1] <= h:
            floor = stack_h.pop()
            stack_end.pop()
            top = min(stack_h[-1], h)
            if top <= floor:
                continue
            width = t0 - stack_end[-1]
            low, high = int(floor) + 1, int(top)  # the levels with one gap here
            kept = 0
            for level_from, level_to, cost in (
                (low, min(high, 1), first),
                (max(low, 2), high, restart_s),
            ):
                count = level_to - level_from + 1
                if count <= 0:
                    continue
                if width <= cost:
                    extra += count * width
                    kept += count
                else:
                    extra += count * cost
                    restarts += count
            if kept and width > 0:
                add_at += [stack_end[-1], t0]
                add_by += [kept, -kept]
        stack_h.append(h)
        stack_end.append(t1)
    if add_at:
        at = np.asarray(add_at)
        order = np.argsort(at, kind="stable")
        at = at[order]
        level = np.cumsum(np.asarray(add_by, dtype=np.int64)[order])
        last = np.append(at[1:] != at[:-1], True)
        extra_times, extra_values = at[last], level[last]
    else:
        extra_times, extra_values = np.zeros(1), np.zeros(1, np.int64)
    return Reference(bound + extra, bound, extra_times, extra_values, restarts)


def restart_costs(
    provision_s: float, create_s: float, delete_s: float, bill_from_ready: bool
) -> tuple[float, float]:
    """(above level 1, level 1) restart costs as the simulated deployment bills them."""
    if bill_from_ready:
        return 0.0, 0.0
    return provision_s, max(delete_s + create_s, provision_s)
