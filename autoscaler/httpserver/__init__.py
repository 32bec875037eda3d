"""Serving an ASGI app safely: bounded header time, bounded connections, bounded bodies, and
resource exhaustion logged once per interval. Used by every HTTP server the project runs
(the daemon's `/metrics` + admin, the gateway).

`serve_asgi(app, listen, limits=ServerLimits(...), http="h11"|"httptools", task_status=...)`
binds `listen`, runs uvicorn (without its signal handlers: the caller's process owns them)
until cancelled, and closes within a bounded grace. The daemon serves on h11, the gateway on
httptools (measured several times faster in benchmarks/bench_gateway.py).

Why protocol subclasses: uvicorn's protocols have a keep-alive timeout but no bound on how
long a request head may take, and their `limit_concurrency` only answers 503 once a full head
has arrived, so a client that sends its headers a byte at a time holds a file descriptor
forever. `protocol._Limited` (one mixin over both protocol classes: `_LimitedH11`,
`_LimitedHttpTools`) adds, per connection:
- an accept-side cap: past `max_connections` open connections a new one gets a 503 and is
  closed at once, so hostile clients never hold more than `max_connections` descriptors;
- a header timer started when a request head begins (connection made, or the first byte after
  a keep-alive pause) and stopped when the head is complete; when it fires the connection
  gets a 408 and is closed;
- a body timer from the end of the head to the end of the body; when it fires the
  connection gets a 408 (unless the app answered already) and is closed;
- a cap on a request head's size (`max_head`; httptools has none of its own): 431 and close;
- a JSON error naming what the parser found wrong for a request it cannot parse (uvicorn
  answers a plain "Invalid HTTP request received."), shaped by the server's `error_body`
  like the refusals and timeouts above;
- answers in request order on a pipelining connection (httptools parses ahead): a request
  refused (unparsable, head too long or too slow) behind requests still being served gets
  its 4xx after their answers, then the connection closes; a queued request's body timer
  starts when it is served; a client that leaves is seen by every request of its
  connection (uvicorn tells only the newest).
Every app served answers HEAD like GET without a body (`head.head_as_get`: the app sees a
GET), so no app or route handles HEAD itself.
A loop exception handler turns asyncio's `socket.accept() out of system resource` (EMFILE)
into one rate-limited line instead of a traceback per accept, and a logging filter does the
same for uvicorn's per-request warnings. `raise_open_files_limit` lifts the soft descriptor
limit to the hard one (systemd's `LimitNOFILE=` sets both).

Where: `limits.py` (ServerLimits, EventLimiter, the body cap), `protocol.py` (the connection
limits), `head.py` (HEAD), `serve.py` (binding and serving). Must not live here: routes,
authentication, what the app serves.
"""

from __future__ import annotations

from autoscaler.httpserver.limits import (
    ASGIApp,
    BodyTooLarge,
    EventLimiter,
    Message,
    Receive,
    Scope,
    Send,
    ServerLimits,
    limit_body,
)
from autoscaler.httpserver.protocol import ErrorBody, HttpProtocol, json_error
from autoscaler.httpserver.serve import (
    SHUTDOWN_GRACE,
    ListenAddressError,
    bind_socket,
    parse_listen,
    raise_open_files_limit,
    serve_asgi,
)

__all__ = [
    "SHUTDOWN_GRACE",
    "ASGIApp",
    "BodyTooLarge",
    "ErrorBody",
    "EventLimiter",
    "HttpProtocol",
    "ListenAddressError",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "ServerLimits",
    "bind_socket",
    "json_error",
    "limit_body",
    "parse_listen",
    "raise_open_files_limit",
    "serve_asgi",
]
