"""HEAD answered like GET without a body, for every app served (RFC 9110 9.3.2): the app sees
a GET, so every route that takes GET takes HEAD, with the status and headers (Content-Length
included) of the GET answer; no body byte is passed on, whatever the app sends."""

from __future__ import annotations

from autoscaler.httpserver.limits import ASGIApp, Message, Receive, Scope, Send


def head_as_get(app: ASGIApp) -> ASGIApp:
    """ASGI middleware: a HEAD request reaches `app` as a GET whose body is dropped. The
    scope is copied: uvicorn's own copy still says HEAD (it frames the answer as one)."""

    async def served(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await app({**scope, "method": "GET"}, receive, headers_only)

    return served
