"""The way to the deployments: which headers cross, the OpenAI error shape, and reading
token usage out of responses (whole JSON bodies and server-sent event streams).

Headers: hop-by-hop headers (RFC 9110 7.6.1 and the ones `Connection` names) never cross;
the client's `Authorization` (and cookies, and our own `X-Scale-Up-Timeout`) never reach the
deployment, whose credential comes from the provider profile (`InferenceRoute.headers`).
Everything here is pure; the HTTP client itself lives in `service.py`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
HOLD_HEADER = b"x-scale-up-timeout"
NOT_FORWARDED = HOP_BY_HOP | {b"host", b"content-length", b"authorization", b"cookie", HOLD_HEADER}
NOT_RETURNED = HOP_BY_HOP | {b"content-length", b"set-cookie", b"server", b"date"}


def _connection_tokens(headers: Iterable[tuple[bytes, bytes]]) -> set[bytes]:
    tokens: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            tokens.update(t.strip().lower() for t in value.split(b","))
    return tokens


def request_headers(
    client: Iterable[tuple[bytes, bytes]], route_headers: Mapping[str, str]
) -> list[tuple[bytes, bytes]]:
    """What goes upstream: the client's end-to-end headers minus its credentials, plus the
    route's (the provider's inference credential wins over anything of the same name)."""
    client = list(client)
    named = _connection_tokens(client)
    ours = {k.lower().encode("latin-1") for k in route_headers}
    out = [
        (name, value)
        for name, value in client
        if (lname := name.lower()) not in NOT_FORWARDED and lname not in named and lname not in ours
    ]
    out.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in route_headers.items())
    return out


def response_headers(upstream: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    upstream = list(upstream)
    named = _connection_tokens(upstream)
    return [
        (name, value)
        for name, value in upstream
        if (lname := name.lower()) not in NOT_RETURNED and lname not in named
    ]


# --- errors -----------------------------------------------------------------------------------

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


def openai_error(
    status: int, message: str, code: str | None = None, param: str | None = None
) -> bytes:
    """`{"error": {"message", "type", "param", "code"}}`, the shape OpenAI clients parse;
    `param` names the request field that is wrong, if one is."""
    kind = ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return json.dumps(body, separators=(",", ":")).encode()


def as_openai_error(status: int, body: bytes) -> bytes:
    """An upstream error body as the client will see it: already OpenAI-shaped bodies pass
    unchanged; anything else (vLLM's `{"detail"}`, HTML, text) is wrapped with its text."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        document = None
    if isinstance(document, dict) and isinstance(document.get("error"), dict):
        return body
    if isinstance(document, dict) and isinstance(document.get("message"), str):
        text = document["message"]
    elif isinstance(document, dict) and isinstance(document.get("detail"), str):
        text = document["detail"]
    else:
        text = body[:500].decode("utf-8", "replace").strip() or f"status {status}"
    return openai_error(status, f"upstream: {text}", code=f"upstream_{status}")


def sse_error_event(message: str, code: str) -> bytes:
    """The last event of a stream the deployment broke off: clients see why it stopped."""
    return b"data: " + openai_error(502, message, code) + b"\n\n"


# --- usage --------------------------------------------------------------------------------------


def usage_of(document: object) -> tuple[int, int] | None:
    """(prompt_tokens, completion_tokens) from an OpenAI response or stream chunk."""
    if not isinstance(document, dict):
        return None
    usage = document.get("usage")
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    return max(0, prompt), max(0, completion)


def json_usage(body: bytes) -> tuple[int, int] | None:
    try:
        return usage_of(json.loads(body))
    except (ValueError, RecursionError):
        return None


class SseUsage:
    """Watches a server-sent event stream for `usage` (vLLM sends it in the last chunk when
    asked with `stream_options.include_usage`). Only lines that mention usage are parsed."""

    MAX_LINE = 1 << 20

    def __init__(self) -> None:
        self._tail = b""
        self.usage: tuple[int, int] | None = None

    def feed(self, chunk: bytes) -> None:
        seam = self._tail[-8:] + chunk[:8]
        if b'"usage"' not in chunk and b'"usage"' not in self._tail and b'"usage"' not in seam:
            # Fast path: keep only what may begin a line that continues in the next chunk.
            cut = chunk.rfind(b"\n")
            self._tail = chunk[cut + 1 :] if cut >= 0 else (self._tail + chunk)[-self.MAX_LINE :]
            return
        data = self._tail + chunk
        lines = data.split(b"\n")
        self._tail = lines.pop()[-self.MAX_LINE :]
        for line in lines:
            if line.startswith(b"data:") and b'"usage"' in line:
                try:
                    found = usage_of(json.loads(line[5:].strip()))
                except (ValueError, RecursionError):
                    continue
                if found is not None:
                    self.usage = found
