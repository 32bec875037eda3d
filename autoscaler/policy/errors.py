"""The error values of policy and config loading: `PolicyError` and `ValidationFailed`.

A `PolicyError` is one located problem, printed as `FILE:LINE:COL: key.path: message`
(line and column 1-based). `ValidationFailed` carries every error found, so a user fixes a
file in one pass. Nothing here parses or validates.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from autoscaler.textcut import cut

PathPart = str | int
KeyPath = tuple[PathPart, ...]

ROOT_PATH = "(root)"
"""Printed as the key path of errors about a whole document (bad YAML, not a mapping)."""

FILE_PATH = "(file)"
"""Printed as the key path of errors about a file or path that could not be read."""


def format_path(path: Sequence[PathPart]) -> str:
    """`("metrics", 1, "target", "value")` -> `metrics[1].target.value`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            # A key with control characters would break the one-line-per-error format.
            shown = part if part.isprintable() else json.dumps(part)
            text += f".{shown}" if text else shown
    return text or ROOT_PATH


def quote(text: str, limit: int = 60) -> str:
    """A string as it appears in messages: double-quoted, escaped, cut when long."""
    return json.dumps(cut(text, limit), ensure_ascii=False)


@dataclass(frozen=True)
class PolicyError:
    """One problem, located in a file. `path` is already formatted (`metrics[1].target`)."""

    file: str
    line: int
    col: int
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.path}: {self.message}"


class ValidationFailed(Exception):
    """One or more files are invalid; `.errors` lists every problem found, in file order."""

    def __init__(self, errors: Sequence[PolicyError]):
        self.errors: list[PolicyError] = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)
