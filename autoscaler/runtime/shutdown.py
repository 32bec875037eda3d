"""Stopping: signals in, a bounded and shielded drain out.

SIGTERM / SIGINT ask the daemon to stop; SIGHUP asks it to reload. Stopping means: stop
scheduling, let in-flight evaluations (and the provider actions inside them) finish within
`config.shutdown_timeout`, cancel what is still running after that (its write-ahead intent
stays pending in the store and is reconciled on the next start), then close sources,
providers and the store. The whole sequence is shielded from cancellation and bounded, so a
second signal or a hung client cannot leave the store open or the process stuck.

Must not live here: what an evaluation does, or how a reload is validated.
"""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable
from typing import Protocol

import anyio
import structlog

from autoscaler.policy.model import DaemonConfig
from autoscaler.runtime.connections import Connections
from autoscaler.runtime.lifecycle import Lifecycle

log = structlog.get_logger("autoscaler.shutdown")

CLOSE_TIMEOUT = 10.0  # seconds for closing clients and the store after the drain


class Stoppable(Protocol):
    """What stopping needs of the daemon (`daemon.Daemon`); a protocol, so this module does
    not import the daemon that calls it."""

    config: DaemonConfig
    lifecycle: Lifecycle  # the evaluations in flight
    connections: Connections  # the store, for the intents left pending

    async def drain(self, timeout: float) -> bool: ...

    async def close_resources(self) -> None: ...


async def handle_signals(
    on_stop: Callable[[str], None], on_reload: Callable[[str], Awaitable[object]]
) -> None:
    """Forever: SIGTERM/SIGINT -> on_stop, SIGHUP -> on_reload (one at a time)."""
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async for signum in signals:
            name = signal.Signals(signum).name
            if signum == signal.SIGHUP:
                log.info("signal", signal=name, action="reload")
                await on_reload(name)
            else:
                log.info("signal", signal=name, action="stop")
                on_stop(name)


async def graceful_stop(daemon: Stoppable) -> None:
    """Drain and close, shielded and bounded by the config's deadline."""
    with anyio.CancelScope(shield=True):
        timeout = daemon.config.shutdown_timeout
        log.info("stopping", deadline=timeout, in_flight=daemon.lifecycle.in_flight)
        finished = await daemon.drain(timeout)
        if not finished:
            log.warning(
                "shutdown_deadline_passed",
                in_flight=daemon.lifecycle.in_flight,
                note="unfinished actions stay as pending intents for the next start",
            )
        pending: int | None = None
        with anyio.move_on_after(CLOSE_TIMEOUT) as scope:
            store = daemon.connections.store
            if store is not None:
                try:
                    pending = len(await store.pending_intents())
                except Exception as exc:
                    log.warning("pending_intents_unreadable", error=str(exc))
            await daemon.close_resources()
        if scope.cancel_called:
            log.warning("close_timeout", seconds=CLOSE_TIMEOUT)
        log.info("drained", finished=finished, pending_intents=pending)
