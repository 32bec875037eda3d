"""The capacity simulator's deployment: the replica model behind what a provider would report.

`SimulatedDeployment` is not the provider-reported deployment (`providers.base.DeploymentInfo`)
nor a fake provider API's record (`fakecloud.state.SimDeployment`): it models every replica
(provisioning, serving, draining, billing) so the engine can dispatch requests to them; what
the daemon would see of it is `provider_view()`, the shared `DeploymentState` value
(`autoscaler.core.status`), using every `Status` word but `failed`:
- **scale** (only while `ready`): added replicas become ready `provision_s` after the call;
  removed replicas are taken from those still provisioning first (newest first), then idle
  ready ones, then the least busy ready ones, which **drain**: they finish the requests they
  hold but take no new ones, and leave (stop billing) when idle.
- **delete** (only while `ready`): `terminating` for `delete_s`, then `absent`; replicas finish
  what they hold and are billed until they leave, and never before the delete completes.
- **create** (only while `absent`): `initializing` for `create_s`, then `ready` with the
  requested count.
A replica is billed from the call that made it (or from ready with `bill_from_ready`) until it
leaves. `last_startup_s` is the start-up the daemon would have measured last: from the scale or
create call to the new replica ready (None until one was measured; the opening replicas are
warm). A call the provider would refuse (scale while not ready, create while not absent) is
counted as rejected and changes nothing.

Request dispatch (which replica serves what) lives in the engine; this is the replica set.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Literal

from autoscaler.core.status import ABSENT, DeploymentState, Status

ReplicaState = Literal["provisioning", "ready", "draining", "gone"]
DeploymentStatus = Status  # never "failed" here: the simulated provider does not fail


@dataclass(frozen=True, slots=True)
class DeploymentTiming:
    max_concurrency: int = 16
    provision_s: float = 180.0
    create_s: float = 600.0
    delete_s: float = 30.0
    bill_from_ready: bool = False


@dataclass(slots=True)
class Replica:
    id: int
    state: ReplicaState
    ready_at: float
    bill_start: float | None  # None: not billed yet (bill_from_ready and still provisioning)
    bill_end: float | None = None
    active: int = 0  # requests being served now
    leave_not_before: float = 0.0  # a deleted replica is billed until the delete completes
    served: int = 0
    became_ready: float | None = None  # None: removed before it was ever ready
    left_at: float | None = None
    called_at: float = 0.0  # the scale or create call that made it

    @property
    def billed_seconds(self) -> float:
        if self.bill_start is None or self.bill_end is None:
            return 0.0
        return self.bill_end - self.bill_start


@dataclass
class SimulatedDeployment:
    timing: DeploymentTiming
    status: DeploymentStatus = "absent"
    replicas: list[Replica] = field(default_factory=list)  # every replica ever made
    _events: list[tuple[float, int, str, int]] = field(default_factory=list)
    _seq: int = 0
    _live: list[Replica] = field(default_factory=list)  # not gone
    last_startup_s: float | None = None  # call -> ready of the last replica that got ready

    # --- queries ------------------------------------------------------------------------

    def serving(self) -> list[Replica]:
        """Replicas that take new requests: ready and not draining."""
        return [r for r in self._live if r.state == "ready"]

    def counts(self) -> tuple[int, int, int, int]:
        """(ready, provisioning, draining, billed) right now."""
        ready = provisioning = draining = billed = 0
        for r in self._live:
            if r.state == "ready":
                ready += 1
            elif r.state == "provisioning":
                provisioning += 1
            else:
                draining += 1
            if r.bill_start is not None:
                billed += 1
        return ready, provisioning, draining, billed

    def provider_view(self) -> DeploymentState:
        """What the daemon would see: the deployment state a provider client would build."""
        ready, provisioning, draining, _ = self.counts()
        if self.status == "terminating":
            return DeploymentState(self.status, draining + provisioning, 0)
        if self.status == "absent":
            return ABSENT
        return DeploymentState(self.status, ready + provisioning, ready)

    def next_event_time(self) -> float:
        return self._events[0][0] if self._events else float("inf")

    # --- lifecycle ----------------------------------------------------------------------

    def start(self, now: float, replicas: int) -> None:
        """Begin the run with `replicas` ready (warm), or absent when 0."""
        for _ in range(replicas):
            self._new_replica(now, ready=True)
        self.status = "ready" if replicas > 0 else "absent"

    def apply(self, action: str, replicas: int, now: float) -> str:
        """Carry out a decision; returns the action label for the summary's counts."""
        if action == "none":
            return "none"
        if action == "scale":
            if self.status != "ready":
                return "rejected_scale"
            current = sum(1 for r in self._live if r.state in ("ready", "provisioning"))
            if replicas < 1:
                return "rejected_scale"  # providers refuse scale to 0: zero means delete
            if replicas > current:
                for _ in range(replicas - current):
                    self._new_replica(now, ready=False, delay=self.timing.provision_s)
                return "scale_up"
            if replicas < current:
                self._remove(current - replicas, now)
                return "scale_down"
            return "none"
        if action == "delete":
            if self.status not in ("ready", "initializing"):
                return "rejected_delete"
            self.status = "terminating"
            done = now + self.timing.delete_s
            for r in list(self._live):
                if r.state in ("provisioning", "ready"):
                    r.leave_not_before = done
                    r.state = "draining"
            self._push(done, "deleted", -1)
            for r in list(self._live):
                self._maybe_leave(r, now)
            return "delete"
        if action == "create":
            if self.status != "absent":
                return "rejected_create"
            self.status = "initializing"
            for _ in range(max(replicas, 1)):
                self._new_replica(now, ready=False, delay=self.timing.create_s)
            return "create"
        raise ValueError(f"unknown action {action!r}")

    def advance(self, now: float) -> bool:
        """Apply every lifecycle event due at or before `now`; True when anything changed."""
        changed = False
        while self._events and self._events[0][0] <= now:
            when, _, kind, rid = heapq.heappop(self._events)
            changed = True
            if kind == "ready":
                replica = self.replicas[rid]
                if replica.state != "provisioning":
                    continue  # removed while provisioning
                replica.state = "ready"
                replica.became_ready = when
                self.last_startup_s = when - replica.called_at
                if replica.bill_start is None:
                    replica.bill_start = when
                if self.status == "initializing":
                    self.status = "ready"
            elif kind == "deleted":
                self.status = "absent"
            elif kind == "leave":
                self._maybe_leave(self.replicas[rid], when)
        return changed

    def finished(self, replica: Replica, now: float) -> None:
        """A request on `replica` completed at `now`."""
        replica.active -= 1
        if replica.state == "draining":
            self._maybe_leave(replica, now)

    def close(self, now: float) -> None:
        """End of the run: stop billing every replica still alive at `now`."""
        for r in self._live:
            if r.bill_start is not None:
                r.bill_end = now
            r.state = "gone"
            r.left_at = now
        self._live = []

    # --- internals ----------------------------------------------------------------------

    def _new_replica(self, now: float, *, ready: bool, delay: float = 0.0) -> Replica:
        billed_now = ready or not self.timing.bill_from_ready
        replica = Replica(
            id=len(self.replicas),
            state="ready" if ready else "provisioning",
            ready_at=now + delay,
            bill_start=now if billed_now else None,
            became_ready=now if ready else None,
            called_at=now,
        )
        self.replicas.append(replica)
        self._live.append(replica)
        if not ready:
            self._push(now + delay, "ready", replica.id)
        return replica

    def _remove(self, count: int, now: float) -> None:
        provisioning = [r for r in self._live if r.state == "provisioning"]
        provisioning.sort(key=lambda r: -r.ready_at)  # cancel the furthest from ready first
        ready = [r for r in self._live if r.state == "ready"]
        ready.sort(key=lambda r: (r.active, -r.id))  # idle first, then least busy, newest first
        for r in (provisioning + ready)[:count]:
            r.state = "draining"
            r.leave_not_before = now
            self._maybe_leave(r, now)

    def _maybe_leave(self, replica: Replica, now: float) -> None:
        if replica.state != "draining" or replica.active > 0:
            return
        if now < replica.leave_not_before:
            self._push(replica.leave_not_before, "leave", replica.id)
            return
        replica.state = "gone"
        replica.left_at = now
        if replica.bill_start is not None:
            replica.bill_end = now
        self._live.remove(replica)

    def _push(self, when: float, kind: str, rid: int) -> None:
        self._seq += 1
        heapq.heappush(self._events, (when, self._seq, kind, rid))


# The name before the rename: engine.py still imports it (left alone to keep a parallel
# change to engine.py mergeable); use `SimulatedDeployment` in new code.
Deployment = SimulatedDeployment
