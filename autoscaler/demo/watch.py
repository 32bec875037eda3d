"""The demo's live loop: every refresh it reads the daemon's status, the gateway's load and the
provider simulator's write log, and hands rows and actions to the view (`autoscaler.demo.view`
draws them). Also the signal watch that ends the demo on Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
import time
from typing import TYPE_CHECKING, Any, Protocol

import anyio

if TYPE_CHECKING:
    from autoscaler.ctl.table import PolicyRow
    from autoscaler.demo.traffic import DemoClock, Gateway
    from autoscaler.demo.view import ActionEvent, ActionLog, LiveView
    from autoscaler.fakecloud.state import SimState
    from autoscaler.runtime.protocols import DaemonControl

STORY_SECONDS = 60.0


class ActingReasons(Protocol):
    """The demo's metrics recorder, as the loop reads it: why an action was taken."""

    def reasons_for(self, policy: str, action: str) -> tuple[str, ...]: ...


async def stop_on_signals(stop: anyio.Event) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            stop.set()
            return


async def watch(
    duration: float | None,
    speed: float,
    daemon: DaemonControl,
    gateway: Gateway,
    sim: SimState,
    actions: ActionLog,
    view: LiveView,
    clock: DemoClock,
    stop: anyio.Event,
    started_wall: float,
    metrics: ActingReasons,
) -> None:
    """Refresh the view until the duration passes or a signal arrives."""
    refresh = 0.25
    while not stop.is_set():
        if duration is not None and time.monotonic() - started_wall >= duration:
            break
        t = clock.now()
        status = daemon.status()["policies"]
        name_of_id = {d.id: d.name for d in sim.deployments.values()}
        # A write is shown once the daemon had time to record the decision behind it.
        settled = sim.now() - refresh
        events = actions.feed(sim.requests, name_of_id, t, metrics.reasons_for, settled)
        rows = _rows(status, gateway, actions)
        cycle = t % STORY_SECONDS
        header = (
            f"autoscaler demo   t={t:5.1f}s (story {cycle:4.1f}/{STORY_SECONDS:.0f}s, "
            f"speed {speed:g}x)   Ctrl-C to stop"
        )
        view.frame(t, header, rows, events)
        with anyio.move_on_after(refresh):
            await stop.wait()
    # Actions that landed after the last refresh still count.
    name_of_id = {d.id: d.name for d in sim.deployments.values()}
    for event in actions.feed(sim.requests, name_of_id, clock.now(), metrics.reasons_for):
        view.message(_format(event))


def _rows(status: dict[str, Any], gateway: Gateway, actions: ActionLog) -> list[PolicyRow]:
    """One table row per policy: the daemon's last decision beside the gateway's load and
    the fleet's replicas; tells `actions` the replicas it saw."""
    from autoscaler.ctl.table import PolicyRow

    rows = []
    for name, policy_status in status.items():
        deployment = policy_status["deployment"]
        model = gateway.model_for(deployment)
        seen = gateway.fleet.observe(deployment)
        dep_status, current, serving = seen.status, seen.replicas, seen.ready
        actions.saw(name, current)
        decision = policy_status.get("last_decision") or {}
        note = policy_status.get("transition") or policy_status.get("last_error")
        rows.append(
            PolicyRow(
                policy=name,
                deployment=deployment,
                rate=model.rate if model else None,
                waiting=model.waiting if model else None,
                running=model.running if model else None,
                status=dep_status,
                current=current,
                serving=serving,
                desired=decision.get("replicas"),
                action=decision.get("action"),
                reasons=tuple(decision.get("reasons", ())),
                message=str(decision.get("message", "")),
                note=note,
            )
        )
    return rows


def _format(event: ActionEvent) -> str:
    from autoscaler.demo.view import format_event

    return format_event(event)
