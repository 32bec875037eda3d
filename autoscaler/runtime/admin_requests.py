"""What the daemon's HTTP endpoints read from a request: the override and activation bodies,
the history query, and a body read under a cap. Each parser raises ValueError with a message
that starts with the field that is wrong (`replicas: ...`, `since: ...`), which the endpoint
answers as a 400; nothing a client sends may end in a 500.

Durations are the policy files' (`autoscaler.policy.durations`: `15s`, `5m`, `1h30m`, `500ms`
or seconds, ASCII digits only), positive here; an override lasts at most 365 days, like any
duration in a file.

Must not live here: routes, authentication, what the daemon does with the values (`admin.py`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request

from autoscaler.httpserver import BodyTooLarge
from autoscaler.policy import durations
from autoscaler.textcut import cut

MAX_OVERRIDE_SECONDS = durations.MAX_SECONDS
MAX_HISTORY_LIMIT = 10**9
"""A larger `?limit=` reads every entry (the stores' integers are 64-bit: 10**30 was a 500)."""


def parse_duration(value: Any, *, longest: float | None = None) -> float:
    """Seconds from `300`, `"300"`, `"5m"`, `"1h30m"`: positive, and at most `longest` when
    given; ValueError with the allowed forms (never OverflowError: 10**400 is refused)."""
    seconds = durations.parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"{_shown(value)} must be a positive duration")
    if longest is not None and seconds > longest:
        raise ValueError(f"{_shown(value)} is longer than the most allowed, 365d")
    return seconds


def decode_body(raw: bytes) -> Any:
    """The JSON document of a request body; ValueError `body: not valid JSON` for anything
    json cannot read, including what it refuses with other errors than a syntax error: a
    nesting deeper than the interpreter's stack (RecursionError: a 500 before), an integer
    of more than 4,300 digits."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise ValueError("body: not valid JSON") from None


def parse_override(body: Any) -> tuple[int, float]:
    """(replicas, duration seconds) from the override request body, or ValueError naming
    the field that is wrong."""
    if not isinstance(body, dict):
        raise ValueError('body: must be a JSON object like {"replicas": 3, "duration": "5m"}')
    unknown = sorted(set(body) - {"replicas", "duration"})
    if unknown:
        raise ValueError(f"{unknown[0][:60]}: unknown field (allowed: replicas, duration)")
    if "replicas" not in body:
        raise ValueError("replicas: missing required field")
    replicas = body["replicas"]
    if isinstance(replicas, bool) or not isinstance(replicas, int):
        raise ValueError(f"replicas: {_shown(replicas)} must be a whole number >= 0")
    if replicas < 0:
        raise ValueError(f"replicas: {replicas} must be >= 0")
    if "duration" not in body:
        raise ValueError("duration: missing required field")
    try:
        duration = parse_duration(body["duration"], longest=MAX_OVERRIDE_SECONDS)
    except ValueError as exc:
        raise ValueError(f"duration: {exc}") from None
    return replicas, duration


def parse_activate(raw: bytes) -> tuple[str | None, dict[str, int]]:
    """(origin, held per model) from `{"origin": "gw-1", "held": {"chat": 3}}` (both
    optional), or ValueError naming the field."""
    if not raw.strip():
        return None, {}
    body = decode_body(raw)
    if not isinstance(body, dict):
        raise ValueError('body: must be a JSON object like {"origin": "gw", "held": {"m": 1}}')
    origin = body.get("origin")
    if origin is not None and not isinstance(origin, str):
        raise ValueError("origin: must be a string")
    held = body.get("held", {})
    if not isinstance(held, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
        for k, v in held.items()
    ):
        raise ValueError("held: must map model names to whole numbers >= 0")
    return origin, held


def parse_history_query(query: Mapping[str, str], now: float) -> tuple[float | None, int | None]:
    """(since as unix seconds, limit) from `?since=1h` (a duration back from `now`) or
    `?since=2026-12-01T02:00:00Z` (an instant), and `?limit=N`; ValueError naming the field."""
    since: float | None = None
    text = query.get("since")
    if text:
        try:
            since = now - parse_duration(text)
        except ValueError:
            try:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(
                    f"since: {_shown(text)} is neither a duration (e.g. '1h', '30m') nor an "
                    "ISO 8601 time (e.g. 2026-12-01T02:00:00Z)"
                ) from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            since = moment.timestamp()
    limit: int | None = None
    raw = query.get("limit")
    if raw:
        digits = raw.lstrip("0")
        if not (raw.isascii() and raw.isdigit()) or not digits:
            raise ValueError(f"limit: {_shown(raw)} must be a whole number >= 1")
        limit = int(digits) if len(digits) <= 10 else None  # int() of 5,000 digits raises
        if limit is not None and limit > MAX_HISTORY_LIMIT:
            limit = None
    return since, limit


async def read_capped(request: Request, limit: int) -> bytes:
    """The request body, read as it streams; BodyTooLarge as soon as it passes `limit` bytes
    (a declared Content-Length past it is refused before anything is read). A client that
    goes away mid-body raises starlette's ClientDisconnect."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _shown(value: Any) -> str:
    """`value` as an error message quotes it: repr, cut to 60 characters."""
    return cut(repr(value), 60)
