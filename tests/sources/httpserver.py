"""A tiny real HTTP server for source tests: canned answers, stalls and dropped connections.

It runs `http.server.ThreadingHTTPServer` on a free loopback port in a background thread, so
sources talk to it over real TCP. Each path answers with a `Reply`; `mode="stall"` accepts the
request and never answers (until the server stops), `mode="drop"` sends headers that promise
more body than it writes and then closes the connection, `mode="trickle"` sends the body one
byte every `Reply.trickle` seconds (until the server stops), `mode="nolength"` sends the body
without a Content-Length and closes the connection after it. Every request is recorded.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass
class Reply:
    body: bytes | str = b""
    status: int = 200
    content_type: str = "text/plain; version=0.0.4; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    mode: str = "normal"  # normal | stall | drop | trickle | nolength
    trickle: float = 0.2  # seconds between bytes in trickle mode


@dataclass
class Seen:
    path: str
    query: str
    headers: dict[str, str]


class LocalHttpServer:
    def __init__(self, port: int = 0) -> None:
        self.routes: dict[str, Reply | Callable[[Seen], Reply]] = {}
        self.requests: list[Seen] = []
        self._release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in separate writes; without this, delayed ACKs
                # add ~40 ms to every request.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                seen = Seen(
                    parts.path, parts.query, {k.lower(): v for k, v in self.headers.items()}
                )
                server.requests.append(seen)
                route = server.routes.get(parts.path)
                reply = route(seen) if callable(route) else route
                if reply is None:
                    reply = Reply(b"not found", status=404)
                body = reply.body.encode() if isinstance(reply.body, str) else reply.body
                if reply.mode == "stall":
                    server._release.wait(30)
                    self.close_connection = True
                    return
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                if reply.mode == "drop":
                    self.send_header("Content-Length", str(len(body) * 2 + 100))
                    self.end_headers()
                    self.wfile.write(body[: max(1, len(body) // 2)])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if reply.mode == "nolength":
                    self.send_header("Connection", "close")
                    self.end_headers()
                    try:
                        for start in range(0, len(body), 65536):
                            self.wfile.write(body[start : start + 65536])
                    except OSError:
                        pass  # the client refused the body part way (its size cap)
                    self.close_connection = True
                    return
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if reply.mode == "trickle":
                    try:
                        for index in range(len(body)):
                            if server._release.wait(reply.trickle):
                                break
                            self.wfile.write(body[index : index + 1])
                            self.wfile.flush()
                    except OSError:
                        pass  # the client gave up (its timeout): that is the point
                    self.close_connection = True
                    return
                try:
                    self.wfile.write(body)
                except OSError:
                    self.close_connection = True  # the client refused the body (its size cap)

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str = "/metrics") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> LocalHttpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def serving(**routes: Reply) -> Iterator[LocalHttpServer]:
    server = LocalHttpServer()
    server.routes.update({"/" + k.replace("__", "/"): v for k, v in routes.items()})
    server.start()
    try:
        yield server
    finally:
        server.stop()
