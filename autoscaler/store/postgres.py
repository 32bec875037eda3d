"""PostgreSQL state store (asyncpg): for two or three daemons sharing one database.

Same tables and semantics as the SQLite store, plus what several daemons need:
- migrations run under a transaction-scoped advisory lock, so daemons starting together do
  not race to create the schema;
- the lease is one row per cluster, taken or renewed by one atomic upsert whose expiry is
  judged by the database's clock (`clock_timestamp()`), never by a daemon's;
- every write given an epoch runs in a transaction that first locks the lease row FOR SHARE and
  checks that the epoch is current and unexpired; a takeover must wait for that transaction, so
  a write is either inside a valid term or refused with `FencedError`, changing nothing.

Connection trouble (refused, terminated, timed out) surfaces as `StoreError`; the pool drops
broken connections, so the next call reconnects.

Long because it is the whole `Store` protocol for one backend (schema and migrations, lease,
intents, decision history, policy documents) as one class of short methods: the SQL of one
database reads best in one place, next to the SQLite store's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from autoscaler.store.base import (
    HISTORY_KEEP,
    FencedError,
    HistoryEntry,
    HistoryRecord,
    Intent,
    IntentKind,
    Lease,
    StoreError,
)
from autoscaler.store.codec import (
    PolicyDocuments,
    check_history,
    check_kind,
    check_policy,
    check_ttl,
    decode,
    encode,
    encode_history,
    stored_intent,
)
from autoscaler.store.url import redact_url

# Arbitrary constant naming "autoscaler schema migration" for pg_advisory_xact_lock.
MIGRATION_LOCK_KEY = 0x6175_746F_7363_6C  # "autoscl"

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE policy_state (
            policy text PRIMARY KEY,
            state jsonb NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT clock_timestamp())""",
        """CREATE TABLE policy_spec (
            policy text PRIMARY KEY,
            spec jsonb NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT clock_timestamp())""",
        """CREATE TABLE intents (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            policy text NOT NULL,
            kind text NOT NULL CHECK (kind IN ('scale', 'delete', 'create', 'recreate')),
            payload jsonb NOT NULL,
            created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            resolved_at timestamptz,
            outcome jsonb)""",
        """CREATE TABLE lease (
            cluster text PRIMARY KEY,
            holder text NOT NULL,
            epoch bigint NOT NULL,
            expires_at timestamptz NOT NULL)""",
    ),
    (
        "CREATE INDEX intents_pending ON intents (policy, id) WHERE resolved_at IS NULL",
        """CREATE TABLE heartbeat (
            id integer PRIMARY KEY CHECK (id = 1),
            checked_at timestamptz NOT NULL)""",
    ),
    (
        # The decisions each policy made, with their observations (`autoscaler history`).
        # `t` is the decision's own time (the daemon's `now`, unix seconds), not the database's.
        """CREATE TABLE decisions (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            policy text NOT NULL,
            t double precision NOT NULL,
            observation jsonb NOT NULL,
            decision jsonb NOT NULL)""",
        "CREATE INDEX decisions_policy ON decisions (policy, id)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

# One statement decides grant, renewal or refusal, by the database's clock. A renewal (same
# holder, still valid) keeps the epoch; anything else that passes the WHERE starts a new term.
ACQUIRE_SQL = """
INSERT INTO lease AS l (cluster, holder, epoch, expires_at)
VALUES ($1, $2, 1, clock_timestamp() + make_interval(secs => $3))
ON CONFLICT (cluster) DO UPDATE SET
    holder = EXCLUDED.holder,
    epoch = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at > clock_timestamp()
                 THEN l.epoch ELSE l.epoch + 1 END,
    expires_at = clock_timestamp() + make_interval(secs => $3)
WHERE l.expires_at <= clock_timestamp() OR l.holder = EXCLUDED.holder
RETURNING holder, epoch, extract(epoch FROM expires_at)::float8 AS expires_at
"""

# What migrations accept: a bare connection (tests, tools) or one borrowed from the pool.
AnyConnection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    # Raised when a connection is cut between protocol steps ("cannot switch to state ...").
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)


async def schema_version(conn: AnyConnection) -> int:
    exists = await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
    if not exists:
        return 0
    return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version"))


