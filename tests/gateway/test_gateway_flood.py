"""Slow and idle clients never stall the gateway (issue 14 §2). The gateway serves through
`autoscaler.httpserver.serve_asgi` on httptools; these prove its limits there:
- in process: a head sent a byte at a time gets 408 and is closed at the header timeout; past
  `max_connections` a new connection gets 503 before its head is read; an idle keep-alive
  connection is closed;
- a real `autoscaler run` with a gateway section, the NeevCloud simulator and 1,024 file
  descriptors: a request held at zero is answered while 2,000 half-sent requests flood the
  gateway (kept at its connection cap for the whole hold), the daemon's own server still
  answers, and the flood costs a bounded number of log lines.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from autoscaler.httpserver import ServerLimits
from autoscaler.policy.model import GatewayConfig
from autoscaler.runtime.gateway_wiring import gateway_limits
from tests.gateway.support import AUTH, StaticRoutes, make_gateway, policy, running
from tests.gateway.test_gateway_daemon import (
    _answered,
    _config,
    _gateway_section,
    _metric,
    _post_in_thread,
)
from tests.runtime.daemon_support import sim_server, wait_for
from tests.runtime.test_runtime_http_flood import (
    assert_flood_logged_briefly,
    log_lines,
    room_for_flood,
    start_starved_daemon,
    stop_process,
)
from tests.services import free_port

anyio_test = pytest.mark.anyio


def test_limits_come_from_the_gateway_config() -> None:
    limits = gateway_limits(GatewayConfig(header_timeout=2.5, max_connections=7))
    assert (limits.header_timeout, limits.max_connections) == (2.5, 7)
    assert limits.max_body is None  # the gateway caps bodies itself (its own 413)
    assert GatewayConfig().max_connections == 1024


async def _connect(url: str) -> anyio.abc.SocketStream:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return await anyio.connect_tcp(host, int(port))


async def _read_all(stream: anyio.abc.ByteStream) -> bytes:
    """What the server sends until it closes the connection."""
    answer = b""
    try:
        while True:
            answer += await stream.receive()
    except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
        return answer


@anyio_test
async def test_a_head_sent_a_byte_at_a_time_gets_408_and_is_closed() -> None:
    gateway = make_gateway([policy("p", "chat")], StaticRoutes())
    limits = ServerLimits(header_timeout=0.5, max_body=None)
    async with running(gateway, limits) as url:
        stream = await _connect(url)
        await stream.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
        answer = b""
        with anyio.fail_after(30):
            try:
                while True:  # keep dribbling; the server must answer 408 and close
                    await stream.send(b"X")
                    with anyio.move_on_after(0.1):
                        chunk = await stream.receive()
                        answer += chunk
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                pass
        assert answer.startswith(b"HTTP/1.1 408"), answer
        # An idle connection (no byte at all) is cut too, and the gateway still answers.
        idle = await _connect(url)
        with anyio.fail_after(30):
            assert (await _read_all(idle)).startswith(b"HTTP/1.1 408")
        async with httpx.AsyncClient(base_url=url) as http:
            assert (await http.get("/healthz")).status_code == 200


@anyio_test
async def test_past_max_connections_a_new_connection_gets_503() -> None:
    gateway = make_gateway([policy("p", "chat")], StaticRoutes(), max_connections=3)
    async with running(gateway) as url:
        held = [await _connect(url) for _ in range(3)]
        for stream in held:
            await stream.send(b"POST /v1/chat/completions HTTP/1.1\r\n")  # half-sent heads
        extra = await _connect(url)
        with anyio.fail_after(30):
            assert (await _read_all(extra)).startswith(b"HTTP/1.1 503")
        for stream in held:
            await stream.aclose()

        async def served() -> bool:
            try:
                async with httpx.AsyncClient(base_url=url, headers=AUTH) as http:
                    return (await http.get("/v1/models")).status_code == 200
            except httpx.HTTPError:
                return False

        with anyio.fail_after(30):
            while not await served():  # the slots free up as the server sees the closes
                await anyio.sleep(0.05)


@anyio_test
async def test_an_idle_keep_alive_connection_is_closed() -> None:
    gateway = make_gateway([policy("p", "chat")], StaticRoutes())
    limits = ServerLimits(header_timeout=30, keepalive_timeout=1, max_body=None)
    async with running(gateway, limits) as url:
        stream = await _connect(url)
        await stream.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        with anyio.fail_after(30):
            answer = await _read_all(stream)  # the answer, then the close
        assert answer.startswith(b"HTTP/1.1 200"), answer
        assert b"408" not in answer  # idle after a response: closed quietly, no 408


# --- a real daemon with its gateway, flooded ----------------------------------------------------

FLOOD = 2_000


class SteadyFlood:
    """`count` slow clients kept up until stopped: each sends the start of a request head,
    then a header byte every `every` seconds; one the server closes is replaced by a new one,
    so the server stays at its connection cap for the whole flood. Counts the answers seen
    (`answers["503"]`, `answers["408"]`) and the connections closed by the server."""

    def __init__(self, port: int, count: int, every: float = 0.3) -> None:
        self.port = port
        self.count = count
        self.every = every
        self.closed_by_server = 0
        self.answers: dict[str, int] = {}
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SteadyFlood:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join(30)

    def _connect(self) -> tuple[socket.socket, list[bytes]]:
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", self.port))
        return sock, [b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"]

    def _run(self) -> None:
        alive = [self._connect() for _ in range(self.count)]
        while not self._stop.is_set():
            still = []
            for sock, pending in alive:
                try:
                    sock.send(pending[0] if pending else b"X")
                    pending.clear()
                    with contextlib.suppress(BlockingIOError):
                        data = sock.recv(4096)
                        if data[:9] == b"HTTP/1.1 ":
                            code = data[9:12].decode()
                            self.answers[code] = self.answers.get(code, 0) + 1
                        if data == b"" or data[:9] == b"HTTP/1.1 ":
                            raise ConnectionResetError
                    still.append((sock, pending))
                except BlockingIOError:
                    still.append((sock, pending))  # not connected yet (backlog full)
                except OSError:
                    self.closed_by_server += 1
                    sock.close()
                    still.append(self._connect())
            alive = still
            self._stop.wait(self.every)
        for sock, _ in alive:
            sock.close()


@pytest.mark.slow
def test_a_held_request_is_answered_through_a_slow_client_flood(tmp_path: Path) -> None:
    room_for_flood(FLOOD)
    # Provisioning takes 8 s: the request is held through the whole flood's start.
    with sim_server(provision_seconds=8.0) as sim:
        gw_port, http_port = free_port(), free_port()
        folder = tmp_path / "d"
        folder.mkdir()
        section = _gateway_section(gw_port, folder) + "  header_timeout: 2s\n"
        section += "  max_connections: 200\n"
        config = _config(folder, sim.url, http_port=http_port, gateway=section)
        log_path = tmp_path / "daemon.log"
        daemon = start_starved_daemon(config, log_path)
        gw = f"http://127.0.0.1:{gw_port}"

        def up(url: str) -> bool:
            try:
                return httpx.get(url, timeout=2).status_code == 200
            except httpx.HTTPError:
                return daemon.poll() is not None

        try:
            wait_for(lambda: up(gw + "/healthz"), 60, "gateway up")
            assert daemon.poll() is None, log_path.read_text()[-3000:]
            results: list[Any] = []
            thread = _post_in_thread(gw, results)
            wait_for(
                lambda: _metric(gw, "autoscaler_gateway_held_requests", model="chat") == 1,
                60,
                "the request held",
            )
            before = log_lines(log_path)
            with SteadyFlood(gw_port, FLOOD) as flood:
                _answered(thread, results)
                assert len(sim.current("chat-gw")) == 1
                # Answered while the flood went on: refused at the cap, cut at the timeout.
                assert flood.thread.is_alive()
                wait_for(lambda: flood.answers.get("408", 0) > 0, 60, "slow clients cut (408)")
                assert flood.answers.get("503", 0) > 0, flood.answers
                print(f"flood: {flood.answers}, {flood.closed_by_server} closed by the gateway")
                # The daemon's own server (another listener, same process) still answers.
                wait_for(lambda: up(f"http://127.0.0.1:{http_port}/healthz"), 60, "/healthz")
            wait_for(lambda: up(gw + "/healthz"), 60, "gateway answers after the flood")
            assert_flood_logged_briefly(daemon, log_path, before)
        finally:
            stop_process(daemon)
