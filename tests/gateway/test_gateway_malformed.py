"""Malformed requests to the gateway over real HTTP: refused at once with a 4xx in OpenAI's
error shape naming what is wrong; never held (a held request asks the daemon to wake a
deployment at zero), never buffered without bound."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.gateway.support import (
    AUTH,
    CHAT,
    KEY,
    RecordingActivator,
    StaticRoutes,
    make_gateway,
    policy,
    running,
)
from tests.rawhttp import exchange, json_response

pytestmark = pytest.mark.anyio


def _at_zero() -> tuple[Any, RecordingActivator]:
    """A gateway whose only model's deployment is absent: a request it accepted would be
    held (and its activation asked for); `max_hold` ends such a hold soon."""
    activator = RecordingActivator()
    gateway = make_gateway([policy("p", "chat", max_hold=2.0)], StaticRoutes(), activator)
    return gateway, activator


@pytest.mark.parametrize(
    ("path", "extra", "param"),
    [
        ("/v1/chat/completions", {"stream": "yes"}, "stream"),
        ("/v1/chat/completions", {"stream": 1}, "stream"),
        ("/v1/chat/completions", {"stream": True, "stream_options": [1]}, "stream_options"),
        ("/v1/chat/completions", {"messages": "hello"}, "messages"),
        ("/v1/chat/completions", {"messages": []}, "messages"),
        ("/v1/chat/completions", {"messages": [1, 2]}, "messages"),
        ("/v1/chat/completions", {"messages": None}, "messages"),
        ("/v1/chat/completions", {"max_tokens": "12"}, "max_tokens"),
        ("/v1/chat/completions", {"max_tokens": 1.5}, "max_tokens"),
        ("/v1/completions", {"prompt": "hi", "stream": {}}, "stream"),
        ("/v1/completions", {"prompt": "hi", "max_tokens": True}, "max_tokens"),
    ],
)
async def test_a_wrongly_typed_field_is_refused_at_once_and_never_held(
    path: str, extra: dict[str, Any], param: str
) -> None:
    gateway, activator = _at_zero()
    async with running(gateway) as gw, httpx.AsyncClient(base_url=gw, timeout=30) as client:
        response = await client.post(path, json={**CHAT, **extra}, headers=AUTH)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and error["code"] == "invalid_request"
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith(param), error
    assert activator.calls == []  # nothing asked the daemon to wake the deployment


async def test_several_authorization_headers_are_refused() -> None:
    gateway, activator = _at_zero()
    async with running(gateway) as gw, httpx.AsyncClient(base_url=gw, timeout=30) as client:
        for path, method in (("/v1/chat/completions", "POST"), ("/v1/models", "GET")):
            response = await client.request(
                method,
                path,
                json=CHAT,
                headers=[("Authorization", f"Bearer {KEY}"), ("Authorization", "Bearer x")],
            )
            assert response.status_code == 400
            assert response.json()["error"]["code"] == "duplicate_authorization"
            assert response.json()["error"]["message"] == "send one Authorization header, not 2"
    assert activator.calls == []


def _openai_error(answer: bytes) -> tuple[int, dict[str, Any]]:
    status, body = json_response(answer)
    return status, body["error"]


async def test_the_server_answers_what_it_refuses_itself_in_openai_shape() -> None:
    gateway, _ = _at_zero()
    async with running(gateway) as gw:
        host, port = gw.removeprefix("http://").rsplit(":", 1)
        status, error = _openai_error(
            await exchange(host, int(port), b"GET /healthz HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n")
        )
        assert status == 400 and error["code"] == "invalid_http", error
        assert error["message"].startswith("invalid HTTP request: "), error
        # A header that never ends: httptools kept all of it (75 MB in 8 s, loop blocked).
        head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "
        big = await exchange(host, int(port), head, b"y" * 65536, times=200)
        status, error = _openai_error(big)
        assert status == 431 and error["code"] == "head_too_large", error
        async with httpx.AsyncClient(base_url=gw, timeout=30) as client:
            assert (await client.get("/healthz")).status_code == 200
