"""Stage 2, stabilize: the HPA stabilization windows over recorded recommendations.

Down: never go below the highest recommendation made within `scale_down.stabilization_window`
(this one included). Up: never go above the lowest within `scale_up.stabilization_window`.
The result is the current count pulled toward the recommendation only as far as both
windows allow (HPA's `stabilizeRecommendationWithBehaviors`).

History is kept as two monotone queues instead of the raw list: for a sliding-window max,
an older recommendation that is not larger than a newer one can never be the max again (the
newer one outlives it), so it is dropped. The window max/min is then the queue head, the
queues hold only what can still matter, and their size is bounded by the window. A window
of 0 keeps nothing. Entries are `(t, replicas)` in time order.
"""

from __future__ import annotations

from typing import NamedTuple

from . import reasons as R
from .proposal import Context, History, Proposal
from .timefmt import duration, setting

_new = tuple.__new__  # a NamedTuple without its Python-level `__new__` (hot path)


class Stabilized(NamedTuple):
    replicas: int
    reason: str | None  # stabilized_down | stabilized_up | None
    message: str
    up_history: History
    down_history: History


def record(
    history: History, now: float, window: float, value: int | None, keep_max: bool
) -> History:
    """Add `value` at `now`, dropping what expired (t <= now - window), what lies in the
    future (a clock that went backwards), and what the new value dominates.
    `value=None` only drops what expired."""
    if window <= 0:
        return ()
    cutoff = now - window
    # Entries are in time order (this function only appends at `now` after dropping what lies
    # past it): when the oldest has not expired and the newest is not in the future, none is
    # dropped, and the walk over every entry is skipped.
    if history and (history[0][0] <= cutoff or history[-1][0] > now):
        history = tuple(e for e in history if cutoff < e[0] <= now)
    if value is None:
        return history
    n = len(history)
    if keep_max:
        while n and history[n - 1][1] <= value:
            n -= 1
    else:
        while n and history[n - 1][1] >= value:
            n -= 1
    return (*history[:n], (now, value))


def stabilize(
    current: int,
    desired: int,
    now: float,
    up_window: float,
    down_window: float,
    up_history: History,
    down_history: History,
    skip_up: bool = False,
    remember: bool = True,
) -> Stabilized:
    """Record `desired` (unless `remember` is false) and return the stabilized count.

    `skip_up` (panic) ignores the up window for this decision; the recommendation is still
    recorded so the windows stay true. A recommendation made on partial metrics is not a
    real one (HPA records none then) and is passed with `remember=False`.
    """
    value = desired if remember else None
    up_history = record(up_history, now, up_window, value, keep_max=False)
    down_history = record(down_history, now, down_window, value, keep_max=True)
    up_limit, down_limit = desired, desired
    if not skip_up and up_history:
        up_limit = min(desired, up_history[0][1])
    if down_history:
        down_limit = max(desired, down_history[0][1])
    result = current
    if result < up_limit:
        result = up_limit
    if result > down_limit:
        result = down_limit
    if result > desired:
        reason = R.STABILIZED_DOWN
        text = f"held at {result} by the highest recommendation in the last {setting(down_window)}"
    elif result < desired:
        reason = R.STABILIZED_UP
        text = f"held at {result} by the lowest recommendation in the last {setting(up_window)}"
    else:
        return _new(Stabilized, (result, None, "", up_history, down_history))
    return _new(Stabilized, (result, reason, text, up_history, down_history))


# --- the stage ------------------------------------------------------------------------------


def stabilize_stage(ctx: Context, p: Proposal) -> Proposal:
    """Stage: record the recommendation and hold the count inside both windows; after an
    admin pause ends, no scale-down until a whole down window has passed."""
    if p.settled or p.ruled:
        return p
    behavior = ctx.policy.behavior
    down_window = behavior.scale_down.stabilization_window
    current, now = ctx.current, ctx.now
    st = stabilize(
        current,
        p.desired,
        now,
        behavior.scale_up.stabilization_window,
        down_window,
        p.up_history,
        p.down_history,
        p.panicking,  # skip_up
        p.remember,
    )
    proposed = st.replicas
    reasons, parts = p.reasons, p.parts
    if st.reason is not None:
        reasons, parts = (*reasons, st.reason), (*parts, st.message)
    resumed_at = p.resumed_at
    if resumed_at is not None and proposed < current:
        proposed = current
        if st.reason != R.STABILIZED_DOWN:
            reasons = (*reasons, R.STABILIZED_DOWN)
        parts = (
            *parts,
            f"held at {current}: resumed {duration(now - resumed_at)} ago, scale-down "
            f"waits out the {duration(down_window)} window",
        )
    return p.moved(proposed, reasons, parts, st.up_history, st.down_history)
