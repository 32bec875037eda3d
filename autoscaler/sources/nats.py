"""The `nats` source: a JetStream consumer's backlog through nats-py.

The value is the consumer's `num_pending` (messages in the stream not yet delivered to it),
plus `num_ack_pending` (delivered, not yet acknowledged) with `include_ack_pending`. A missing
stream or consumer is a permanent error. A negative count (the server sends unsigned
numbers; a broken proxy might not) is a failed read (`BadValueError`).

One connection is kept across reads. nats-py's own background reconnection is off: a read
against a server that went away should fail at once as temporary, not wait out the timeout
while the client retries; the next read connects again.
"""

from __future__ import annotations

import nats
import nats.errors as nats_errors
import nats.js.errors as js_errors
from nats.aio.client import Client as NatsClient

from autoscaler.policy.model import NatsSource
from autoscaler.sources.base import PermanentSourceError, SourceError, TemporarySourceError
from autoscaler.sources.common import bounded_read, clip, load_value, redact_url, resolve_secret

# JetStream API error codes (nats-server's errors.json) for the things that will not fix
# themselves.
STREAM_NOT_FOUND = 10059
CONSUMER_NOT_FOUND = 10014


class NatsConsumerSource:
    def __init__(self, spec: NatsSource, *, name: str):
        self.spec = spec
        self.name = name
        acks = " +ack_pending" if spec.include_ack_pending else ""
        self.describe = (
            f"nats {redact_url(spec.url)} stream={spec.stream} consumer={spec.consumer}{acks}"
        )
        self._nc: NatsClient | None = None
        self._last_error: Exception | None = None
        self._stale = False  # a read timed out mid-request: reconnect before the next one

    async def _remember_error(self, error: Exception) -> None:
        """nats-py reports connection errors here (and would log them); a read reports them."""
        self._last_error = error

    async def read(self) -> float:
        return await bounded_read(self.name, self.spec.timeout, self._read, self._mark_stale)

    def _mark_stale(self) -> None:
        self._stale = True

    async def aclose(self) -> None:
        nc, self._nc = self._nc, None
        if nc is not None and not nc.is_closed:
            try:
                await nc.close()
            except (nats_errors.Error, OSError):
                pass  # already broken: nothing left to release

    async def _connect(self) -> NatsClient:
        if self._nc is not None and self._nc.is_connected and not self._stale:
            return self._nc
        self._stale = False
        await self.aclose()
        token = resolve_secret(self.name, self.spec.token, "token")
        self._last_error = None
        where = redact_url(self.spec.url)
        try:
            self._nc = await nats.connect(
                self.spec.url,
                token=token.reveal() if token else None,
                connect_timeout=self.spec.timeout,
                allow_reconnect=False,
                # nats-py treats 0 as "no limit" on the first connect; 1 with no wait means
                # two immediate attempts, then NoServersError.
                max_reconnect_attempts=1,
                reconnect_time_wait=0,
                error_cb=self._remember_error,
                name="autoscaler",
            )
        except (nats_errors.NoServersError, OSError, nats_errors.TimeoutError) as exc:
            cause = self._last_error or exc
            raise TemporarySourceError(
                self.name, f"cannot connect to {where}: {clip(str(cause)) or type(cause).__name__}"
            ) from None
        except nats_errors.Error as exc:
            text = clip(str(exc)) or type(exc).__name__
            if "authorization" in text.lower() or "authentication" in text.lower():
                raise PermanentSourceError(
                    self.name, f"credentials refused by {where}: {text}"
                ) from None
            raise TemporarySourceError(self.name, f"cannot connect to {where}: {text}") from None
        return self._nc

    async def _read(self) -> float:
        nc = await self._connect()
        js = nc.jetstream(timeout=self.spec.timeout)
        stream, consumer = self.spec.stream, self.spec.consumer
        try:
            info = await js.consumer_info(stream, consumer)
        except js_errors.NotFoundError as exc:
            what = {
                STREAM_NOT_FOUND: f"stream {stream!r} does not exist",
                CONSUMER_NOT_FOUND: f"consumer {consumer!r} does not exist on stream {stream!r}",
            }.get(exc.err_code or 0, f"stream {stream!r} or consumer {consumer!r} not found")
            raise PermanentSourceError(self.name, what) from None
        except js_errors.APIError as exc:
            raise PermanentSourceError(
                self.name, f"JetStream refused the request: {clip(str(exc))}"
            ) from None
        except nats_errors.NoRespondersError:
            raise TemporarySourceError(
                self.name, "no JetStream responder (is JetStream enabled on the server?)"
            ) from None
        except nats_errors.TimeoutError:
            raise TemporarySourceError(self.name, "JetStream did not answer in time") from None
        except SourceError:
            raise
        except (nats_errors.Error, OSError) as exc:
            await self.aclose()
            raise TemporarySourceError(
                self.name, f"connection to NATS lost: {clip(str(exc)) or type(exc).__name__}"
            ) from None
        pending = load_value(self.name, info.num_pending or 0, "num_pending")
        if self.spec.include_ack_pending:
            pending += load_value(self.name, info.num_ack_pending or 0, "num_ack_pending")
        return pending
