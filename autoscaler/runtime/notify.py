"""systemd's sd_notify protocol, spoken directly over `$NOTIFY_SOCKET` (no libsystemd).

With `Type=notify` systemd waits for `READY=1` before it calls the service started, expects
`WATCHDOG=1` at least every `WatchdogSec` (it exports the period as `$WATCHDOG_USEC`) and is
told `STOPPING=1` when shutdown begins. Without `$NOTIFY_SOCKET` (a terminal, a container)
every call is a no-op. A failed send is logged and ignored: notification must never take the
daemon down. Deciding *when* to notify is the daemon's business, not this module's.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping

import anyio
import structlog

log = structlog.get_logger("autoscaler.notify")


class Notifier:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.address = self._address(env.get("NOTIFY_SOCKET", ""))
        self._watchdog_usec = self._positive_int(env.get("WATCHDOG_USEC"))
        watchdog_pid = self._positive_int(env.get("WATCHDOG_PID"))
        # WATCHDOG_PID names the process the watchdog is meant for; a child must not ping.
        if watchdog_pid is not None and watchdog_pid != os.getpid():
            self._watchdog_usec = None
        self._socket: socket.socket | None = None

    @staticmethod
    def _address(raw: str) -> str | bytes | None:
        if not raw:
            return None
        if raw.startswith("@"):
            return b"\0" + raw[1:].encode()  # abstract namespace
        if raw.startswith("/"):
            return raw
        log.warning("notify_socket_ignored", reason="NOTIFY_SOCKET is neither /path nor @name")
        return None

    @staticmethod
    def _positive_int(raw: str | None) -> int | None:
        if raw is None or not raw.strip().isdigit():
            return None
        value = int(raw)
        return value if value > 0 else None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *assignments: str) -> bool:
        """Send `KEY=VALUE` lines in one datagram; True when it was sent."""
        if self.address is None:
            return False
        message = "\n".join(assignments).encode()
        try:
            if self._socket is None:
                self._socket = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                )
            self._socket.sendto(message, self.address)
        except OSError as exc:
            log.warning(
                "notify_failed", message=assignments[0] if assignments else "", error=str(exc)
            )
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        extra = (f"STATUS={status}",) if status else ()
        return self.send("READY=1", f"MAINPID={os.getpid()}", *extra)

    def reloading(self) -> bool:
        return self.send("RELOADING=1")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        extra = (f"STATUS={status}",) if status else ()
        return self.send("STOPPING=1", *extra)

    def status(self, text: str) -> bool:
        # One line: a newline would start a new assignment.
        return self.send("STATUS=" + " ".join(text.splitlines()))

    def watchdog_interval(self) -> float | None:
        """Seconds between pings: half the watchdog period (systemd's advice), or None when
        no watchdog is configured for this process."""
        if self._watchdog_usec is None:
            return None
        return self._watchdog_usec / 2 / 1_000_000

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


async def watchdog_loop(notifier: Notifier, healthy: Callable[[], bool]) -> None:
    """Ping the watchdog every `watchdog_interval()` while `healthy()`; an unhealthy daemon
    stays silent so systemd restarts it. Returns at once when there is no watchdog."""
    interval = notifier.watchdog_interval()
    if interval is None or not notifier.enabled:
        return
    was_healthy = True
    while True:
        ok = healthy()
        if ok:
            notifier.watchdog()
        elif was_healthy:
            log.error("watchdog_withheld", reason="the daemon reports itself unhealthy")
        was_healthy = ok
        await anyio.sleep(interval)
