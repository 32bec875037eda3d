"""Reading trace files as rows of text: a CSV file, or JSON Lines (one object per request,
its keys taking the place of a header), streamed so that a trace of millions of requests is
never held as text; gzip-compressed (`.csv.gz`, `.jsonl.gz`: recognised by the gzip magic
bytes, not the name) or not, with or without a UTF-8 byte order mark. A CSV header without a
comma but with a tab, semicolon or bar is read as separated by it (TSV, European spreadsheet
exports). A row whose every field is empty (a blank line, or `,,` left by a spreadsheet) is
`blank`. What the rows mean is `traces.py`'s business.
"""

from __future__ import annotations

import csv
import gzip
import json
import zlib
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import TextIO


class TraceError(Exception):
    """A trace file that cannot be read; the message names the file (and line) and the fault."""


Rows = Iterator[list[str]]


@contextmanager
def open_rows(path: str) -> Generator[tuple[list[str], Rows, int]]:
    """The header, the rows (read as they are parsed: a trace of millions of requests is never
    held as text) and the line number of the first row, of a CSV file or of a JSON Lines file
    (`_jsonl_rows`)."""
    try:
        handle = _open_text(path)
    except FileNotFoundError:
        raise TraceError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise TraceError(f"{path}: is a directory, not a trace file") from None
    except OSError as exc:
        raise TraceError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    with handle:
        try:
            opening = handle.read(4096).lstrip()
            handle.seek(0)
            if opening.startswith("["):
                raise TraceError(
                    f"{path}:1: a JSON array; a trace is CSV or JSON Lines (one object per "
                    f"line): convert it with jq -c '.[]' {path} > trace.jsonl"
                )
            first = 1  # JSON Lines: every line is a row
            if opening.startswith("{"):
                header, rows = _jsonl_rows(path, handle)
            else:
                header, rows, first = _csv_rows(path, handle, _delimiter(opening))
        except UnicodeDecodeError as exc:
            raise TraceError(f"{path}: not a UTF-8 text file ({exc.reason})") from None
        except (OSError, EOFError, zlib.error) as exc:
            raise TraceError(f"{path}: a damaged gzip file ({exc})") from None
        yield header, _decoded(path, rows), first


def _open_text(path: str) -> TextIO:
    """The file as text: gunzipped as it is read when it starts with the gzip magic bytes;
    a UTF-8 byte order mark (spreadsheet exports) dropped, so it is not part of the first
    column's name."""
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", newline="", encoding="utf-8-sig")
    return open(path, newline="", encoding="utf-8-sig")


def _decoded(path: str, rows: Rows) -> Rows:
    """`rows`, with a byte that is not UTF-8 further down the file (or a truncated gzip
    stream) a `TraceError`."""
    try:
        yield from rows
    except UnicodeDecodeError as exc:
        raise TraceError(f"{path}: not a UTF-8 text file ({exc.reason})") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise TraceError(f"{path}: a damaged gzip file ({exc})") from None


def blank(row: list[str]) -> bool:
    """A row with nothing in it: skipped wherever rows are read."""
    return not any(field.strip() for field in row)


def _delimiter(opening: str) -> str:
    """The field separator, from the header line: a comma unless the header has none and has
    a tab, semicolon or bar (a one-column header is left to fail as unrecognised)."""
    header = opening.split("\n", 1)[0]
    if "," not in header:
        for other in ("\t", ";", "|"):
            if other in header:
                return other
    return ","


def _csv_rows(path: str, handle: TextIO, delimiter: str) -> tuple[list[str], Rows, int]:
    """The header (the first row not blank), the rows after it and the line of the first."""
    reader = csv.reader(handle, delimiter=delimiter)

    def rows() -> Rows:
        try:
            yield from reader
        except csv.Error as exc:
            raise TraceError(f"{path}: not a readable CSV ({exc})") from None

    try:
        header = next(reader)
        while blank(header):
            header = next(reader)
    except StopIteration:
        raise TraceError(f"{path}:1: the file is empty (a CSV header is expected)") from None
    except csv.Error as exc:
        raise TraceError(f"{path}: not a readable CSV ({exc})") from None
    return header, rows(), reader.line_num + 1


def _jsonl_rows(path: str, handle: TextIO) -> tuple[list[str], Rows]:
    """JSON Lines as a header (the first object's keys) and rows of text, so that one parser
    reads both forms and names `file:line` alike. A key a later object lacks is an empty field
    (reported by the column that needs it); nested values are kept as text and never read."""
    lines = enumerate(handle, start=1)

    def parsed(number: int, line: str) -> dict[str, object]:
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise TraceError(f"{path}:{number}: not a JSON object ({exc})") from None
        if not isinstance(item, dict):
            raise TraceError(f"{path}:{number}: not a JSON object (a {type(item).__name__})")
        return item

    blanks = 0
    for number, line in lines:
        if line.strip():
            item = parsed(number, line)
            header = [str(key) for key in item]
            break
        blanks += 1
    else:
        raise TraceError(f"{path}:1: the file is empty (a JSON object per line is expected)")

    def rows() -> Rows:
        yield from ([] for _ in range(blanks))  # keeps row k on line k + 1
        yield [_json_field(item.get(key)) for key in header]
        for number, line in lines:
            if not line.strip():
                yield []
                continue
            later = parsed(number, line)
            yield [_json_field(later.get(key)) for key in header]

    return header, rows()


def _json_field(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()  # not a number: reported as such by the column's parser
    return str(value)
