"""Parsing `state.url` into a backend choice, and redacting it for messages.

Only syntax lives here: no connection is made and no file is touched. Passwords never appear in
an error message or a log line; use `redact_url` whenever a URL is shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

ALLOWED_FORMS = (
    "sqlite:///relative/path.db, sqlite:////absolute/path.db, sqlite://:memory:, "
    "postgresql://user@host:port/db (or postgres://...)"
)


@dataclass(frozen=True, slots=True)
class StoreURL:
    backend: Literal["sqlite", "postgresql"]
    target: str  # sqlite: a file path or ":memory:"; postgresql: the DSN as given
    shown: str  # the URL with any password replaced by ***


def redact_url(url: str) -> str:
    """The URL with its password (if any) replaced by `***`; never raises."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        user = parts.username or ""
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port is not None else ""
        netloc = f"{user}:***@{host}{port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    except ValueError:
        # Unparseable: cut everything between "://" and "@" so nothing secret leaks.
        head, sep, rest = url.partition("://")
        if sep and "@" in rest:
            return f"{head}://***@{rest.rsplit('@', 1)[1]}"
        return url


def parse_store_url(url: str) -> StoreURL:
    """Split a `state.url` into backend and target; ValueError naming what is wrong."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"state.url is empty; allowed forms: {ALLOWED_FORMS}")
    shown = redact_url(url)
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"state.url {shown!r} has no scheme; allowed forms: {ALLOWED_FORMS}")
    scheme = scheme.lower()
    if scheme == "sqlite":
        return StoreURL("sqlite", _sqlite_target(rest, shown), shown)
    if scheme in ("postgresql", "postgres"):
        try:
            parts = urlsplit(url)
            _ = parts.port  # raises ValueError on a non-numeric port
        except ValueError as exc:
            raise ValueError(f"state.url {shown!r} is not a valid PostgreSQL URL: {exc}") from None
        if not parts.path.strip("/"):
            raise ValueError(
                f"state.url {shown!r} names no database; expected postgresql://user@host:port/db"
            )
        return StoreURL("postgresql", url, shown)
    raise ValueError(
        f"state.url scheme {scheme!r} (in {shown!r}) is not supported; allowed forms: "
        f"{ALLOWED_FORMS}"
    )


def _sqlite_target(rest: str, shown: str) -> str:
    if rest in (":memory:", "/:memory:"):
        return ":memory:"
    if "?" in rest or "#" in rest:
        raise ValueError(f"state.url {shown!r}: SQLite URLs take no query or fragment")
    if not rest.startswith("/"):
        raise ValueError(
            f"state.url {shown!r}: a SQLite URL has no host; use sqlite:///relative/path.db or "
            "sqlite:////absolute/path.db"
        )
    path = rest[1:]
    if not path or path.endswith("/"):
        raise ValueError(f"state.url {shown!r} names no database file")
    return path
