"""Resolving credentials (`SecretRef`) from the environment or files, and keeping them secret.

A `Secret` never shows its value in `repr`, `str`, logs or error messages; call `.reveal()`
at the last moment (building an Authorization header). Relative file names are looked up in
systemd's `$CREDENTIALS_DIRECTORY` (LoadCredential=) and then `/run/secrets` (Docker/K8s).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from pathlib import Path

from autoscaler.policy.files import FileRefused, read_file_capped
from autoscaler.policy.model import SecretRef

SECRET_DIRS_ENV = "CREDENTIALS_DIRECTORY"
DEFAULT_SECRET_DIRS = ("/run/secrets",)
MAX_SECRET_BYTES = 64 * 1024  # a token or key is a few KB at most


class SecretError(Exception):
    """A credential could not be resolved; the message names where it was looked for."""


class Secret:
    __slots__ = ("_value", "origin")

    def __init__(self, value: str, origin: str = "literal"):
        self._value = value
        self.origin = origin  # "env:NAME" or "file:/path"; safe to print

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.origin}, '***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _candidate_paths(name: str) -> list[Path]:
    path = Path(name)
    if path.is_absolute():
        return [path]
    dirs = []
    cred_dir = os.environ.get(SECRET_DIRS_ENV)
    if cred_dir:
        dirs.append(Path(cred_dir))
    dirs.extend(Path(d) for d in DEFAULT_SECRET_DIRS)
    return [d / path for d in dirs]


def resolve(ref: SecretRef | str | None) -> Secret | None:
    """The secret a reference points to. A plain string is a literal (for usernames)."""
    if ref is None:
        return None
    if isinstance(ref, str):
        return Secret(ref)
    if ref.env is not None:
        value = os.environ.get(ref.env)
        if value is None:
            raise SecretError(f"environment variable {ref.env!r} is not set")
        return Secret(value.strip(), origin=f"env:{ref.env}")
    if ref.file is not None:
        tried = _candidate_paths(ref.file)
        for path in tried:
            try:
                return Secret(_read(path), origin=f"file:{path}")
            except FileNotFoundError:
                continue
        raise SecretError(
            f"credential file {ref.file!r} not found (looked in: {', '.join(map(str, tried))})"
        )
    raise SecretError("secret reference names neither env nor file")


def _read(path: Path) -> str:
    """The text of a credential file, stripped; only a regular file, read without blocking and
    at most `MAX_SECRET_BYTES` (a FIFO or `/dev/zero` would hang the daemon or fill its memory).
    FileNotFoundError when it does not exist, SecretError for every other problem."""
    try:
        data = read_file_capped(path, MAX_SECRET_BYTES)
        return data.decode("utf-8-sig").strip()
    except FileRefused as exc:
        if exc.errno == errno.ENOENT:
            raise FileNotFoundError(path) from None
        why = str(exc).removeprefix("cannot read: ")
        raise SecretError(f"cannot read credential file {str(path)!r}: {why}") from None
    except UnicodeDecodeError:
        raise SecretError(f"credential file {str(path)!r} is not UTF-8 text") from None


def describe_ref(ref: SecretRef) -> str:
    """Where a reference points (`env:NAME` or `file:NAME`): safe to log, never the value."""
    return f"env:{ref.env}" if ref.env is not None else f"file:{ref.file}"


def credential_files(refs: Iterable[SecretRef | str | None]) -> list[str]:
    """The files the `{file: ...}` references resolve to (the first candidate that exists,
    else the first candidate), for the reload watcher: a rotated file is re-read."""
    out: list[str] = []
    for ref in refs:
        if not isinstance(ref, SecretRef) or ref.file is None:
            continue
        candidates = _candidate_paths(ref.file)
        found = next((p for p in candidates if p.exists()), candidates[0] if candidates else None)
        if found is not None and str(found) not in out:
            out.append(str(found))
    return out