async def migrate(conn: AnyConnection, upto: int = SCHEMA_VERSION) -> int:
    """Bring the schema to version `upto` (default: the latest); returns the version reached."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            "version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        current = await schema_version(conn)
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"the state database is at schema version {current}, newer than this "
                f"autoscaler supports ({SCHEMA_VERSION}); upgrade the autoscaler"
            )
        for version in range(current + 1, upto + 1):
            for statement in MIGRATIONS[version - 1]:
                await conn.execute(statement)
            await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", version)
        return max(current, upto)


class PostgresStore(PolicyDocuments):
    """The `Store` protocol over a small asyncpg pool."""

    def __init__(
        self,
        dsn: str,
        *,
        cluster: str = "default",
        min_size: int = 1,
        max_size: int = 8,
        connect_timeout: float = 5.0,
        command_timeout: float = 10.0,
        application_name: str = "autoscaler",
    ) -> None:
        self._dsn = dsn
        self.shown = redact_url(dsn)
        self.cluster = cluster
        self._min_size = min_size
        self._max_size = max_size
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self.application_name = application_name
        self._pool: asyncpg.Pool | None = None

    def __repr__(self) -> str:
        return f"PostgresStore({self.shown!r}, cluster={self.cluster!r})"

    def _error(self, exc: BaseException) -> StoreError:
        return StoreError(f"postgresql {self.shown}: {type(exc).__name__}: {exc}")

    # ---- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        if self._pool is not None:
            return
        try:
            pool = await asyncpg.create_pool(
                self._dsn,
                min_size=self._min_size,
                max_size=self._max_size,
                timeout=self._connect_timeout,
                command_timeout=self._command_timeout,
                server_settings={"application_name": self.application_name},
            )
        except _CONNECTION_ERRORS as exc:
            raise self._error(exc) from exc
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
        except BaseException as exc:
            await pool.close()
            if isinstance(exc, _CONNECTION_ERRORS):
                raise self._error(exc) from exc
            raise
        self._pool = pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await pool.close()
            except _CONNECTION_ERRORS:
                pool.terminate()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.pool.PoolConnectionProxy]:
        if self._pool is None:
            raise StoreError(f"{self!r} is not open")
        try:
            async with self._pool.acquire(timeout=self._connect_timeout) as conn:
                yield conn
        except _CONNECTION_ERRORS as exc:
            raise self._error(exc) from exc

    @asynccontextmanager
    async def _write(self, epoch: int | None) -> AsyncIterator[asyncpg.pool.PoolConnectionProxy]:
        """A transaction that holds the fence (when `epoch` is given) until it commits."""
        async with self._connection() as conn, conn.transaction():
            if epoch is not None:
                held = await conn.fetchval(
                    "SELECT 1 FROM lease WHERE cluster = $1 AND epoch = $2 "
                    "AND expires_at > clock_timestamp() FOR SHARE",
                    self.cluster,
                    epoch,
                )
                if held is None:
                    raise await self._fenced(conn, epoch)
            yield conn

    async def _fenced(self, conn: asyncpg.pool.PoolConnectionProxy, epoch: int) -> FencedError:
        """The refusal, saying what the lease looks like now (for the log, not a decision)."""
        row = await conn.fetchrow(
            "SELECT holder, epoch, expires_at > clock_timestamp() AS valid "
            "FROM lease WHERE cluster = $1",
            self.cluster,
        )
        if row is None:
            current = "no lease"
        else:
            current = f"epoch {row['epoch']} held by {row['holder']!r}"
            current += "" if row["valid"] else ", expired"
        return FencedError(
            f"write refused: lease epoch {epoch} of cluster {self.cluster!r} is not current "
            f"({current})"
        )

    # ---- health ------------------------------------------------------------------------------

    async def check_writable(self) -> bool:
        async with self._write(None) as conn:
            await conn.execute(
                "INSERT INTO heartbeat (id, checked_at) VALUES (1, clock_timestamp()) "
                "ON CONFLICT (id) DO UPDATE SET checked_at = EXCLUDED.checked_at"
            )
        return True

    # ---- state and spec (the public methods come from PolicyDocuments) ----------------------

    async def _load(self, table: str, column: str, policy: str) -> dict[str, Any] | None:
        check_policy(policy)
        async with self._connection() as conn:
            text = await conn.fetchval(
                f"SELECT {column}::text FROM {table} WHERE policy = $1", policy
            )
        return None if text is None else decode(text)

    async def _save(
        self, table: str, column: str, policy: str, value: dict[str, Any], epoch: int | None
    ) -> None:
        check_policy(policy)
        text = encode(value, f"{column} of policy {policy!r}")
        upsert = (
            f"INSERT INTO {table} (policy, {column}, updated_at) "
            "SELECT $1, $2::jsonb, clock_timestamp() {source} "
            f"ON CONFLICT (policy) DO UPDATE SET {column} = EXCLUDED.{column}, "
            "updated_at = EXCLUDED.updated_at"
        )
        async with self._connection() as conn:
            if epoch is None:
                await conn.execute(upsert.format(source=""), policy, text)
                return
            # The hot path (one save per policy evaluation): fence check and write in one
            # statement, one round trip. The row lock taken FOR SHARE lasts until the
            # statement's implicit transaction commits, so a takeover waits for the write.
            status = await conn.execute(
                "WITH fence AS (SELECT 1 FROM lease WHERE cluster = $3 AND epoch = $4 "
                "AND expires_at > clock_timestamp() FOR SHARE) "
                + upsert.format(source="FROM fence"),
                policy,
                text,
                self.cluster,
                epoch,
            )
            if status.endswith(" 0"):
                raise await self._fenced(conn, epoch)

    async def policies(self) -> list[str]:
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT policy FROM policy_state UNION SELECT policy FROM policy_spec "
                "ORDER BY policy"
            )
        return [str(row[0]) for row in rows]

    # ---- decision history --------------------------------------------------------------------

    async def record_decisions(
        self,
        records: Sequence[HistoryRecord],
        *,
        prune: Iterable[str] = (),
        keep: int = HISTORY_KEEP,
    ) -> None:
        rows = encode_history(records, keep)
        pruned = sorted(set(prune))
        async with self._connection() as conn, conn.transaction():
            # executemany pipelines the statements: one round trip for the whole batch.
            await conn.executemany(
                "INSERT INTO decisions (policy, t, observation, decision) "
                "VALUES ($1, $2, $3::jsonb, $4::jsonb)",
                rows,
            )
            await conn.executemany(
                "DELETE FROM decisions WHERE policy = $1 AND id <= (SELECT id FROM decisions "
                "WHERE policy = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
                [(policy, keep) for policy in pruned],
            )

    async def decision_history(
        self, policy: str, since: float | None = None, limit: int | None = None
    ) -> list[HistoryEntry]:
        check_policy(policy)
        check_history(0.0 if since is None else since, 1, limit)
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT t, observation::text AS observation, decision::text AS decision FROM ("
                "SELECT id, t, observation, decision FROM decisions WHERE policy = $1 "
                "AND ($2::float8 IS NULL OR t >= $2) ORDER BY id DESC LIMIT $3) AS newest "
                "ORDER BY id",
                policy,
                since,
                limit,
            )
        return [
            HistoryEntry(float(r["t"]), decode(r["observation"]), decode(r["decision"]))
            for r in rows
        ]

    # ---- intents -----------------------------------------------------------------------------

    async def begin_intent(
        self, policy: str, kind: IntentKind, payload: dict[str, Any], *, epoch: int | None = None
    ) -> Intent:
        check_policy(policy)
        check_kind(kind)
        text = encode(payload, f"{kind} intent payload of policy {policy!r}")
        async with self._write(epoch) as conn:
            row = await conn.fetchrow(
                "INSERT INTO intents (policy, kind, payload) VALUES ($1, $2, $3::jsonb) "
                "RETURNING id, extract(epoch FROM created_at)::float8 AS created_at",
                policy,
                kind,
                text,
            )
        assert row is not None  # INSERT ... RETURNING always yields the row
        return Intent(int(row["id"]), policy, kind, decode(text), float(row["created_at"]))

    async def resolve_intent(
        self, intent_id: int, outcome: dict[str, Any], *, epoch: int | None = None
    ) -> None:
        text = encode(outcome, f"outcome of intent {intent_id}")
        async with self._write(epoch) as conn:
            status = await conn.execute(
                "UPDATE intents SET resolved_at = clock_timestamp(), outcome = $2::jsonb "
                "WHERE id = $1 AND resolved_at IS NULL",
                intent_id,
                text,
            )
            if status == "UPDATE 0":
                exists = await conn.fetchval("SELECT 1 FROM intents WHERE id = $1", intent_id)
                if not exists:
                    raise StoreError(f"intent {intent_id} does not exist")
                # Already resolved: the first outcome stands (resolving twice is harmless).

    async def pending_intents(self, policy: str | None = None) -> list[Intent]:
        query = (
            "SELECT id, policy, kind, payload::text AS payload, "
            "extract(epoch FROM created_at)::float8 AS created_at FROM intents "
            "WHERE resolved_at IS NULL AND ($1::text IS NULL OR policy = $1) ORDER BY id"
        )
        async with self._connection() as conn:
            rows = await conn.fetch(query, policy)
        return [
            stored_intent(
                int(r["id"]), r["policy"], r["kind"], r["payload"], float(r["created_at"])
            )
            for r in rows
        ]

    # ---- lease -------------------------------------------------------------------------------

    async def acquire_lease(self, cluster: str, holder: str, ttl: float) -> Lease | None:
        check_ttl(ttl)
        async with self._connection() as conn:
            row = await conn.fetchrow(ACQUIRE_SQL, cluster, holder, float(ttl))
        if row is None:
            return None
        return Lease(row["holder"], int(row["epoch"]), float(row["expires_at"]))

    async def release_lease(self, cluster: str, holder: str) -> None:
        async with self._connection() as conn:
            # Expire it rather than delete it: the epoch must keep counting up.
            await conn.execute(
                "UPDATE lease SET expires_at = least(expires_at, clock_timestamp()) "
                "WHERE cluster = $1 AND holder = $2",
                cluster,
                holder,
            )
