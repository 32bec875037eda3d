"""Opening the store at start, with a failure that explains itself.

`open_checked(store, url)` awaits `store.open()` and turns whatever it raises (PostgreSQL down,
unknown role or database, refused password, a SQLite folder that does not exist, a file that
is not a database) into one `StoreOpenError` whose message is a single line naming the
redacted URL, what went wrong and what to check. `autoscaler run` prints it and exits 2.
"""

from __future__ import annotations

from autoscaler.store.base import Store
from autoscaler.store.url import redact_url


class StoreOpenError(Exception):
    """The store could not be opened at start; the message is one line, no secret in it."""


def _root(exc: BaseException) -> BaseException:
    """The first cause in the chain (the driver's own error)."""
    seen: set[int] = set()
    while exc.__cause__ is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc = exc.__cause__
    return exc


def explain_open_error(url: str, exc: BaseException) -> str:
    """One line: `state.url URL: cannot open the store: WHAT (HINT)`."""
    shown = redact_url(url)
    root = _root(exc)
    detail = " ".join(str(root).split()) or type(root).__name__
    name = type(root).__name__
    if isinstance(root, TimeoutError):
        what, hint = "timed out connecting", "is the host reachable and PostgreSQL listening?"
    elif isinstance(root, OSError) and not url.startswith("sqlite"):
        what, hint = f"cannot connect: {detail}", "is PostgreSQL running and listening there?"
    elif name == "InvalidAuthorizationSpecificationError":
        what, hint = detail, "create the role, or fix the user in state.url"
    elif name == "InvalidCatalogNameError":
        what, hint = detail, "create the database, or fix its name in state.url"
    elif name == "InvalidPasswordError":
        what, hint = detail, "check the password (or pg_hba.conf)"
    elif url.startswith("sqlite"):
        what, hint = " ".join(str(exc).split()), "create the folder, or fix the path in state.url"
    else:
        what, hint = f"{name}: {detail}", ""
    # The driver's text may echo the DSN: never let a password through.
    what = what.replace(url, shown)
    return f"state.url {shown}: cannot open the store: {what}" + (f" ({hint})" if hint else "")


async def open_checked(store: Store, url: str) -> None:
    """`await store.open()`, or StoreOpenError with one clear line."""
    try:
        await store.open()
    except Exception as exc:
        raise StoreOpenError(explain_open_error(url, exc)) from exc
