"""SQLite state store: the embedded default, for one daemon per state file.

One stdlib `sqlite3` connection, used from worker threads (never on the event loop) and
serialized by a lock. WAL journal with `synchronous=FULL`: a write is on disk when the call
returns, so a committed intent survives a SIGKILL of the process (and a power cut).

The schema is created and migrated here, in order, recorded in `schema_version`.

Leases work as on PostgreSQL (grant when free or expired with epoch+1, renew when held, fence
writes on the epoch) but expiry is judged by this process's wall clock. That is right for one
daemon; several daemons on several hosts need the PostgreSQL store, whose database clock is
the one judge they share.

Long because it is the whole `Store` protocol for one backend (schema and migrations, lease,
intents, decision history, policy documents) as one class of short methods: the SQL of one
database reads best in one place, next to the PostgreSQL store's.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar, cast

import anyio.to_thread

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

T = TypeVar("T")

# Ordered migrations; index i holds the statements that take the schema from version i to i+1.
# Never edit a released migration: append a new one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE policy_state (
            policy TEXT PRIMARY KEY,
            state TEXT NOT NULL,
            updated_at REAL NOT NULL)""",
        """CREATE TABLE policy_spec (
            policy TEXT PRIMARY KEY,
            spec TEXT NOT NULL,
            updated_at REAL NOT NULL)""",
        """CREATE TABLE intents (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            policy TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('scale', 'delete', 'create', 'recreate')),
            payload TEXT NOT NULL,
            created_at REAL NOT NULL,
            resolved_at REAL,
            outcome TEXT)""",
        """CREATE TABLE lease (
            cluster TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            epoch INTEGER NOT NULL,
            expires_at REAL NOT NULL)""",
    ),
    (
        # Startup reconciliation reads the unresolved intents; keep that lookup small.
        "CREATE INDEX intents_pending ON intents (policy, id) WHERE resolved_at IS NULL",
        # One row rewritten by check_writable, so /readyz proves a real commit works.
        """CREATE TABLE heartbeat (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            checked_at REAL NOT NULL)""",
    ),
    (
        # The decisions each policy made, with their observations (`autoscaler history`).
        """CREATE TABLE decisions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            policy TEXT NOT NULL,
            t REAL NOT NULL,
            observation TEXT NOT NULL,
            decision TEXT NOT NULL)""",
        "CREATE INDEX decisions_policy ON decisions (policy, id)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    # IMMEDIATE takes the write lock up front, so the fence check and the write are atomic
    # even when another process shares the file.
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def schema_version(conn: sqlite3.Connection) -> int:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if not exists:
        return 0
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(conn: sqlite3.Connection, upto: int = SCHEMA_VERSION) -> int:
    """Bring the schema to version `upto` (default: the latest); returns the version reached.

    Runs in one write transaction, so two processes opening the same new file do not race.
    """
    with _transaction(conn):
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            "version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
        )
        current = schema_version(conn)
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"the state database is at schema version {current}, newer than this "
                f"autoscaler supports ({SCHEMA_VERSION}); upgrade the autoscaler"
            )
        for version in range(current + 1, upto + 1):
            for statement in MIGRATIONS[version - 1]:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                (version, time.time()),
            )
        return max(current, upto)


def use_wal(conn: sqlite3.Connection) -> None:
    """Put the file in WAL mode (a setting kept in the file: the first opener switches it).

    SQLite does not call the busy handler for every lock the switch takes: when another
    connection to the same new file is switching it, or migrating it, at that moment, the
    switch fails at once with "database is locked" instead of waiting (seen with three
    concurrent first opens). Then wait for that connection by taking the write lock, which
    does honour the busy timeout, and look again: normally it has switched the file already.
    """
    for _ in range(10):
        if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
            return
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            conn.execute("BEGIN IMMEDIATE")  # waits (busy timeout) for the other writer
            conn.execute("ROLLBACK")
    conn.execute("PRAGMA journal_mode = WAL")


