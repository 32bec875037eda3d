"""The `redis` source: queue depth in Redis through redis-py's asyncio client.

Modes:
- `list`: `LLEN key` (a missing key is an empty queue: 0).
- `stream`: `XLEN key` (a missing key is 0).
- `pending`: the consumer group's pending entries, delivered but not acknowledged
  (`XPENDING key group` summary).
- `lag`: entries in the stream the group has not been delivered yet (`XINFO GROUPS`, field
  `lag`, Redis >= 7). Redis reports `lag` as null when it cannot tell (the group was created or
  moved to an arbitrary id, or entries were deleted with XDEL/XTRIM); then, and on Redis < 7
  where the field does not exist, the lag is counted by paging `XRANGE key (last-delivered-id +`
  in batches of 1000. That count is exact but its cost grows with the lag; the read's timeout
  bounds it.
A missing stream or group in `pending`/`lag` mode, and a key of the wrong type, are permanent.
A negative count (no Redis command answers one; a proxy or a fake might) is a failed read
(`BadValueError`), never an empty queue.

One client (and its connection pool) is kept across reads. The password (`password:` or in the
URL; the URL's wins) is resolved when the client is made; after refused credentials the client
is dropped, so the next read resolves the credential again.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
import redis.exceptions as rexc
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from autoscaler.policy.model import RedisSource
from autoscaler.sources.base import PermanentSourceError, SourceError, TemporarySourceError
from autoscaler.sources.common import bounded_read, clip, load_value, redact_url, resolve_secret

XRANGE_PAGE = 1000


class RedisQueueSource:
    def __init__(self, spec: RedisSource, *, name: str):
        if spec.mode in ("pending", "lag") and not spec.group:
            raise PermanentSourceError(
                name, f'missing required parameter "group" for mode {spec.mode}'
            )
        self.spec = spec
        self.name = name
        group = f" group={spec.group}" if spec.group else ""
        self.describe = f"redis {redact_url(spec.url)} key={spec.key}{group} ({spec.mode})"
        self._client: aioredis.Redis | None = None
        self._stale = False  # a read timed out mid-request: reconnect before the next one

    async def read(self) -> float:
        return await bounded_read(self.name, self.spec.timeout, self._read, self._mark_stale)

    def _mark_stale(self) -> None:
        self._stale = True

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.aclose()
            except (rexc.RedisError, OSError):
                pass  # closing a broken connection: nothing left to release

    async def _connect(self) -> aioredis.Redis:
        if self._stale:
            self._stale = False
            await self.aclose()
        if self._client is None:
            password = resolve_secret(self.name, self.spec.password, "password")
            try:
                self._client = aioredis.Redis.from_url(
                    self.spec.url,
                    password=password.reveal() if password else None,
                    socket_timeout=self.spec.timeout,
                    socket_connect_timeout=self.spec.timeout,
                    # One attempt per read: the daemon's next interval is the retry.
                    retry=Retry(NoBackoff(), 0),
                )
            except ValueError as exc:
                raise PermanentSourceError(
                    self.name, f"invalid Redis URL {redact_url(self.spec.url)!r}: {clip(str(exc))}"
                ) from None
        return self._client

    async def _read(self) -> float:
        client = await self._connect()
        try:
            count = await self._query(client)
        except SourceError:
            raise
        except rexc.AuthenticationError as exc:
            await self.aclose()
            raise self._auth_error(str(exc)) from None
        except rexc.TimeoutError:
            raise TemporarySourceError(self.name, "Redis did not answer in time") from None
        except rexc.ConnectionError as exc:
            raise TemporarySourceError(
                self.name, f"cannot reach Redis at {redact_url(self.spec.url)}: {clip(str(exc))}"
            ) from None
        except rexc.ResponseError as exc:
            raise await self._response_error(client, exc) from None
        except rexc.RedisError as exc:
            raise TemporarySourceError(
                self.name, f"{type(exc).__name__}: {clip(str(exc))}"
            ) from None
        return load_value(self.name, count, f"{self.spec.mode} count of {self.spec.key!r}")

    def _auth_error(self, detail: str) -> PermanentSourceError:
        if self.spec.password is None and "@" not in self.spec.url:
            return PermanentSourceError(
                self.name,
                "credentials refused: Redis wants a password and none is set "
                "(password: or redis://:PASSWORD@host)",
            )
        return PermanentSourceError(
            self.name, f"credentials refused: {clip(detail) or 'authentication failed'}"
        )

    async def _response_error(self, client: aioredis.Redis, exc: rexc.ResponseError) -> SourceError:
        text = str(exc)
        upper = text.upper()
        if upper.startswith(("NOAUTH", "WRONGPASS")) or isinstance(
            exc, rexc.AuthenticationWrongNumberOfArgsError
        ):
            await self.aclose()
            return self._auth_error(text)
        if upper.startswith("WRONGTYPE"):
            try:
                actual = await client.type(self.spec.key)
                kind = actual.decode() if isinstance(actual, bytes) else str(actual)
            except rexc.RedisError:
                kind = "another type"
            wanted = "list" if self.spec.mode == "list" else "stream"
            return PermanentSourceError(
                self.name, f"key {self.spec.key!r} holds a {kind}, not a {wanted}"
            )
        if upper.startswith("NOGROUP") or "NO SUCH KEY" in upper:
            return PermanentSourceError(
                self.name,
                f"stream {self.spec.key!r} or its consumer group {self.spec.group!r} "
                "does not exist",
            )
        if upper.startswith("LOADING"):
            return TemporarySourceError(self.name, "Redis is loading its dataset")
        return PermanentSourceError(self.name, f"Redis refused the command: {clip(text)}")

    async def _query(self, client: aioredis.Redis) -> int:
        key, mode = self.spec.key, self.spec.mode
        if mode == "list":
            return int(await client.llen(key))
        if mode == "stream":
            return int(await client.xlen(key))
        if mode == "pending":
            summary = await client.xpending(key, self.spec.group or "")
            return int(summary["pending"])
        return await self._lag(client)

    async def _lag(self, client: aioredis.Redis) -> int:
        groups: list[dict[str, Any]] = await client.xinfo_groups(self.spec.key)
        wanted = self.spec.group
        for group in groups:
            name = group.get("name")
            if isinstance(name, bytes):
                name = name.decode(errors="replace")
            if name != wanted:
                continue
            lag = group.get("lag")
            if lag is not None:
                return int(lag)
            last = group.get("last-delivered-id")
            if isinstance(last, bytes):
                last = last.decode()
            return await self._count_after(client, str(last))
        raise PermanentSourceError(
            self.name, f"stream {self.spec.key!r} has no consumer group {wanted!r}"
        )

    async def _count_after(self, client: aioredis.Redis, last_id: str) -> int:
        """Entries with an id above `last_id`: the lag when Redis cannot say it."""
        count, start = 0, f"({last_id}"
        while True:
            page = await client.xrange(self.spec.key, min=start, max="+", count=XRANGE_PAGE) or []
            count += len(page)
            if len(page) < XRANGE_PAGE:
                return count
            last = page[-1][0]
            start = "(" + (last.decode() if isinstance(last, bytes) else str(last))
