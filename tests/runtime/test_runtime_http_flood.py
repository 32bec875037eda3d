"""Slow and idle clients never stall the daemon (issue 14 §2): a real `autoscaler run` process
with 1,024 file descriptors, flooded with 2,000 half-sent requests that dribble their headers
a byte at a time, still scales up when it must, answers /healthz, and logs a bounded number of
lines about it. Plus the pieces of `autoscaler.httpserver` on a live server in this process.
"""

from __future__ import annotations

import contextlib
import resource
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import anyio
import httpx
import pytest

from autoscaler.httpserver import EventLimiter, HttpProtocol, ServerLimits, serve_asgi
from tests.runtime.daemon_support import PYTHON, REPO, policy_yaml, sim_server, wait_for
from tests.runtime.daemon_support import write_config as write_daemon_config
from tests.services import free_port, require_tcp

FLOOD = 2_000
CHILD_NOFILE = 1_024  # what the daemon saw in the report: systemd's default soft limit


class SlowFlood:
    """`count` connections that each send the start of a request head and then one more
    header byte every `every` seconds, never finishing it; gives up after `bound` seconds."""

    def __init__(self, port: int, count: int, every: float = 0.5, bound: float = 90.0) -> None:
        self.port = port
        self.count = count
        self.every = every
        self.bound = bound
        self.sockets: list[socket.socket] = []
        self.closed_by_server = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SlowFlood:
        for _ in range(self.count):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", self.port))
            self.sockets.append(sock)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join(10)
        for sock in self.sockets:
            sock.close()

    def _run(self) -> None:
        started = time.monotonic()
        alive = list(self.sockets)
        chunks = [b"GET /status HTTP/1.1\r\nHost: x\r\n"] + [b"X"] * 10_000
        step = 0
        while alive and not self._stop.is_set() and time.monotonic() - started < self.bound:
            still = []
            for sock in alive:
                try:
                    sock.send(chunks[min(step, len(chunks) - 1)])
                    with contextlib.suppress(BlockingIOError):
                        if sock.recv(4096) == b"":
                            raise ConnectionResetError
                    still.append(sock)
                except BlockingIOError:
                    still.append(sock)  # not connected yet (backlog full): try again
                except OSError:
                    self.closed_by_server += 1
            alive = still
            step += 1
            self._stop.wait(self.every)


def _limit_child_nofile() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (CHILD_NOFILE, CHILD_NOFILE))


