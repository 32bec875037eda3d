"""Small request/response helpers shared by the simulator apps (JSON bodies, auth, errors)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from autoscaler.fakecloud.state import SimState


class ApiError(Exception):
    """Answered as the provider's error body with this status."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def sim_of(request: Request) -> SimState:
    sim: SimState = request.app.state.sim
    return sim


def require_token(request: Request) -> None:
    if not sim_of(request).token_ok(request.headers.get("authorization")):
        raise ApiError(401, "unauthorized", "missing or invalid Bearer token")


async def json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else None
    except ValueError as exc:
        raise ApiError(400, "invalid_request", f"request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "request body must be a JSON object")
    return body


def rfc3339(epoch: float) -> str:
    return (
        dt.datetime.fromtimestamp(epoch, tz=dt.UTC)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z")
    )


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def json_response(body: Any, status: int = 200) -> Response:
    return JSONResponse(body, status_code=status)
