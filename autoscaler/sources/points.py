"""The values a scrape yields for one series (a number, a `HistogramPoint`, a `SummaryPoint`),
keyed by `SeriesKey`, and `ExpositionError`: shared by the parsing (`exposition.py`) and the
interval arithmetic (`intervals.py`)."""

from __future__ import annotations

from dataclasses import dataclass

SeriesKey = tuple[tuple[str, str], ...]  # sorted labels without `le` / `quantile`


class ExpositionError(ValueError):
    """The exposition is malformed or does not fit the request (type mismatch, bad buckets)."""


@dataclass(frozen=True, slots=True)
class HistogramPoint:
    """One histogram series at one scrape: cumulative buckets sorted by upper bound."""

    buckets: tuple[tuple[float, float], ...]  # (le, cumulative count), last le is +Inf
    sum: float | None
    count: float | None


@dataclass(frozen=True, slots=True)
class SummaryPoint:
    quantiles: tuple[tuple[float, float], ...]  # (quantile, value)
    sum: float | None
    count: float | None


SeriesValue = float | HistogramPoint | SummaryPoint