def room_for_flood(count: int) -> None:
    """This process (the flood's clients) needs `count` descriptors and some."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count + 500:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 1000), hard))


def start_starved_daemon(config: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """`autoscaler run --config CONFIG` with CHILD_NOFILE descriptors, logging to LOG_PATH."""
    with open(log_path, "ab") as out:
        return subprocess.Popen(
            [PYTHON, "-m", "autoscaler", "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=str(REPO),
            preexec_fn=_limit_child_nofile,
        )


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def log_lines(path: Path) -> int:
    return len(path.read_bytes().splitlines()) if path.exists() else 0


def assert_flood_logged_briefly(
    process: subprocess.Popen[bytes], log_path: Path, before: int
) -> None:
    """The process survived the flood, which cost a few lines per 10 s interval (not one, or
    a traceback, per accept), naming the connection cap and the header timeout."""
    flood_lines = log_lines(log_path) - before
    print(f"log lines during the flood: {flood_lines}")
    assert process.poll() is None
    assert flood_lines < 150, log_path.read_text()[-5000:]
    text = log_path.read_text()
    assert "Traceback" not in text, text[-5000:]
    assert "http_connection_limit" in text and "http_header_timeout" in text


@pytest.mark.slow
def test_slow_client_flood_does_not_stop_the_daemon(tmp_path: Path) -> None:
    import redis

    require_tcp("Redis", 6379)
    room_for_flood(FLOOD)
    key = f"test:flood:{uuid.uuid4().hex}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "daemon.log"
    client = redis.Redis()
    with sim_server(provision_seconds=0.2) as sim:
        config = write_daemon_config(
            tmp_path,
            sim.url,
            {"web": policy_yaml("web-flood", redis_key=key, min_replicas=1, max_replicas=4)},
            http_port=port,
        )
        listen = f"  listen: 127.0.0.1:{port}\n"
        config.write_text(
            config.read_text().replace(
                listen, listen + "  header_timeout: 3s\n  max_connections: 200\n"
            )
        )
        process = start_starved_daemon(config, log_path)
        try:

            def ready() -> bool:
                try:
                    return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
                except httpx.HTTPError:
                    return process.poll() is not None

            wait_for(ready, 60, "daemon ready")
            assert process.poll() is None, log_path.read_text()[-3000:]
            wait_for(lambda: sim.current("web-flood"), 60, "deployment created")
            before = log_lines(log_path)
            with SlowFlood(port, FLOOD) as flood:
                # Let the flood sit past the provider's keep-alive (5 s): acting then needs
                # new descriptors, which the flood took before the fix (EMFILE).
                time.sleep(8)
                client.delete(key)
                client.rpush(key, *range(20))  # 20 waiting / 5 per replica: 4 replicas
                scaled = wait_for(
                    lambda: [d for d in sim.current("web-flood") if d.get("replicas") == 4],
                    90,
                    "scale-up to 4 replicas during the flood",
                )
                assert scaled

                def healthy() -> bool:
                    try:
                        return httpx.get(f"{base}/healthz", timeout=3).status_code == 200
                    except httpx.HTTPError:
                        return False

                wait_for(healthy, 60, "/healthz 200 during the flood")
                # The slow ones are cut at the header timeout, not held forever.
                wait_for(lambda: flood.closed_by_server == FLOOD, 60, "every slow client cut")
            assert_flood_logged_briefly(process, log_path, before)
        finally:
            client.delete(key)
            stop_process(process)


# --- the pieces, in process ------------------------------------------------------------------

anyio_test = pytest.mark.anyio
# Every limit holds on both of uvicorn's protocols: h11 (the daemon) and httptools (the gateway).
BOTH_PROTOCOLS = pytest.mark.parametrize("http", ["h11", "httptools"])


async def _hello(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
    body = b"hello\n"
    await send(  # type: ignore[operator]
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"6")]}
    )
    await send({"type": "http.response.body", "body": body})  # type: ignore[operator]


@anyio_test
@BOTH_PROTOCOLS
async def test_header_timeout_cuts_a_byte_by_byte_client(http: HttpProtocol) -> None:
    limits = ServerLimits(header_timeout=0.5, max_connections=10)
    async with anyio.create_task_group() as tg:
        host, port = await tg.start(
            lambda **kw: serve_asgi(_hello, "127.0.0.1:0", limits=limits, http=http, **kw)
        )
        stream = await anyio.connect_tcp(host, port)
        answer = b""
        with anyio.fail_after(30):
            await stream.send(b"GET / HTTP/1.1\r\n")
            try:
                while True:
                    await stream.send(b"X")  # never ends the head
                    with anyio.move_on_after(0.1):
                        chunk = await stream.receive()
                        answer += chunk
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                pass
        assert answer.startswith(b"HTTP/1.1 408"), answer
        # A normal request still works, and an idle connection is cut too.
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
            assert (await http.get("/")).text == "hello\n"
        idle = await anyio.connect_tcp(host, port)
        with anyio.fail_after(30):
            assert (await idle.receive()).startswith(b"HTTP/1.1 408")
        tg.cancel_scope.cancel()


@anyio_test
@BOTH_PROTOCOLS
async def test_body_timeout_closes_a_dribbled_body(http: HttpProtocol) -> None:
    async def reader(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
        while (await receive())["type"] == "http.request":  # type: ignore[operator]
            pass  # until the disconnect

    limits = ServerLimits(header_timeout=30, body_timeout=0.5)
    async with anyio.create_task_group() as tg:
        host, port = await tg.start(
            lambda **kw: serve_asgi(reader, "127.0.0.1:0", limits=limits, http=http, **kw)
        )
        stream = await anyio.connect_tcp(host, port)
        await stream.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        closed, answer = False, b""
        with anyio.fail_after(30):
            try:
                while True:
                    await stream.send(b"x")  # a byte at a time, never the whole body
                    with anyio.move_on_after(0.1):
                        answer += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                closed = True
        assert closed
        assert answer.startswith(b"HTTP/1.1 408"), answer  # the client is told why
        tg.cancel_scope.cancel()


@anyio_test
@BOTH_PROTOCOLS
async def test_connection_cap_refuses_past_max_with_503(http: HttpProtocol) -> None:
    limits = ServerLimits(header_timeout=30, max_connections=3)
    async with anyio.create_task_group() as tg:
        host, port = await tg.start(
            lambda **kw: serve_asgi(_hello, "127.0.0.1:0", limits=limits, http=http, **kw)
        )
        held = [await anyio.connect_tcp(host, port) for _ in range(3)]
        for stream in held:
            await stream.send(b"GET / HTTP/1.1\r\n")  # half-sent heads hold their slots
        extra = await anyio.connect_tcp(host, port)
        with anyio.fail_after(30):
            assert (await extra.receive()).startswith(b"HTTP/1.1 503")
        for stream in held:
            await stream.aclose()

        async def served() -> bool:
            try:
                async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
                    return (await http.get("/")).status_code == 200
            except httpx.HTTPError:
                return False

        with anyio.fail_after(30):
            while not await served():  # the slots free up as the server sees the closes
                await anyio.sleep(0.05)
        tg.cancel_scope.cancel()


@anyio_test
@BOTH_PROTOCOLS
async def test_body_cap_answers_413_declared_and_streamed(http: HttpProtocol) -> None:
    seen: list[int] = []

    async def echo(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
        size = 0
        while True:
            message = await receive()  # type: ignore[operator]
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        seen.append(size)
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"ok"})  # type: ignore[operator]

    limits = ServerLimits(max_body=1000)
    async with anyio.create_task_group() as tg:
        host, port = await tg.start(
            lambda **kw: serve_asgi(echo, "127.0.0.1:0", limits=limits, http=http, **kw)
        )
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=30) as http:
            assert (await http.post("/", content=b"x" * 1000)).status_code == 200
            assert (await http.post("/", content=b"x" * 1001)).status_code == 413

        # Chunked (no Content-Length): counted while it streams in.
        stream = await anyio.connect_tcp(host, port)
        chunk = b"64\r\n" + b"y" * 100 + b"\r\n"
        await stream.send(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 20
        )
        with anyio.fail_after(30):
            assert (await stream.receive()).startswith(b"HTTP/1.1 413")
        await stream.aclose()
        assert seen == [1000]
        tg.cancel_scope.cancel()


def test_event_limiter_logs_once_per_interval_with_the_count() -> None:
    now = [0.0]
    lines: list[tuple[str, dict[str, object]]] = []

    class Sink:
        def warning(self, event: str, **fields: object) -> None:
            lines.append((event, fields))

    limiter = EventLimiter(10.0, logger=Sink(), clock=lambda: now[0])
    for i in range(1000):
        now[0] = i * 0.05  # 1,000 events over 50 s
        limiter.warning("http_connection_limit")
    assert len(lines) == 5
    assert lines[0][1]["suppressed"] == 0
    logged_or_counted = sum(int(f["suppressed"]) for _, f in lines) + len(lines)  # type: ignore[call-overload]
    assert 1000 - 200 < logged_or_counted <= 1000  # the rest waits for the next line
    assert limiter.total["http_connection_limit"] == 1000
