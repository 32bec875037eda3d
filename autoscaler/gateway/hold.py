"""The hold queue: one model's requests waiting for its deployment, as a pure state machine.

No clock, no I/O, no asyncio: every method takes `now` and returns what happened, so the
edge (`service.py`) and a Hypothesis state machine drive it the same way. Requests are
numbered in arrival order by the caller (`rid` increasing); release is in that order, also
for a request put back after its deployment did not answer yet (`requeue`).

Lifecycle of a request, each ending exactly once (the edge's `Ticket`):
    arrive -> Forward                     (deployment ready, nothing held ahead of it)
           -> Held -> released -> ...     (ready: in arrival order)
                   -> refused hold_timeout (past its deadline)
                   -> cancelled            (client disconnected while held)
                   -> refused deployment_failed (failed, not to be recreated: drained)
           -> Refused queue_full           (most requests held already)
A forwarded request ends answered (any upstream status) or refused with a reason.
Must not live here: timers, futures, HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Outcome = Literal["answered", "refused", "cancelled"]

# Refusal reasons: stable, used as metric label values (`outcome` is answered, cancelled or
# `refused_<reason>`) and in the OpenAI error's `code`.
QUEUE_FULL = "queue_full"  # the model's max_held requests are held already
HOLD_TIMEOUT = "hold_timeout"  # held past the request's deadline
UPSTREAM_UNAVAILABLE = "upstream_unavailable"  # ready deployment did not answer (connection)
UPSTREAM_ERROR = "upstream_error"  # the deployment broke off a response it had begun
SHUTTING_DOWN = "shutting_down"  # the gateway stops while the request is held
MODEL_REMOVED = "model_removed"  # a reload stopped routing the model while it was held
DEPLOYMENT_FAILED = "deployment_failed"  # failed, and the daemon will not recreate it
REASONS = (
    QUEUE_FULL,
    HOLD_TIMEOUT,
    UPSTREAM_UNAVAILABLE,
    UPSTREAM_ERROR,
    SHUTTING_DOWN,
    MODEL_REMOVED,
    DEPLOYMENT_FAILED,
)


@dataclass(frozen=True, slots=True)
class Bounds:
    """Per model: most requests held at once, and longest hold in seconds."""

    max_held: int
    max_hold: float

    def __post_init__(self) -> None:
        if self.max_held < 0:
            raise ValueError(f"max_held must be >= 0, got {self.max_held}")
        if not self.max_hold > 0:
            raise ValueError(f"max_hold must be > 0 seconds, got {self.max_hold}")

    def hold_of(self, asked: float | None) -> float:
        """Seconds one request may be held: its client's bound (the header) shortens the
        model's, never lengthens it."""
        return self.max_hold if asked is None else min(asked, self.max_hold)


@dataclass(frozen=True, slots=True)
class Forward:
    """Send it on now."""


@dataclass(frozen=True, slots=True)
class Held:
    deadline: float
    activate: bool  # the first held request (held went 0 -> 1): ask for activation now


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str
    retry_after: float  # seconds, for the Retry-After header


FORWARD = Forward()


@dataclass
class HoldQueue:
    """One model. `ready` is the edge's belief that the deployment answers."""

    bounds: Bounds
    ready: bool = False
    _held: dict[int, float] = field(default_factory=dict)  # rid -> deadline

    @property
    def held(self) -> int:
        return len(self._held)

    def holds(self, rid: int) -> bool:
        return rid in self._held

    def arrive(
        self, rid: int, now: float, max_hold: float | None = None
    ) -> Forward | Held | Refused:
        """A new request. `max_hold` (the client's header) can shorten the model's bound,
        never lengthen it."""
        if self.ready and not self._held:
            return FORWARD
        if len(self._held) >= self.bounds.max_held:
            return Refused(QUEUE_FULL, self.retry_after(now))
        deadline = now + self.bounds.hold_of(max_hold)
        self._held[rid] = deadline
        return Held(deadline, activate=len(self._held) == 1)

    def mark_ready(self) -> list[int]:
        """The deployment answers: release every held request, in arrival order."""
        self.ready = True
        released = sorted(self._held)
        self._held.clear()
        return released

    def mark_not_ready(self) -> None:
        """The deployment went away or stopped answering: new requests are held."""
        self.ready = False

    def requeue(self, rid: int, deadline: float, now: float) -> Held | Refused:
        """A released request whose deployment did not answer yet (Nebius-style 404 during
        start-up): held again at its arrival position with its original deadline. The
        bound on held requests does not apply: it was admitted already."""
        self.ready = False
        if deadline <= now:
            return Refused(HOLD_TIMEOUT, self.retry_after(now))
        self._held[rid] = deadline
        return Held(deadline, activate=len(self._held) == 1)

    def expire(self, now: float) -> list[int]:
        """Requests held past their deadline, in arrival order; they leave the queue."""
        gone = sorted(rid for rid, deadline in self._held.items() if deadline <= now)
        for rid in gone:
            del self._held[rid]
        return gone

    def leave(self, rid: int) -> bool:
        """The client went away. True when it was held (it ends cancelled)."""
        return self._held.pop(rid, None) is not None

    def drain(self) -> list[int]:
        """Everything held, in arrival order (the gateway stops, the model is removed, its
        deployment failed for good)."""
        gone = sorted(self._held)
        self._held.clear()
        return gone

    def next_deadline(self) -> float | None:
        return min(self._held.values(), default=None)

    def retry_after(self, now: float) -> float:
        """When a refused client might try again: when the earliest held request's deadline
        passes (a slot frees), at least 1 s."""
        first = self.next_deadline()
        return max(1.0, (first - now) if first is not None else 1.0)


def outcome_label(outcome: Outcome, reason: str | None) -> str:
    return f"refused_{reason}" if outcome == "refused" else outcome


OUTCOME_LABELS = ("answered", "cancelled", *(f"refused_{r}" for r in REASONS))
