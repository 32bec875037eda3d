"""Bearer API keys for the gateway's clients.

Keys come from secret references (`{env: NAME}` / `{file: NAME}`) resolved once at start.
Every presented key is compared with every configured key (`hmac.compare_digest`, no early
exit), so the time taken says neither which key nor how much of it matched. Keys are never
logged: `Secret` hides them in reprs, and refusals log only that a key was missing or wrong.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from autoscaler.secrets import Secret


class ApiKeys:
    def __init__(self, keys: Sequence[Secret]) -> None:
        self._keys = [key.reveal().encode() for key in keys]

    def __repr__(self) -> str:
        return f"ApiKeys({len(self._keys)} keys)"

    def check(self, authorization: bytes | None) -> bool:
        """True when `Authorization: Bearer KEY` names a configured key. No keys: refuse
        everything (the config requires at least one)."""
        if not authorization:
            return False
        scheme, _, presented = authorization.partition(b" ")
        presented = presented.strip()
        ok = False
        for key in self._keys:
            ok |= hmac.compare_digest(presented, key)
        return ok and scheme.lower() == b"bearer"
