"""Durable state: per-policy core state, captured specs, write-ahead intents, leader lease.

`open_store(url)` picks the backend from `state.url`; the caller awaits `.open()` on the result
(that is where the file or the database is reached and the schema migrated):

    store = open_store("sqlite:////var/lib/autoscaler/state.db")
    await store.open()

Backends: `sqlite.py` (embedded default, one daemon) and `postgres.py` (several daemons with
leader election). `leader.py` runs the lease loop on top of either.
"""

from __future__ import annotations

from autoscaler.store.base import FencedError, Intent, Lease, Store, StoreError
from autoscaler.store.url import parse_store_url, redact_url

__all__ = [
    "FencedError",
    "Intent",
    "Lease",
    "Store",
    "StoreError",
    "open_store",
    "redact_url",
]


def open_store(url: str, *, cluster: str = "default") -> Store:
    """A store for `url`, not yet opened. ValueError (naming the scheme and the allowed forms,
    never a password) when the URL is not one we can use.

    `cluster` names the lease that the fencing checks of this store's writes refer to."""
    parsed = parse_store_url(url)
    if parsed.backend == "sqlite":
        from autoscaler.store.sqlite import SQLiteStore

        return SQLiteStore(parsed.target, cluster=cluster)
    from autoscaler.store.postgres import PostgresStore

    return PostgresStore(parsed.target, cluster=cluster)
