"""Which rows of a request trace are replayed: `--where COLUMN=VALUE` keeps the rows whose
column holds that value (every condition must hold), for a trace that mixes workloads a
dedicated deployment would not serve together (BurstGPT's `Model` column: ChatGPT and GPT-4;
its `Log Type`: conversation and API logs). Values compare as written, spaces around them
trimmed. A row left out reads as blank, so every line number in a message stays the file's.
When no row is kept, the error says which values the columns do hold.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass

from autoscaler.simulate.trace_files import Rows, TraceError

SHOWN_VALUES = 10  # distinct values of a column named when nothing matched


@dataclass(frozen=True, slots=True)
class Where:
    column: str
    value: str

    def __str__(self) -> str:
        return f"{self.column}={self.value}"


def parse_where(text: str) -> Where:
    """`--where COLUMN=VALUE`, as argparse's `type`."""
    column, sep, value = text.partition("=")
    if not sep or not column.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not COLUMN=VALUE (e.g. Model=ChatGPT)")
    return Where(column.strip(), value.strip())


class Kept:
    """The rows a `Where` list keeps, with what the filtered columns held (for the error)."""

    def __init__(self, path: str, header: list[str], wheres: tuple[Where, ...]) -> None:
        lowered = [h.strip().lower() for h in header]
        self.path, self.wheres = path, wheres
        self.index: list[int] = []
        for where in wheres:
            if where.column.lower() not in lowered:
                raise TraceError(
                    f"{path}:1: --where {where}: no column {where.column!r}; the header has "
                    f"{', '.join(header)}"
                )
            self.index.append(lowered.index(where.column.lower()))
        self.seen: list[dict[str, None]] = [{} for _ in wheres]  # ordered sets

    def rows(self, rows: Rows) -> Rows:
        return rows if not self.wheres else self._filtered(rows)

    def _filtered(self, rows: Rows) -> Iterator[list[str]]:
        for row in rows:
            keep = True
            for n, (where, i) in enumerate(zip(self.wheres, self.index, strict=True)):
                value = row[i].strip() if i < len(row) else ""
                if len(self.seen[n]) < SHOWN_VALUES:
                    self.seen[n].setdefault(value)
                keep = keep and value == where.value
            yield row if keep else []

    def nothing_kept(self) -> TraceError:
        held = "; ".join(
            f"{w.column} holds {', '.join(repr(v) for v in seen) or 'nothing'}"
            + (" ..." if len(seen) >= SHOWN_VALUES else "")
            for w, seen in zip(self.wheres, self.seen, strict=True)
        )
        wanted = " and ".join(str(w) for w in self.wheres)
        return TraceError(f"{self.path}: no request has {wanted} ({held})")
