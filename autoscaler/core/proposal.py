"""The values every pipeline stage shares: `Context` (what was given) and `Proposal`, and the
parts they carry between stages (`Bounds` from clamp, `Recommendation` from recommend and
objective, the stabilization `History`). They live here, below every stage module, so the
stages import this module and it imports none of them: no import cycle, not even a type-only
one (tests/test_layers.py checks both).

A stage has the shape `stage(ctx, proposal) -> proposal`: it reads the context, takes what the
stages before it proposed and returns the same proposal when it has nothing to add, or a new
one with its count, its reason code and its message fragment appended (HPA's
`(replicas, reason, message)` per stage). Both values are frozen; `decide.py` composes the
stages and turns the last proposal into a `Decision` and the next `CoreState`.

Both are frozen slots dataclasses: every stage reads them (a slot is the interpreter's fast
attribute path; a NamedTuple's fields go through a descriptor, several times slower), and a
proposal is rebuilt a few times per decision (`noted`, `moved`, `recommended`, `_replace`) by
copying its fields onto a draft (drafts.py), which costs less than rebuilding a 19-item
tuple subclass by slicing (the core's speed target is 50,000 decisions/s on one core,
benchmarks/bench_core.py). `decide` builds the context on a draft too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from . import reasons as R
from .drafts import draft

if TYPE_CHECKING:
    from autoscaler.policy.model import Policy

    from .objective_memory import ObjectiveMemory
    from .state import CoreState
    from .types import Action, Observation

History = tuple[tuple[float, int], ...]  # (t, count) entries of a stabilization window


class Bounds(NamedTuple):
    """The hard bounds at one instant (clamp.py)."""

    lower: int
    upper: int
    lower_reason: str  # min_replicas | schedule_min
    upper_reason: str  # max_replicas | schedule_max | cost_cap
    schedule_min: int  # the largest min of the active windows (0 if none)
    floored: bool = False  # lower is 1 only because a running deployment has at least one


class Recommendation(NamedTuple):
    """A recommended count with its reason and message (recommend.py, objective.py)."""

    replicas: int
    reason: str  # within_tolerance | metrics_missing_no_scale_down | no_change | scale_up/down
    message: str
    failed: tuple[str, ...] = ()  # metrics whose reading failed


@dataclass(frozen=True, slots=True)
class Context:
    """What one decision is about; the same for every stage of it."""

    policy: Policy
    state: CoreState  # the state before this decision (an expired override already cleared)
    observation: Observation
    now: float
    current: int  # replicas at the provider now (0 when absent)
    bounds: Bounds  # the hard bounds at `now` (clamp.py)


@dataclass(frozen=True, slots=True)
class Proposal:
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
        q = self._draft()
        if replicas is not None:
            q.replicas = replicas
        q.reasons = (*self.reasons, reason)
        q.parts = (*self.parts, part)
        q.__class__ = Proposal
        return q

    def moved(
        self,
        replicas: int,
        reasons: tuple[str, ...],
        parts: tuple[str, ...],
        up_history: History | None = None,
        down_history: History | None = None,
    ) -> Proposal:
        """This proposal with a new count, reasons and messages (and windows, if given)."""
        q = self._draft()
        q.replicas = replicas
        q.reasons = reasons
        q.parts = parts
        if up_history is not None and down_history is not None:
            q.up_history = up_history
            q.down_history = down_history
        q.__class__ = Proposal
        return q

    def recommended(
        self,
        rec: Recommendation,
        objective_reasons: tuple[str, ...] = (),
        memory: ObjectiveMemory | None = None,
    ) -> Proposal:
        """This proposal with the recommendation (and the objective's codes and memory) as
        the count."""
        q = self._draft()
        q.replicas = q.desired = rec.replicas
        q.recommendation = rec
        q.failed = rec.failed
        q.remember = rec.reason != R.METRICS_MISSING_NO_SCALE_DOWN
        q.objective_reasons = objective_reasons
        q.memory = memory
        q.__class__ = Proposal
        return q

    def _replace(self, **changes: Any) -> Proposal:
        """This proposal with `changes`, by field name (as a NamedTuple's `_replace`: an
        unknown name is a ValueError)."""
        unknown = [name for name in changes if name not in _FIELDS]
        if unknown:
            raise ValueError(f"Got unexpected field names: {unknown!r}")
        q = self._draft()
        for name, value in changes.items():
            setattr(q, name, value)
        q.__class__ = Proposal
        return q

    def _draft(self) -> Any:
        """A draft (drafts.py) holding every field of this proposal, to change a few on and
        then make a Proposal (`q.__class__ = Proposal`). Every field, by name, in one place
        (tests/core/test_core_proposal.py checks none is missed)."""
        q = _Draft()
        q.replicas = self.replicas
        q.reasons = self.reasons
        q.parts = self.parts
        q.up_history = self.up_history
        q.down_history = self.down_history
        q.recommendation = self.recommendation
        q.desired = self.desired
        q.failed = self.failed
        q.remember = self.remember
        q.objective_reasons = self.objective_reasons
        q.memory = self.memory
        q.settled = self.settled
        q.action = self.action
        q.ruled = self.ruled
        q.panicking = self.panicking
        q.panic_until = self.panic_until
        q.idle_since = self.idle_since
        q.last_active = self.last_active
        q.resumed_at = self.resumed_at
        return q


_Draft = draft(Proposal)
_FIELDS = frozenset(Proposal.__slots__)


def first(
    replicas: int,
    up_history: History,
    down_history: History,
    panic_until: float | None,
    idle_since: float | None,
    last_active: float | None,
    resumed_at: float | None,
) -> Proposal:
    """The first proposal of a decision: the count, the windows and the next-state fields
    the state carries, every other field its default (set here field by field, by name:
    tests/core/test_core_proposal.py checks it against the constructor)."""
    q = _Draft()
    q.replicas = replicas
    q.reasons = ()
    q.parts = ()
    q.up_history = up_history
    q.down_history = down_history
    q.recommendation = None
    q.desired = 0
    q.failed = ()
    q.remember = True
    q.objective_reasons = ()
    q.memory = None
    q.settled = False
    q.action = None
    q.ruled = False
    q.panicking = False
    q.panic_until = panic_until
    q.idle_since = idle_since
    q.last_active = last_active
    q.resumed_at = resumed_at
    q.__class__ = Proposal
    return q


def consecutive_failures(ctx: Context, p: Proposal) -> int:
    """Evaluations in a row with a failed read, this one included."""
    return ctx.state.metric_failures + 1 if p.failed else 0
