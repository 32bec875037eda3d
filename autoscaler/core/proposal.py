"""The two values every pipeline stage shares: `Context` (what was given) and `Proposal`.

A stage has the shape `stage(ctx, proposal) -> proposal`: it reads the context, takes what the
stages before it proposed and returns the same proposal when it has nothing to add, or a new
one with its count, its reason code and its message fragment appended (HPA's
`(replicas, reason, message)` per stage). Both values are frozen; `decide.py` composes the
stages and turns the last proposal into a `Decision` and the next `CoreState`.

Both are NamedTuples, not dataclasses: a decision passes through up to ten stages, and a
tuple rebuilt by slicing (`noted`, `moved`, `recommended`) costs a fraction of a frozen
dataclass's `replace` (the core's speed target is 50,000 decisions/s on one core,
benchmarks/bench_core.py). Stages use those three on the hot path and `_replace` elsewhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from . import reasons as R

if TYPE_CHECKING:  # the stage modules import this one: types only, no cycle at run time
    from autoscaler.policy.model import Policy

    from .clamp import Bounds
    from .objective import ObjectiveMemory
    from .recommend import Recommendation
    from .stabilize import History
    from .state import CoreState
    from .types import Action, Observation


class Context(NamedTuple):
    """What one decision is about; the same for every stage of it."""

    policy: Policy
    state: CoreState  # the state before this decision (an expired override already cleared)
    observation: Observation
    now: float
    current: int  # replicas at the provider now (0 when absent)
    bounds: Bounds  # the hard bounds at `now` (clamp.py)


class Proposal(NamedTuple):
    """What the stages so far propose, why, and what the next state will remember."""

    replicas: int  # the count proposed so far
    reasons: tuple[str, ...] = ()  # reason codes, in the order the stages added them
    parts: tuple[str, ...] = ()  # message fragments, joined with "; " at the end
    # The stabilization windows (the next state's), advanced by whichever stage records the
    # recommendation; the first three fields and these two are what `moved` replaces.
    up_history: History = ()
    down_history: History = ()
    # The recommendation (recommend, then objective): the count, its own reason and message,
    # the failed reads. `desired` on the decision is its count.
    recommendation: Recommendation | None = None
    desired: int = 0  # its count (the decision's `desired`)
    failed: tuple[str, ...] = ()  # its failed reads
    # Whether it is a real recommendation, to record in the stabilization windows: a "keep
    # current because metrics failed" is not (recording it would stretch the down window over
    # the outage; HPA records nothing then either).
    remember: bool = True
    objective_reasons: tuple[str, ...] = ()  # objective_* codes, reported when it stands
    memory: ObjectiveMemory | None = None  # the objective stage's next memory
    settled: bool = False  # a stage decided the count (override, delete): later ones pass
    action: Action | None = None  # set by a stage that settled on delete
    ruled: bool = False  # the metric-failure rule set the count: no stabilization
    panicking: bool = False
    # Next-state fields the stages advance (start: the previous state's, expired ones cleared).
    panic_until: float | None = None
    idle_since: float | None = None
    last_active: float | None = None
    resumed_at: float | None = None

    def noted(self, reason: str, part: str, replicas: int | None = None) -> Proposal:
        """This proposal with `reason` and `part` appended (and a new count, if given)."""
        count = self.replicas if replicas is None else replicas
        return _make(Proposal, (count, (*self[1], reason), (*self[2], part), *self[3:]))

    def moved(
        self,
        replicas: int,
        reasons: tuple[str, ...],
        parts: tuple[str, ...],
        up_history: History | None = None,
        down_history: History | None = None,
    ) -> Proposal:
        """This proposal with a new count, reasons and messages (and windows, if given).

        The hot path of every decision: a tuple slice instead of `_replace`'s keyword walk
        over every field (a third of the cost)."""
        if up_history is None or down_history is None:
            return _make(Proposal, (replicas, reasons, parts, *self[3:]))
        return _make(Proposal, (replicas, reasons, parts, up_history, down_history, *self[5:]))

    def recommended(
        self,
        rec: Recommendation,
        objective_reasons: tuple[str, ...] = (),
        memory: ObjectiveMemory | None = None,
    ) -> Proposal:
        """This proposal with the recommendation (and the objective's codes and memory) as
        the count."""
        remember = rec.reason != R.METRICS_MISSING_NO_SCALE_DOWN
        head = (rec.replicas, *self[1:5], rec, rec.replicas, rec.failed, remember)
        return _make(Proposal, (*head, objective_reasons, memory, *self[11:]))


_make = tuple.__new__

# The defaults of the fields between the windows and the next-state fields, in order: what the
# first proposal of every decision carries (`first`).
_MIDDLE = tuple(Proposal._field_defaults[f] for f in Proposal._fields[5:-4])


def first(
    replicas: int,
    up_history: History,
    down_history: History,
    panic_until: float | None,
    idle_since: float | None,
    last_active: float | None,
    resumed_at: float | None,
) -> Proposal:
    """The first proposal of a decision, built positionally (hot path: no keyword walk)."""
    return _make(
        Proposal,
        (
            replicas,
            (),
            (),
            up_history,
            down_history,
            *_MIDDLE,
            panic_until,
            idle_since,
            last_active,
            resumed_at,
        ),
    )


def consecutive_failures(ctx: Context, p: Proposal) -> int:
    """Evaluations in a row with a failed read, this one included."""
    return ctx.state.metric_failures + 1 if p.failed else 0
