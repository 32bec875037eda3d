"""Strict JSON decoding for every JSON document the autoscaler reads (pure, no I/O).

Used by the `http_json` and `promql` sources, the RabbitMQ management answer and the lines of
`autoscaler replay`. `json.loads` with three refusals, each a `JsonDocError` saying why:

- a key twice in one object, at any depth (`{"queue": 1, "queue": 0}`): which value is meant
  is ambiguous, and reading the last one once turned a busy queue into "idle". Ambiguous data
  is a failed read, as duplicate Prometheus series are.
- nesting deeper than `MAX_DEPTH`: no real answer nests that deep, and deep nesting is how
  a hostile body turns into a RecursionError.
- an integer of more than `MAX_INT_DIGITS` digits: converting one costs time quadratic in its
  length, and past 4,300 digits Python refuses with a ValueError of its own.

Floats out of range (`1e400`) decode as infinity and NaN as NaN: the reader's finite check
refuses them where they are read, with the path in the message.
"""

from __future__ import annotations

import json
from typing import Any

from autoscaler.textcut import cut

MAX_DEPTH = 64
MAX_INT_DIGITS = 100


class JsonDocError(ValueError):
    """The text is not JSON the autoscaler accepts; the message says why."""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                shown = cut(key, 40)
                raise JsonDocError(
                    f"duplicate key {json.dumps(shown)} in one object: ambiguous, "
                    "which value is meant cannot be told"
                )
            seen.add(key)
    return document


def _integer(text: str) -> int:
    digits = len(text) - text.startswith("-")
    if digits > MAX_INT_DIGITS:
        raise JsonDocError(f"an integer of {digits} digits is too large (at most {MAX_INT_DIGITS})")
    return int(text)


def _check_depth(document: Any) -> None:
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        if depth > MAX_DEPTH:
            raise JsonDocError(f"nested deeper than {MAX_DEPTH} levels")
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))


def loads(data: bytes | str) -> Any:
    """The decoded document, or JsonDocError (never another exception)."""
    try:
        document = json.loads(data, object_pairs_hook=_object, parse_int=_integer)
    except JsonDocError:
        raise
    except RecursionError:
        raise JsonDocError(f"nested deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}" if exc.lineno > 1 else f"column {exc.colno}"
        raise JsonDocError(f"not valid JSON: {exc.msg} at {where}") from None
    except UnicodeDecodeError as exc:
        raise JsonDocError(f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    except (ValueError, TypeError) as exc:
        raise JsonDocError(f"not valid JSON: {exc}") from None
    if isinstance(document, dict | list):
        _check_depth(document)
    return document
