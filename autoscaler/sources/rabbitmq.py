"""The `rabbitmq` source: a queue's depth through aio-pika, plus unacked via the management API.

Ready messages come from a passive `queue.declare` (its `message_count`): current, cheap, and
it never creates the queue; a missing queue is a permanent error. With `include_unacked`, the
queue's `messages_unacknowledged` from the management plugin's HTTP API
(`GET {management_url}/api/queues/{vhost}/{queue}`, basic auth with the AMQP user and
password) is added. The management figures are sampled by RabbitMQ (every 5 s by default), so
that part can lag a little behind the ready count.

The management answer is read up to `MAX_JSON_BODY` (1 MiB) and decoded strictly
(`jsondoc`). A negative count from either is a failed read (`BadValueError`).

One AMQP connection and channel are kept across reads; a closed channel (RabbitMQ closes it
after a failed passive declare) or connection is reopened on the next read. The password
(`password:` or in the URL; `password:` wins) is resolved at each (re)connection.
"""

from __future__ import annotations

from urllib.parse import quote

import aio_pika
import aiormq.exceptions as amqp_errors
import httpx
from aio_pika.abc import AbstractChannel, AbstractConnection
from yarl import URL

from autoscaler.policy.model import RabbitMQSource
from autoscaler.sources import jsondoc
from autoscaler.sources.base import PermanentSourceError, SourceError, TemporarySourceError
from autoscaler.sources.common import (
    MAX_JSON_BODY,
    bounded_read,
    clip,
    load_value,
    off_loop,
    redact_url,
    resolve_secret,
)
from autoscaler.sources.httpget import (
    http_get,
)


class RabbitMQQueueSource:
    def __init__(
        self,
        spec: RabbitMQSource,
        *,
        name: str,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        if spec.include_unacked and not spec.management_url:
            raise PermanentSourceError(
                name, 'missing required parameter "management_url" for include_unacked'
            )
        self.spec = spec
        self.name = name
        unacked = " +unacked" if spec.include_unacked else ""
        self.describe = f"rabbitmq {redact_url(spec.url)} queue={spec.queue}{unacked}"
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._stale = False  # a read timed out mid-request: reconnect before the next one
        self._http = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(spec.timeout))

    async def read(self) -> float:
        return await bounded_read(self.name, self.spec.timeout, self._read, self._mark_stale)

    def _mark_stale(self) -> None:
        self._stale = True

    async def aclose(self) -> None:
        await self._drop_connection()
        await self._http.aclose()

    def _url(self) -> URL:
        try:
            url = URL(self.spec.url)
        except (ValueError, TypeError) as exc:
            raise PermanentSourceError(self.name, f"invalid AMQP URL: {clip(str(exc))}") from None
        if url.scheme not in ("amqp", "amqps") or not url.host:
            raise PermanentSourceError(
                self.name,
                f"invalid AMQP URL {redact_url(self.spec.url)!r} (amqp://host:5672/vhost)",
            )
        password = resolve_secret(self.name, self.spec.password, "password")
        if password is not None:
            url = url.with_user(url.user or "guest").with_password(password.reveal())
        return url

    async def _drop_connection(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and not connection.is_closed:
            try:
                await connection.close()
            except (amqp_errors.AMQPError, OSError):
                pass  # already broken: nothing left to release

    async def _open_channel(self) -> AbstractChannel:
        if self._stale:
            self._stale = False
            await self._drop_connection()
        if self._connection is None or self._connection.is_closed:
            self._channel = None
            url = self._url()
            try:
                self._connection = await aio_pika.connect(url, timeout=self.spec.timeout)
            except amqp_errors.ProbableAuthenticationError as exc:
                raise PermanentSourceError(
                    self.name,
                    f"credentials refused by {redact_url(self.spec.url)}: {clip(str(exc))}",
                ) from None
            except (amqp_errors.AMQPError, OSError) as exc:
                reason = clip(str(exc)) or type(exc).__name__
                if "ACCESS_REFUSED" in reason or "authentication" in reason.lower():
                    raise PermanentSourceError(
                        self.name, f"credentials refused by {redact_url(self.spec.url)}: {reason}"
                    ) from None
                if "NOT_ALLOWED" in reason or "vhost" in reason.lower():
                    raise PermanentSourceError(
                        self.name, f"{redact_url(self.spec.url)} refused the vhost: {reason}"
                    ) from None
                raise TemporarySourceError(
                    self.name, f"cannot connect to {redact_url(self.spec.url)}: {reason}"
                ) from None
        if self._channel is None or self._channel.is_closed:
            self._channel = await self._connection.channel()
        return self._channel

    async def _ready_count(self) -> int:
        try:
            channel = await self._open_channel()
            queue = await channel.declare_queue(self.spec.queue, passive=True)
        except SourceError:
            raise
        except amqp_errors.ChannelNotFoundEntity:
            self._channel = None
            raise PermanentSourceError(
                self.name,
                f"queue {self.spec.queue!r} does not exist (vhost of {redact_url(self.spec.url)})",
            ) from None
        except amqp_errors.ChannelAccessRefused as exc:
            self._channel = None
            raise PermanentSourceError(
                self.name, f"access to queue {self.spec.queue!r} refused: {clip(str(exc))}"
            ) from None
        except (amqp_errors.AMQPError, OSError, RuntimeError) as exc:
            # The connection broke mid-read; reconnect from scratch on the next read.
            await self._drop_connection()
            raise TemporarySourceError(
                self.name, f"connection to RabbitMQ lost: {clip(str(exc)) or type(exc).__name__}"
            ) from None
        count = queue.declaration_result.message_count
        if count is None:
            raise TemporarySourceError(self.name, "RabbitMQ did not report a message count")
        return int(load_value(self.name, count, f"queue {self.spec.queue!r} ready count"))

    async def _unacked_count(self) -> int:
        assert self.spec.management_url is not None
        url = self._url()
        vhost = url.path[1:] or "/"
        endpoint = (
            f"{self.spec.management_url.rstrip('/')}/api/queues/"
            f"{quote(vhost, safe='')}/{quote(self.spec.queue, safe='')}"
        )
        auth = (url.user or "guest", url.password or "guest")
        response = await http_get(
            self._http, self.name, endpoint, auth=auth, max_body=MAX_JSON_BODY
        )
        content = response.content
        try:  # up to 1 MiB: a hostile one parses for most of a second, off the event loop
            body = await off_loop(self.name, len(content), lambda: jsondoc.loads(content))
        except jsondoc.JsonDocError as exc:
            raise PermanentSourceError(
                self.name, f"{redact_url(endpoint)} did not answer with JSON: {clip(str(exc))}"
            ) from None
        if not isinstance(body, dict):
            raise PermanentSourceError(self.name, "management API answer is not a JSON object")
        unacked = body.get("messages_unacknowledged")
        if unacked is None:
            # A new queue has no message statistics until the first stats sample.
            raise TemporarySourceError(
                self.name, "management API has no messages_unacknowledged for the queue yet"
            )
        if isinstance(unacked, bool) or not isinstance(unacked, int):
            raise PermanentSourceError(
                self.name, f"management API messages_unacknowledged is {clip(repr(unacked), 40)}"
            )
        return int(load_value(self.name, unacked, "management API messages_unacknowledged"))

    async def _read(self) -> float:
        ready = await self._ready_count()
        if not self.spec.include_unacked:
            return float(ready)
        return float(ready + await self._unacked_count())
