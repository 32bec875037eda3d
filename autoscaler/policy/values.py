"""Small value types shared by the policy sections and the field kit (`fields`).

Kept apart so `fields` (which builds `SecretRef`s) and the sections (which declare their fields
with `fields` specs) do not import each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

EMPTY: Mapping[str, Any] = MappingProxyType({})
MiB = 1024 * 1024


def empty() -> Mapping[str, Any]:
    """EMPTY as a dataclass default: Python 3.11 refuses a mappingproxy as a plain default
    (it is unhashable there), so fields take it through a factory."""
    return EMPTY


@dataclass(frozen=True, slots=True)
class SecretRef:
    """Where a credential comes from: an environment variable or a file.

    A relative `file` is looked up in systemd's `$CREDENTIALS_DIRECTORY` first, then
    `/run/secrets`. Resolution (I/O) lives in `autoscaler.secrets`; this is only the reference.
    """

    env: str | None = None
    file: str | None = None
