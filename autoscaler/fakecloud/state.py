"""The simulated cloud: deployments, their lifecycle, billing and the write log.

Provider-neutral: statuses here are the shared `Status` words (`autoscaler.core.status`) but
`absent`, plus `gone` for a deleted record kept for its billing (`SimStatus`); each provider
module translates them into its own API's words and bodies, which the provider clients
translate back at their edge. `SimDeployment` is a simulated cloud's record, not the
provider-reported `DeploymentInfo` nor the capacity simulator's `SimulatedDeployment`.
Time comes only from the injected clock and every transition is computed lazily when the state
is read, so a virtual clock drives the whole lifecycle without background tasks.

Lifecycle: create -> initializing -> ready after `provision_seconds` (or -> failed when a
provisioning failure is injected); scale -> initializing (the transitional state) -> ready
after `scale_seconds`; delete -> terminating -> gone after `terminate_seconds`. Billing
(`replica_seconds`) accrues replicas x time from create until the deployment is gone.
Serving (`serving_replicas`, what the fake vLLM in `autoscaler.fakecloud.inference_http` runs on):
every replica while `ready`; during a scale, the replicas that were ready before it (a rolling
change keeps serving); none while provisioning, failed or terminating.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass, field
from typing import Any, Literal

from autoscaler.fakecloud.clock import Clock
from autoscaler.fakecloud.faults import FaultPlan, Faults, ScriptedFault

# `Status` without `absent` (a simulated cloud answers 404 then), plus `gone`.
SimStatus = Literal["initializing", "ready", "failed", "terminating", "gone"]


class DuplicateName(Exception):
    pass


class UnknownDeployment(Exception):
    pass


class InvalidState(Exception):
    pass


@dataclass
class SimDeployment:
    id: str
    name: str
    scope: str  # e.g. the NeevCloud project; names are unique per scope
    spec: dict[str, Any]
    replicas: int
    status: SimStatus
    created_at: float
    updated_at: float
    accounted_at: float
    transition_until: float | None = None
    fail_when_done: bool = False
    ready_since: float | None = None
    gone_at: float | None = None
    replica_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)  # provider-specific echoes
    seq: int = 0  # creation order (timestamps tie under a virtual clock)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "scope": self.scope,
            "status": self.status,
            "replicas": self.replicas,
            "spec": self.spec,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "ready_since": self.ready_since,
            "gone_at": self.gone_at,
            "replica_seconds": self.replica_seconds,
        }


class SimState:
    """Everything one simulator holds; `app.state.sim` in every simulator app."""

    def __init__(
        self,
        provider: str,
        *,
        token: str,
        clock: Clock,
        faults: Faults,
        provision_seconds: float,
        scale_seconds: float,
        terminate_seconds: float,
        id_prefix: str,
    ):
        self.provider = provider
        self.token = token
        self.clock = clock
        self.faults = faults
        self.provision_seconds = provision_seconds
        self.scale_seconds = scale_seconds
        self.terminate_seconds = terminate_seconds
        self.id_prefix = id_prefix
        self.deployments: dict[str, SimDeployment] = {}  # every one ever created, by id
        self.name_collisions = 0  # creates refused because the name was taken (must stay 0)
        self.requests: list[dict[str, Any]] = []  # write calls: method, path, body, status
        self.issued_tokens: set[str] = set()  # from the NeevCloud tenant login
        self.logins = 0
        self.rng = random.Random(faults.seed)
        self.plan = FaultPlan(faults)

    def script(self, kind: str, **options: Any) -> None:
        """Queue a one-shot fault, e.g. `script("drop_after", method="POST")` (see faults.py)."""
        self.plan.script(ScriptedFault(kind, **options))

    def set_faults(self, **changes: Any) -> None:
        self.faults.update(changes)

    # --- auth -------------------------------------------------------------------------------

    def token_ok(self, authorization: str | None) -> bool:
        if not authorization or not authorization.startswith("Bearer "):
            return False
        value = authorization[len("Bearer ") :].strip()
        return value == self.token or value in self.issued_tokens

    def issue_token(self) -> str:
        token = "sim-at-" + secrets.token_urlsafe(16)
        self.issued_tokens.add(token)
        self.logins += 1
        return token

    def revoke_tokens(self) -> None:
        """Expire every token the login issued (the next call gets 401: tests re-login)."""
        self.issued_tokens.clear()

    # --- lifecycle --------------------------------------------------------------------------

    def now(self) -> float:
        return self.clock.time()

    def _settle(self, dep: SimDeployment, now: float) -> None:
        end = now if dep.gone_at is None else min(now, dep.gone_at)
        if end > dep.accounted_at:
            dep.replica_seconds += dep.replicas * (end - dep.accounted_at)
            dep.accounted_at = end
        if dep.transition_until is None or now < dep.transition_until:
            return
        done = dep.transition_until
        dep.transition_until = None
        dep.updated_at = done
        dep.extra.pop("serving_replicas", None)
        if dep.status == "initializing":
            if dep.fail_when_done:
                dep.status = "failed"
                dep.fail_when_done = False
            else:
                dep.status = "ready"
                dep.ready_since = done
        elif dep.status == "terminating":
            dep.status = "gone"

    def settle_all(self) -> None:
        now = self.now()
        for dep in self.deployments.values():
            self._settle(dep, now)

    def current(self, scope: str | None = None) -> list[SimDeployment]:
        """Deployments that exist (not gone), oldest first."""
        self.settle_all()
        live = [d for d in self.deployments.values() if d.status != "gone"]
        if scope is not None:
            live = [d for d in live if d.scope == scope]
        return sorted(live, key=lambda d: d.seq)

    def get(self, deployment_id: str, scope: str | None = None) -> SimDeployment:
        dep = self.deployments.get(deployment_id)
        if dep is not None:
            self._settle(dep, self.now())
        if dep is None or dep.status == "gone" or (scope is not None and dep.scope != scope):
            raise UnknownDeployment(deployment_id)
        return dep

    def create(
        self, name: str, spec: dict[str, Any], replicas: int, *, scope: str = ""
    ) -> SimDeployment:
        if any(d.name == name for d in self.current(scope)):
            self.name_collisions += 1
            raise DuplicateName(name)
        now = self.now()
        dep = SimDeployment(
            id=f"{self.id_prefix}{secrets.token_hex(6)}",
            name=name,
            scope=scope,
            spec=spec,
            replicas=replicas,
            status="initializing",
            created_at=now,
            updated_at=now,
            accounted_at=now,
            transition_until=now + self.provision_seconds,
            fail_when_done=self.rng.random() < self.faults.provision_fail_rate,
            seq=len(self.deployments),
        )
        self.deployments[dep.id] = dep
        self._settle(dep, now)  # a zero provisioning delay is ready at once
        return dep

    def scale(self, deployment_id: str, replicas: int, scope: str | None = None) -> SimDeployment:
        dep = self.get(deployment_id, scope)
        if dep.status in ("terminating", "failed"):
            raise InvalidState(f"deployment {dep.id} is {dep.status}")
        if replicas == dep.replicas:
            return dep
        now = self.now()
        if dep.status == "ready":
            dep.extra["serving_replicas"] = dep.replicas
        dep.replicas = replicas
        dep.updated_at = now
        if dep.status == "ready":
            dep.status = "initializing"
            dep.ready_since = None
            dep.transition_until = now + self.scale_seconds
            self._settle(dep, now)
        return dep

    def delete(self, deployment_id: str, scope: str | None = None) -> SimDeployment:
        dep = self.get(deployment_id, scope)
        if dep.status == "terminating":
            return dep
        now = self.now()
        dep.status = "terminating"
        dep.extra.pop("serving_replicas", None)
        dep.ready_since = None
        dep.fail_when_done = False
        dep.updated_at = now
        dep.transition_until = now + self.terminate_seconds
        dep.gone_at = dep.transition_until
        self._settle(dep, now)
        return dep

    def fail(self, deployment_id: str) -> SimDeployment:
        """Turn a deployment `failed` now (what a GPU node loss looks like)."""
        dep = self.get(deployment_id)
        dep.status = "failed"
        dep.extra.pop("serving_replicas", None)
        dep.ready_since = None
        dep.transition_until = None
        dep.updated_at = self.now()
        return dep

    def serving_replicas(self, dep: SimDeployment) -> int:
        """Replicas answering inference now (see the module header)."""
        self._settle(dep, self.now())
        if dep.status == "ready":
            return dep.replicas
        if dep.status == "initializing":
            return int(dep.extra.get("serving_replicas", 0))
        return 0

    def uptime(self, dep: SimDeployment) -> int:
        if dep.status != "ready" or dep.ready_since is None:
            return 0
        return max(0, int(self.now() - dep.ready_since))

    # --- inspection -------------------------------------------------------------------------

    def replica_seconds(self) -> dict[str, float]:
        self.settle_all()
        return {d.id: d.replica_seconds for d in self.deployments.values()}

    def names_held_twice(self) -> list[str]:
        """Names that two live deployments share (always empty unless something is broken)."""
        seen: dict[tuple[str, str], int] = {}
        for d in self.current():
            seen[(d.scope, d.name)] = seen.get((d.scope, d.name), 0) + 1
        return sorted(name for (_scope, name), n in seen.items() if n > 1)

    def snapshot(self) -> dict[str, Any]:
        self.settle_all()
        return {
            "provider": self.provider,
            "now": self.now(),
            "deployments": [d.public() for d in self.deployments.values()],
            "current": [d.id for d in self.current()],
            "name_collisions": self.name_collisions,
            "names_held_twice": self.names_held_twice(),
            "replica_seconds": self.replica_seconds(),
            "logins": self.logins,
        }
