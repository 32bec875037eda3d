"""The spellings of a number a metric source reads from text, defined once (pure, no I/O).

Python's `float()` takes far more than any format a source reads writes: `"1_000"`, digits of
other scripts (`"٣"`, an Arabic-Indic 3), whitespace around the number, `"+nan"`. None of
those is a value a Prometheus server, an exporter or a JSON API wrote; reading one as a number
would be a guess, so it is a failed read, and the message names the value.

- `decimal`: an optional sign, ASCII digits, an optional fraction, an optional exponent (`12`,
  `-0.5`, `.5`, `5.`, `1e-3`, `1E+300`): the decimal numbers of Prometheus' parsers (Go's
  ParseFloat), OpenMetrics and JSON (whose numbers are a stricter subset). The `http_json`
  source reads a quoted number with it.
- `prometheus_number`: those, and the special values of the exposition formats and the
  Prometheus HTTP API: `NaN`, and `Inf` or `Infinity` with an optional sign, in any case (as
  Prometheus' own parser reads them; it writes `NaN`, `+Inf`, `-Inf`). Sample values, the `le`
  and `quantile` labels and PromQL answers are read with it.
"""

from __future__ import annotations

import re

from autoscaler.textcut import cut

DECIMAL = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
# re.ASCII: case-insensitive matching would otherwise take the dotless i (U+0131) for an `i`.
_DECIMAL = re.compile(DECIMAL, re.ASCII)
_PROMETHEUS = re.compile(rf"{DECIMAL}|(?i:[+-]?inf(?:inity)?|nan)", re.ASCII)


class NumberSyntaxError(ValueError):
    """Text that is not a number in the spellings the format uses. `str()` shows the text as
    it is (quoted, escapes and all: `' 7'`, `'1\\u2003'`) and says so."""


def _number(pattern: re.Pattern[str], text: str) -> float:
    if pattern.fullmatch(text) is None:
        shown = cut(text, 40)
        raise NumberSyntaxError(f"{shown!r} is not a number")
    return float(text)  # a decimal past float range is infinite, as `1e400` is


def decimal(text: str) -> float:
    """The number `text` spells in decimal, or NumberSyntaxError."""
    return _number(_DECIMAL, text)


def prometheus_number(text: str) -> float:
    """The number `text` spells in decimal or as NaN / ±Inf, or NumberSyntaxError."""
    return _number(_PROMETHEUS, text)
