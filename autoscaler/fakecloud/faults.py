"""Fault injection for the simulators: the settings (`Faults`), one-shot scripted faults, and
the ASGI middleware that applies them and keeps the log of write calls.

Faults apply to the provider API only, never to the `/_sim/` inspection routes. Kinds:
- `error`: answer `error_status` (5xx, 4xx...) with the provider's error body;
- `error_after`: handle the request (a write takes effect), then answer the error instead
  (a 5xx after the request was applied: another lost-response case);
- `rate_limit`: 429 with `Retry-After: retry_after`;
- `drop`: close the connection without a response, before the request is handled;
- `drop_after`: handle the request (a create or scale takes effect) and then close without the
  response: the "lost response" case that must never produce a second deployment;
- `latency`: added delay before handling.
A dropped connection sends a response head and then fails: over a real socket (uvicorn) the
connection is closed mid-response, in-process (`httpx.ASGITransport`) the exception raised is
an `httpx.RemoteProtocolError`: the client sees the same failure both ways.
"""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import anyio
import httpx

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
ErrorBody = Callable[[int, str, str], dict[str, Any]]

MAX_LOG = 100_000  # write calls kept in the request log
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FAULT_KINDS = ("error", "error_after", "rate_limit", "drop", "drop_after", "latency")


class SimulatedDrop(httpx.RemoteProtocolError):
    """Raised to cut a connection without a complete response."""

    def __init__(self) -> None:
        super().__init__("simulator dropped the connection")


@dataclass
class Faults:
    """Random faults, each an independent probability per API request."""

    error_rate: float = 0.0
    error_status: int = 500
    latency: float = 0.0  # seconds added to every API request
    rate_limit_rate: float = 0.0
    retry_after: float = 1.0  # seconds, sent in Retry-After with each 429
    drop_rate: float = 0.0
    drop_after_rate: float = 0.0
    provision_fail_rate: float = 0.0  # new deployments end `failed` instead of `ready`
    methods: tuple[str, ...] | None = None  # only these HTTP methods get faults; None: all
    seed: int | None = None

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a partial update (from `POST /_sim/faults`), checking names and values."""
        known = {f.name: f for f in fields(self)}
        for key, value in changes.items():
            if key not in known:
                raise ValueError(f"unknown fault setting {key!r} (known: {', '.join(known)})")
            if key == "methods":
                if value is not None and not (
                    isinstance(value, list | tuple) and all(isinstance(m, str) for m in value)
                ):
                    raise ValueError("methods must be a list of HTTP methods or null")
                value = None if value is None else tuple(m.upper() for m in value)
            elif key in ("error_status", "seed"):
                if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                    raise ValueError(f"{key} must be an integer")
            else:
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise ValueError(f"{key} must be a number >= 0")
                if key.endswith("_rate") and value > 1:
                    raise ValueError(f"{key} must be a probability in [0, 1]")
            setattr(self, key, value)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ScriptedFault:
    """A fault for the next `times` matching requests (deterministic, for tests)."""

    kind: str
    method: str | None = None  # e.g. "POST"; None matches any
    path: str | None = None  # a substring of the path; None matches any
    times: int = 1
    status: int = 500
    retry_after: float = 1.0
    seconds: float = 0.0  # for latency

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method) and (
            self.path is None or self.path in path
        )


class FaultPlan:
    """Random faults plus a queue of scripted ones; picks what happens to one request."""

    def __init__(self, faults: Faults):
        self.faults = faults
        self.scripted: list[ScriptedFault] = []
        self.rng = random.Random(faults.seed)

    def script(self, fault: ScriptedFault) -> None:
        if fault.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {fault.kind!r} must be one of {', '.join(FAULT_KINDS)}")
        self.scripted.append(fault)

    def pick(self, method: str, path: str) -> ScriptedFault | None:
        for fault in self.scripted:
            if fault.matches(method, path):
                fault.times -= 1
                if fault.times <= 0:
                    self.scripted.remove(fault)
                return fault
        f = self.faults
        if f.methods is not None and method not in f.methods:
            return None
        roll = self.rng.random
        if f.drop_rate and roll() < f.drop_rate:
            return ScriptedFault("drop")
        if f.drop_after_rate and roll() < f.drop_after_rate:
            return ScriptedFault("drop_after")
        if f.rate_limit_rate and roll() < f.rate_limit_rate:
            return ScriptedFault("rate_limit", retry_after=f.retry_after)
        if f.error_rate and roll() < f.error_rate:
            return ScriptedFault("error", status=f.error_status)
        return None


async def _json_response(
    send: Send, status: int, body: dict[str, Any], headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


async def _drop(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
        }
    )
    raise SimulatedDrop()


class FaultMiddleware:
    """Applies the fault plan to provider API requests and logs every write call."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        plan: FaultPlan,
        error_body: ErrorBody,
        log: list[dict[str, Any]],
        clock: Callable[[], float],
        bypass: tuple[str, ...] = (),
    ):
        self.app = app
        self.bypass = ("/_sim", "/healthz", *bypass)  # paths that get no faults and no log entry
        self.plan = plan
        self.error_body = error_body
        self.log = log
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Log a write, pick its fault (if any) and answer as the fault says.

        Long because it is the table of fault kinds, one branch each, around the one replayed
        body and the one log entry they all share.
        """
        if scope["type"] != "http" or scope["path"].startswith(self.bypass):
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        raw = b""
        while True:  # read the whole body once: it is logged, then replayed to the app
            message = await receive()
            raw += message.get("body", b"")
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        entry: dict[str, Any] | None = None
        if method in WRITE_METHODS:
            try:
                body: Any = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            entry = {"t": self.clock(), "method": method, "path": path, "body": body}
            entry["status"] = None
            entry["fault"] = None
            self.log.append(entry)
            if len(self.log) > MAX_LOG:  # a long-running demo server must not grow forever
                del self.log[: len(self.log) - MAX_LOG]

        async def record(message: Message) -> None:
            if message["type"] == "http.response.start" and entry is not None:
                entry["status"] = message["status"]
            await send(message)

        fault = self.plan.pick(method, path)
        if self.plan.faults.latency:
            await anyio.sleep(self.plan.faults.latency)
        if entry is not None and fault is not None:
            entry["fault"] = fault.kind
        if fault is None or fault.kind == "latency":
            if fault is not None:
                await anyio.sleep(fault.seconds)
            await self.app(scope, replay, record)
        elif fault.kind == "error":
            code = "internal_error" if fault.status >= 500 else "simulated_error"
            body = self.error_body(fault.status, code, "simulated fault")
            await _json_response(record, fault.status, body)
        elif fault.kind == "error_after":

            async def discard(message: Message) -> None:
                return None

            await self.app(scope, replay, discard)
            body = self.error_body(fault.status, "internal_error", "simulated fault after commit")
            await _json_response(record, fault.status, body)
        elif fault.kind == "rate_limit":
            body = self.error_body(429, "rate_limited", "too many requests (simulated)")
            retry = f"{fault.retry_after:g}".encode()
            await _json_response(record, 429, body, ((b"retry-after", retry),))
        elif fault.kind == "drop":
            await _drop(send)
        else:  # drop_after: the request takes effect, its response is lost

            async def swallow(message: Message) -> None:
                if message["type"] == "http.response.start" and entry is not None:
                    entry["status"] = message["status"]

            await self.app(scope, replay, swallow)
            await _drop(send)