class SQLiteStore(PolicyDocuments):
    """The `Store` protocol over one SQLite file (or `:memory:` for tests)."""

    def __init__(
        self, path: str, *, cluster: str = "default", clock: Callable[[], float] = time.time
    ) -> None:
        self.path = path
        self.cluster = cluster
        self._clock = clock  # wall clock: lease expiry is stored as unix seconds
        self._conn: sqlite3.Connection | None = None
        self._file: tuple[int, int] | None = None  # the file `_conn` has open (`_identity`)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r}, cluster={self.cluster!r})"

    # ---- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        if self._conn is not None:
            return
        await anyio.to_thread.run_sync(self._open_sync)

    def _open_sync(self) -> None:
        if self.path != ":memory:":
            folder = os.path.dirname(os.path.abspath(self.path))
            if not os.path.isdir(folder):
                raise StoreError(
                    f"sqlite state file {self.path!r}: folder {folder!r} does not exist"
                )
        conn = self._connect()
        with self._lock:
            self._conn, self._file = conn, self._identity()

    def _connect(self) -> sqlite3.Connection:
        """A connection to the file, in WAL mode, its schema migrated."""
        try:
            conn = sqlite3.connect(
                self.path, timeout=5.0, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite state file {self.path!r}: cannot open: {exc}") from exc
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            use_wal(conn)
            conn.execute("PRAGMA synchronous = FULL")
            migrate(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"sqlite state file {self.path!r}: cannot open: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _identity(self) -> tuple[int, int] | None:
        """(device, inode) of the file at the path now; None when there is none."""
        if self.path == ":memory:":
            return (0, 0)
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    def _follow_file(self, conn: sqlite3.Connection) -> sqlite3.Connection:
        """The connection to use, the file at the path checked first (the lock held).

        An open connection keeps writing to its file after that file was deleted (a cleanup
        script, an operator's mistake): every write would then vanish at the next start, with
        nothing said. So before each use: the file deleted, what this connection still holds
        (state, specs, intents) is copied into a new file at the path and used from then on;
        the file replaced (a restored backup), the new one is opened. Until that works (the
        folder gone too), every call is a StoreError saying so (the daemon holds, /readyz
        and /status report it) and the next call tries again."""
        now = self._identity()
        if now == self._file:
            return conn
        what = "deleted" if now is None else "replaced"
        try:
            if now is None:
                copy = sqlite3.connect(self.path, timeout=5.0)
                try:
                    conn.backup(copy)
                finally:
                    copy.close()
            fresh = self._connect()
        except (sqlite3.Error, OSError, StoreError) as exc:
            raise StoreError(
                f"sqlite state file {self.path!r} was {what} while the daemon ran and cannot "
                f"be {'written again' if now is None else 'opened'}: {exc}"
            ) from exc
        conn.close()
        self._conn, self._file = fresh, self._identity()
        return fresh

    async def close(self) -> None:
        await anyio.to_thread.run_sync(self._close_sync)

    def _close_sync(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await anyio.to_thread.run_sync(self._locked, fn)

    def _locked(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            if self._conn is None:
                raise StoreError(f"{self!r} is not open")
            try:
                return fn(self._follow_file(self._conn))
            except sqlite3.Error as exc:
                raise StoreError(f"sqlite state file {self.path!r}: {exc}") from exc

    def _fence(self, conn: sqlite3.Connection, epoch: int | None) -> None:
        if epoch is None:
            return
        row = conn.execute(
            "SELECT holder, epoch, expires_at FROM lease WHERE cluster = ?", (self.cluster,)
        ).fetchone()
        if row is None or row[1] != epoch or row[2] <= self._clock():
            current = "no lease" if row is None else f"epoch {row[1]} held by {row[0]!r}"
            raise FencedError(
                f"write refused: lease epoch {epoch} of cluster {self.cluster!r} is not "
                f"current ({current}{', expired' if row is not None and row[1] == epoch else ''})"
            )

    # ---- health ------------------------------------------------------------------------------

    async def check_writable(self) -> bool:
        def write(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                conn.execute(
                    "INSERT INTO heartbeat (id, checked_at) VALUES (1, ?) "
                    "ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
                    (time.time(),),
                )

        await self._run(write)
        return True

    # ---- state and spec (the public methods come from PolicyDocuments) ----------------------

    async def _load(self, table: str, column: str, policy: str) -> dict[str, Any] | None:
        check_policy(policy)
        row = await self._run(
            lambda conn: conn.execute(
                f"SELECT {column} FROM {table} WHERE policy = ?", (policy,)
            ).fetchone()
        )
        return None if row is None else decode(row[0])

    async def _save(
        self, table: str, column: str, policy: str, value: dict[str, Any], epoch: int | None
    ) -> None:
        check_policy(policy)
        text = encode(value, f"{column} of policy {policy!r}")

        def write(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                self._fence(conn, epoch)
                conn.execute(
                    f"INSERT INTO {table} (policy, {column}, updated_at) VALUES (?, ?, ?) "
                    f"ON CONFLICT (policy) DO UPDATE SET {column} = excluded.{column}, "
                    "updated_at = excluded.updated_at",
                    (policy, text, time.time()),
                )

        await self._run(write)

    async def policies(self) -> list[str]:
        rows = await self._run(
            lambda conn: conn.execute(
                "SELECT policy FROM policy_state UNION SELECT policy FROM policy_spec "
                "ORDER BY policy"
            ).fetchall()
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

        def write(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                conn.executemany(
                    "INSERT INTO decisions (policy, t, observation, decision) VALUES (?, ?, ?, ?)",
                    rows,
                )
                # The policy's rows older than its `keep` newest go (ids grow per insert).
                conn.executemany(
                    "DELETE FROM decisions WHERE policy = ? AND id <= ("
                    "SELECT id FROM decisions WHERE policy = ? "
                    "ORDER BY id DESC LIMIT 1 OFFSET ?)",
                    [(policy, policy, keep) for policy in pruned],
                )

        await self._run(write)

    async def decision_history(
        self, policy: str, since: float | None = None, limit: int | None = None
    ) -> list[HistoryEntry]:
        check_policy(policy)
        check_history(0.0 if since is None else since, 1, limit)

        def read(conn: sqlite3.Connection) -> list[Any]:
            return conn.execute(
                "SELECT t, observation, decision FROM (SELECT id, t, observation, decision "
                "FROM decisions WHERE policy = ? AND t >= ? ORDER BY id DESC LIMIT ?) "
                "ORDER BY id",
                (policy, -1e300 if since is None else float(since), -1 if limit is None else limit),
            ).fetchall()

        rows = await self._run(read)
        return [HistoryEntry(float(r[0]), decode(r[1]), decode(r[2])) for r in rows]

    # ---- intents -----------------------------------------------------------------------------

    async def begin_intent(
        self, policy: str, kind: IntentKind, payload: dict[str, Any], *, epoch: int | None = None
    ) -> Intent:
        check_policy(policy)
        check_kind(kind)
        text = encode(payload, f"{kind} intent payload of policy {policy!r}")
        created_at = time.time()

        def write(conn: sqlite3.Connection) -> int:
            with _transaction(conn):
                self._fence(conn, epoch)
                cursor = conn.execute(
                    "INSERT INTO intents (policy, kind, payload, created_at) VALUES (?, ?, ?, ?)",
                    (policy, kind, text, created_at),
                )
                return int(cast(int, cursor.lastrowid))

        intent_id = await self._run(write)
        return Intent(intent_id, policy, kind, decode(text), created_at)

    async def resolve_intent(
        self, intent_id: int, outcome: dict[str, Any], *, epoch: int | None = None
    ) -> None:
        text = encode(outcome, f"outcome of intent {intent_id}")

        def write(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                self._fence(conn, epoch)
                cursor = conn.execute(
                    "UPDATE intents SET resolved_at = ?, outcome = ? "
                    "WHERE id = ? AND resolved_at IS NULL",
                    (time.time(), text, intent_id),
                )
                if cursor.rowcount == 0:
                    exists = conn.execute(
                        "SELECT 1 FROM intents WHERE id = ?", (intent_id,)
                    ).fetchone()
                    if not exists:
                        raise StoreError(f"intent {intent_id} does not exist")
                    # Already resolved: the first outcome stands (resolving twice is harmless).

        await self._run(write)

    async def pending_intents(self, policy: str | None = None) -> list[Intent]:
        def read(conn: sqlite3.Connection) -> list[Any]:
            if policy is None:
                return conn.execute(
                    "SELECT id, policy, kind, payload, created_at FROM intents "
                    "WHERE resolved_at IS NULL ORDER BY id"
                ).fetchall()
            return conn.execute(
                "SELECT id, policy, kind, payload, created_at FROM intents "
                "WHERE resolved_at IS NULL AND policy = ? ORDER BY id",
                (policy,),
            ).fetchall()

        rows = await self._run(read)
        return [stored_intent(int(r[0]), r[1], r[2], r[3], float(r[4])) for r in rows]

    # ---- lease -------------------------------------------------------------------------------

    async def acquire_lease(self, cluster: str, holder: str, ttl: float) -> Lease | None:
        check_ttl(ttl)

        def write(conn: sqlite3.Connection) -> Lease | None:
            with _transaction(conn):
                now = self._clock()
                row = conn.execute(
                    "SELECT holder, epoch, expires_at FROM lease WHERE cluster = ?", (cluster,)
                ).fetchone()
                expires_at = now + ttl
                if row is None:
                    epoch = 1
                elif row[2] > now and row[0] == holder:
                    epoch = int(row[1])  # renewal keeps the term
                elif row[2] <= now:
                    epoch = int(row[1]) + 1  # takeover (or a lapsed holder) starts a new term
                else:
                    return None
                conn.execute(
                    "INSERT INTO lease (cluster, holder, epoch, expires_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (cluster) DO UPDATE SET holder = excluded.holder, "
                    "epoch = excluded.epoch, expires_at = excluded.expires_at",
                    (cluster, holder, epoch, expires_at),
                )
                return Lease(holder, epoch, expires_at)

        return await self._run(write)

    async def release_lease(self, cluster: str, holder: str) -> None:
        def write(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                # Expire it rather than delete it: the epoch must keep counting up.
                conn.execute(
                    "UPDATE lease SET expires_at = min(expires_at, ?) "
                    "WHERE cluster = ? AND holder = ?",
                    (self._clock(), cluster, holder),
                )

        await self._run(write)
