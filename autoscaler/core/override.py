"""Stage: the admin override (`with_override`) holds a replica count until it expires.

The held count is capped by the upper bound at decision time (`replicas.max`, a schedule
window's max, the cost cap) and is at least 1; the recommendation is still recorded in the
stabilization windows (when it is a real one) so they stay true for when the override ends.
An override settles the count: no failure rule, stabilization, limit or clamp after it.
An expired override is cleared by `decide` before any stage runs.
"""

from __future__ import annotations

from . import reasons as R
from .proposal import Context, Proposal
from .stabilize import record
from .timefmt import iso


def override_stage(ctx: Context, p: Proposal) -> Proposal:
    override = ctx.state.override
    if override is None or p.settled:
        return p
    wanted, until = override
    now = ctx.now
    behavior = ctx.policy.behavior
    value = p.desired if p.remember else None
    up = record(p.up_history, now, behavior.scale_up.stabilization_window, value, False)
    down = record(p.down_history, now, behavior.scale_down.stabilization_window, value, True)
    reasons = (R.OVERRIDE, *p.reasons)
    parts = (f"override {wanted} until {iso(until)}", *p.parts)
    b = ctx.bounds
    proposed = wanted
    if proposed > b.upper:
        reasons = (*reasons, b.upper_reason)
        parts = (*parts, f"capped at {b.upper} ({b.upper_reason})")
        proposed = b.upper
    return p._replace(
        replicas=max(1, proposed),
        reasons=reasons,
        parts=parts,
        up_history=up,
        down_history=down,
        settled=True,
    )
