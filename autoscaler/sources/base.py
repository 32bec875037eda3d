"""The one interface every metric source implements, and its error types.

A source reads one number per call. It reuses its connection across reads and closes it in
`aclose`. Every read is bounded by the spec's timeout. Errors name the source and what went
wrong, and say whether trying again can help.
"""

from __future__ import annotations

from typing import Protocol


class SourceError(Exception):
    """A read failed. `temporary`: the next read may work (server down, timeout)."""

    temporary = True

    def __init__(self, source: str, message: str):
        super().__init__(f"{source}: {message}")
        self.source = source
        self.message = message


class TemporarySourceError(SourceError):
    temporary = True


class PermanentSourceError(SourceError):
    """Misconfiguration or data that will not fix itself (bad query, wrong type, auth)."""

    temporary = False


class Source(Protocol):
    describe: str  # e.g. "redis redis://127.0.0.1:6379/0 key=jobs:chat (list)"; no secrets

    async def read(self) -> float:
        """One value now; raises SourceError (never anything else) on failure."""
        ...

    async def aclose(self) -> None: ...
