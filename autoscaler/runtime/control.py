"""Contracts inside the daemon: what the HTTP layer may ask of the running daemon
(`DaemonControl`) and what the daemon reports to metrics (`Recorder`).

The reconcile loop (`daemon.py`) implements `DaemonControl`; `http.py` serves it. `metrics.py`
implements `Recorder` over prometheus-client with fixed label sets. Neither side imports the
other's module, only these protocols.
"""

from __future__ import annotations

from typing import Any, Protocol


class UnknownPolicyError(KeyError):
    """The named policy is not loaded."""


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

    async def activate(
        self, policy: str, origin: str | None = None, held: dict[str, int] | None = None
    ) -> dict[str, Any]:
        """Evaluate `policy` now: a gateway holds `held[model]` requests for it. Raises
        UnknownPolicyError, or ValueError on a standby."""
        ...


class Recorder(Protocol):
    def decision(self, policy: str, action: str, reasons: tuple[str, ...]) -> None: ...

    def replicas(self, policy: str, desired: int, current: int) -> None: ...

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
