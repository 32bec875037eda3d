"""Contracts inside the daemon: what the HTTP layer may ask of the running daemon
(`DaemonControl`) and what the daemon reports to metrics (`Recorder`).

The daemon (`daemon.py`) implements `DaemonControl`; `http.py` serves it. `metrics.py`
implements `Recorder` over prometheus-client with fixed label sets. Neither side imports the
other's module, only these protocols.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class UnknownPolicyError(KeyError):
    """The named policy is not loaded."""


class NotLeaderError(Exception):
    """This daemon is a standby: admin changes go to the leader (HTTP 409). Not a ValueError,
    so nothing mistakes it for a bad request."""

    def __init__(self, message: str, leader: str | None = None) -> None:
        super().__init__(message)
        self.leader = leader  # the lease holder's id, when known


class DaemonControl(Protocol):
    def status(self) -> dict[str, Any]:
        """JSON for /status: {"role", "epoch", "config_loaded", "policies": {name: {
        "deployment", "provider", "last_observation", "last_decision" {action, replicas,
        reasons, message, t}, "state", "paused", "override", "dry_run", "pending_intent"}}}."""
        ...

    async def ready(self) -> tuple[bool, list[str]]:
        """For /readyz: (ready, problems). Ready = config loaded and the store writable."""
        ...

    def leadership_status(self) -> dict[str, Any]:
        """{"role": "leader" | "standby", "epoch": int | None}: cheap, for /readyz."""
        ...

    async def pause(self, policy: str) -> dict[str, Any]: ...

    async def resume(self, policy: str) -> dict[str, Any]: ...

    async def override(self, policy: str, replicas: int, duration: float) -> dict[str, Any]:
        """Hold the deployment at `replicas` (still within max and the cost cap) for
        `duration` seconds. Raises UnknownPolicyError or ValueError."""
        ...

    async def cancel_override(self, policy: str) -> dict[str, Any]:
        """End the policy's admin override now (nothing to cancel is not an error)."""
        ...

    async def history(
        self, policy: str, since: float | None, limit: int | None
    ) -> list[dict[str, Any]]:
        """The recorded decisions of `policy` at or after `since` (unix seconds), oldest
        first: [{"t", "observation", "decision"}]. UnknownPolicyError when the policy is
        neither loaded nor has any history."""
        ...

    async def activate(
        self, policy: str, origin: str | None = None, held: dict[str, int] | None = None
    ) -> dict[str, Any]:
        """Evaluate `policy` now: a gateway holds `held[model]` requests for it. Raises
        UnknownPolicyError, or NotLeaderError on a standby."""
        ...

    def route(self, policy: str) -> dict[str, Any] | None:
        """The inference route this daemon knows for `policy`'s deployment as it last saw it:
        {"policy", "deployment": {"id", "name"}, "base_url", "model"}, never the credential;
        None when it knows none. No provider request. Raises UnknownPolicyError. Standbys
        answer too."""
        ...


class Recorder(Protocol):
    def decision(self, policy: str, action: str, reasons: tuple[str, ...]) -> None: ...

    def replicas(self, policy: str, desired: int, current: int) -> None: ...

    def outcome(self, policy: str, action: str, outcome: str) -> None:
        """What became of one decision: executed, no_action, failed, dry_run, paused or
        standby (so a fleet of daemons counts each decision once)."""
        ...

    def observed(
        self,
        policy: str,
        status: str,
        ready: int,
        values: Mapping[str, float | None],
        targets: Mapping[str, float],
        hourly_cost: float | None,
    ) -> None:
        """The deployment and metric values one evaluation saw, with the metrics' targets
        and the hourly cost of the current replicas (None: the policy has no price)."""
        ...

    def evaluation(self, policy: str, seconds: float, lag: float) -> None:
        """One evaluation took `seconds`; it started `lag` seconds after it was due."""
        ...

    def scale_from_zero(self, policy: str, seconds: float) -> None: ...

    def dry_run(self, policy: str, enabled: bool) -> None: ...

    def provider_request(
        self, provider: str, operation: str, status: int | None, seconds: float
    ) -> None:
        """`status` None: no HTTP response (timeout, connection error)."""
        ...

    def source_read(
        self, policy: str, metric: str, source_type: str, seconds: float, ok: bool
    ) -> None: ...

    def leadership(self, is_leader: bool, epoch: int) -> None: ...

    def policy_removed(self, policy: str) -> None:
        """Drop the per-policy series of a policy that is no longer loaded."""
        ...
