"""`open_store` URL handling: the allowed forms pick the right backend; anything else is a
ValueError that names the scheme and the allowed forms and never shows a password."""

from __future__ import annotations

import pytest

from autoscaler.store import open_store, redact_url
from autoscaler.store.postgres import PostgresStore
from autoscaler.store.sqlite import SQLiteStore


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///state.db", "state.db"),
        ("sqlite:///var/state.db", "var/state.db"),
        ("sqlite:////var/lib/autoscaler/state.db", "/var/lib/autoscaler/state.db"),
        ("sqlite://:memory:", ":memory:"),
        ("sqlite:///:memory:", ":memory:"),
        ("SQLITE:////abs.db", "/abs.db"),
    ],
)
def test_sqlite_urls(url: str, path: str) -> None:
    store = open_store(url, cluster="blue")
    assert isinstance(store, SQLiteStore)
    assert (store.path, store.cluster) == (path, "blue")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://autoscaler@db.internal:5432/autoscaler",
        "postgres://autoscaler:s3cret@db.internal/autoscaler",
        "postgresql://127.0.0.1/state?sslmode=disable",
    ],
)
def test_postgresql_urls(url: str) -> None:
    store = open_store(url)
    assert isinstance(store, PostgresStore)
    assert "s3cret" not in repr(store)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://root:hunter2@db/state", "scheme 'mysql'"),
        ("state.db", "has no scheme"),
        ("", "is empty"),
        ("sqlite://host/state.db", "has no host"),
        ("sqlite:///", "names no database file"),
        ("sqlite:///state.db?mode=ro", "no query"),
        ("postgresql://u:hunter2@db:notaport/state", "not a valid PostgreSQL URL"),
        ("postgresql://u:hunter2@db:5432", "names no database"),
    ],
)
def test_bad_urls_are_explained_without_the_password(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        open_store(url)
    assert "hunter2" not in str(info.value)
    if "scheme" in message:
        assert "sqlite:///relative/path.db" in str(info.value)
        assert "postgresql://" in str(info.value)


def test_redact_url() -> None:
    assert redact_url("postgresql://u:pw@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"
    assert "pw" not in redact_url("postgresql://u:pw@h:bad/db")
