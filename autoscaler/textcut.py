"""A value's text cut to a length for a message: one rule for every message that quotes
something a user, a server or a file supplied (a policy value, an answer, a metric line).

`cut(text, limit)` keeps `text` when it fits in `limit` characters, else its start and "...",
`limit` characters in all; `one_line` first folds every run of whitespace (line breaks
included) into one space, for text that must stay on one log or error line. How the value
is quoted (repr, JSON) is the caller's: the formats differ on purpose. Pure, no imports of
the package.
"""

from __future__ import annotations

ELLIPSIS = "..."


def cut(text: str, limit: int) -> str:
    """`text`, or its first `limit - 3` characters and "..." when it is longer than `limit`."""
    return text if len(text) <= limit else text[: limit - len(ELLIPSIS)] + ELLIPSIS


def one_line(text: str, limit: int) -> str:
    """`text` on one line (whitespace runs as one space), then `cut`."""
    return cut(" ".join(text.split()), limit)
