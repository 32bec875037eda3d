"""The `prometheus` source: scrape text expositions (vLLM, gateway `/metrics`) and reduce them.

Lives here: the scrape (all URLs concurrently through one shared httpx client), the memory of
the previous scrape that counters and histograms need, and turning a `Selection` into one
number. Parsing and interval arithmetic live in `exposition.py` (pure).

What a read returns, by the family's type:
- gauge / untyped: the aggregate (`sum|avg|max|min`) of the matching series over all URLs.
- counter: the per-second rate between this scrape and the previous one, per series, then
  aggregated. A decrease is a restart: the new value is the increase. The first read has no
  previous scrape and raises `NeedsBaselineError` (temporary) instead of guessing 0: a made-up
  0 would read as "idle", a failed read never causes a scale-down. A series seen for the first
  time (a new replica) counts from the next read on.
- histogram: over the interval since the previous scrape, `quantile` as PromQL's
  `histogram_quantile` computes it, or without `quantile` the mean (sum increase / count
  increase). With `aggregate: sum` the matching series are merged bucket by bucket first
  (like `sum by (le)`); with avg/max/min each series gets its own figure, then they are
  aggregated. No observations in the interval is "empty".
- summary: `quantile` reads the summary's own quantile series; without it, the interval mean.
If any URL fails the whole read fails: a sum over the replicas that answered would be wrong.

Negative values (what is read is load, so a negative is a failed read, `BadValueError`):
- gauge / untyped: any matching series below 0 fails the read (not only a negative sum: one
  replica's -50 would silently cancel another's 50).
- counter: a negative sample is malformed (`exposition`); the rate cannot be negative.
- histogram: negative bucket counts or `_count` are malformed; a negative quantile or mean
  (buckets or a `_sum` below 0, possible in Prometheus for signed observations) fails the
  read: latencies and sizes are never negative.
- summary: a negative quantile value or interval mean fails the read.

Each answer is read up to `max_body` bytes (8 MiB by default) and a large one is parsed in a
worker thread; `timeout` bounds the whole read: every scrape and every parse.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import anyio
import httpx

from autoscaler.policy.model import PrometheusSource
from autoscaler.sources.base import PermanentSourceError, SourceError, TemporarySourceError
from autoscaler.sources.common import (
    NeedsBaselineError,
    bounded_read,
    finish,
    load_value,
    off_loop,
    redact_url,
)
from autoscaler.sources.exposition import (
    ACCEPT,
    ExpositionError,
    HistogramPoint,
    Selection,
    Selector,
    SeriesKey,
    SeriesValue,
    SummaryPoint,
    aggregate,
    counter_increase,
    histogram_increase,
    histogram_mean,
    histogram_quantile,
    merge_histograms,
    parse_exposition,
    select,
)
from autoscaler.sources.httpget import (
    HttpAnswer,
    decode_text,
    http_get,
)

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class _Scrape:
    url_index: int
    at: float  # monotonic seconds when the answer arrived
    selection: Selection | None  # the family, parsed from the body (the body is not kept)
    size: int  # bytes of the body


class PrometheusScrapeSource:
    def __init__(
        self,
        spec: PrometheusSource,
        *,
        name: str,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = time.monotonic,
    ):
        if not spec.urls:
            raise PermanentSourceError(name, "no url given (set url: or urls:)")
        self.spec = spec
        self.name = name
        try:
            self.selector = Selector.build(spec.metric, spec.labels, spec.labels_regex)
        except ExpositionError as exc:
            raise PermanentSourceError(name, str(exc)) from None
        urls = ", ".join(redact_url(u) for u in spec.urls)
        self.describe = f"prometheus {urls} {self.selector.describe()} ({spec.aggregate})"
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(spec.timeout),
            headers={"Accept": ACCEPT},
            follow_redirects=True,
        )
        self._clock = clock
        self._lock = anyio.Lock()
        # (url index, series labels) -> (scrape time, value) from the previous read.
        self._previous: dict[tuple[int, SeriesKey], tuple[float, SeriesValue]] = {}

    async def read(self) -> float:
        return await bounded_read(self.name, self.spec.timeout, self._read)

    async def aclose(self) -> None:
        await self._client.aclose()

    # --- the read ------------------------------------------------------------------------

    async def _read(self) -> float:
        async with self._lock:  # the previous-scrape memory is shared between reads
            scrapes = await self._scrape_all()
            selections = [(s, s.selection) for s in scrapes if s.selection is not None]
            if not selections:
                self._previous.clear()
                return finish(
                    self.name,
                    None,
                    self.spec.on_empty,
                    f"no metric named {self.spec.metric} in the exposition of "
                    f"{self._where(len(scrapes))}",
                )
            kinds = {s.kind for _, s in selections}
            if len(kinds) > 1:
                raise PermanentSourceError(
                    self.name,
                    f"{self.spec.metric} has different types at different URLs: {sorted(kinds)}",
                )
            kind = kinds.pop()
            if self.spec.quantile is not None and kind not in ("histogram", "summary"):
                raise PermanentSourceError(
                    self.name,
                    f"quantile applies to histograms and summaries; {self.spec.metric} is a {kind}",
                )
            size = sum(scrape.size for scrape in scrapes)  # ~ how many series to reduce
            try:
                return await off_loop(self.name, size, lambda: self._reduce(kind, selections))
            except ExpositionError as exc:
                raise PermanentSourceError(self.name, str(exc)) from None

    def _parse(self, url: str, response: HttpAnswer) -> Selection | None:
        """The selected family of one answer (pure; may run in a worker thread)."""
        text = decode_text(self.name, url, response)
        try:
            families = parse_exposition(
                text, response.headers.get("content-type"), only_metric=self.spec.metric
            )
            return select(families, self.selector)
        except ExpositionError as exc:
            raise PermanentSourceError(self.name, f"{url}: {exc}") from None

    def _where(self, count: int) -> str:
        if count == 1:
            return redact_url(self.spec.urls[0])
        return f"{count} URLs"

    async def _scrape_all(self) -> list[_Scrape]:
        results: list[_Scrape | SourceError | None] = [None] * len(self.spec.urls)

        async def one(index: int, url: str) -> None:
            try:
                response = await http_get(self._client, self.name, url, max_body=self.spec.max_body)
                at = self._clock()
                selection = await off_loop(
                    self.name, len(response.content), lambda: self._parse(redact_url(url), response)
                )
                results[index] = _Scrape(index, at, selection, len(response.content))
            except SourceError as exc:
                results[index] = exc

        async with anyio.create_task_group() as group:
            for index, url in enumerate(self.spec.urls):
                group.start_soon(one, index, url)
        failures = [r for r in results if isinstance(r, SourceError)]
        if failures:
            detail = "; ".join(f.message for f in failures)
            if len(self.spec.urls) > 1:
                detail = f"{len(failures)} of {len(self.spec.urls)} URLs failed: {detail}"
            permanent = any(not f.temporary for f in failures)
            error_type = PermanentSourceError if permanent else TemporarySourceError
            raise error_type(self.name, detail)
        return [r for r in results if isinstance(r, _Scrape)]

    def _empty_reason(self, selections: list[tuple[_Scrape, Selection]]) -> str:
        total = sum(s.family_series for _, s in selections)
        return f"no series match {self.selector.describe()} (the family has {total} series)"

    def _reduce(self, kind: str, selections: list[tuple[_Scrape, Selection]]) -> float:
        current = {
            (scrape.url_index, key): (scrape.at, value)
            for scrape, selection in selections
            for key, value in selection.series.items()
        }
        if not current:
            self._previous.clear()
            return finish(self.name, None, self.spec.on_empty, self._empty_reason(selections))
        if kind == "gauge":
            values = [v for _, v in current.values() if isinstance(v, float)]
            self._refuse_negative(current, "gauge")
            result = aggregate(values, self.spec.aggregate)
            return finish(self.name, result, self.spec.on_empty, self._empty_reason(selections))
        if kind == "summary" and self.spec.quantile is not None:
            return self._summary_quantile(current, selections)
        previous, self._previous = self._previous, current
        known = [k for k in current if k in previous]
        if not known:
            raise NeedsBaselineError(
                self.name,
                f"first scrape of {kind} {self.spec.metric} recorded; a rate or interval "
                "figure needs a second scrape (the next read gives it)",
            )
        if kind == "counter":
            return self._counter_rate(current, previous, known)
        return self._interval_figure(kind, current, previous, known)

    def _refuse_negative(
        self, current: dict[tuple[int, SeriesKey], tuple[float, SeriesValue]], kind: str
    ) -> None:
        """One negative series fails the read, whatever the aggregate: in a sum, one
        replica's -50 would cancel another's 50 and read as idle."""
        for (index, key), (_, value) in current.items():
            if isinstance(value, float) and value < 0:
                labels = ",".join(f'{k}="{v}"' for k, v in key)
                where = (
                    f" at {redact_url(self.spec.urls[index])}" if len(self.spec.urls) > 1 else ""
                )
                load_value(self.name, value, f"{kind} {self.spec.metric}{{{labels}}}{where}")

    def _counter_rate(
        self,
        current: dict[tuple[int, SeriesKey], tuple[float, SeriesValue]],
        previous: dict[tuple[int, SeriesKey], tuple[float, SeriesValue]],
        known: list[tuple[int, SeriesKey]],
    ) -> float:
        rates = []
        for key in known:
            (now, value), (then, before) = current[key], previous[key]
            assert isinstance(value, float) and isinstance(before, float)
            elapsed = now - then
            if elapsed <= 0:
                raise TemporarySourceError(self.name, "two scrapes at the same instant")
            rates.append(counter_increase(before, value) / elapsed)
        result = aggregate(rates, self.spec.aggregate)
        return finish(
            self.name, result, self.spec.on_empty, f"no rate for {self.spec.metric}", "rate"
        )

    def _interval_figure(
        self,
        kind: str,
        current: dict[tuple[int, SeriesKey], tuple[float, SeriesValue]],
        previous: dict[tuple[int, SeriesKey], tuple[float, SeriesValue]],
        known: list[tuple[int, SeriesKey]],
    ) -> float:
        what = self.spec.metric
        increases: list[HistogramPoint] = []
        for key in known:
            now, before = current[key][1], previous[key][1]
            if isinstance(now, SummaryPoint) and isinstance(before, SummaryPoint):
                now = HistogramPoint(((math.inf, now.count or 0.0),), now.sum, now.count)
                before = HistogramPoint(
                    ((math.inf, before.count or 0.0),), before.sum, before.count
                )
            assert isinstance(now, HistogramPoint) and isinstance(before, HistogramPoint)
            increases.append(histogram_increase(before, now))
        empty = f"no observations of {what} since the previous scrape"
        q = self.spec.quantile
        figure_name = f"{kind} {what} " + ("mean" if q is None else f"quantile {q:g}")
        if self.spec.aggregate == "sum":
            merged = merge_histograms(increases, what)
            value = (
                histogram_mean(merged, what) if q is None else histogram_quantile(q, merged.buckets)
            )
            return finish(self.name, value, self.spec.on_empty, empty, figure_name)
        figures = []
        for point in increases:
            figure = (
                histogram_mean(point, what) if q is None else histogram_quantile(q, point.buckets)
            )
            if figure is not None:
                figures.append(load_value(self.name, figure, figure_name))
        return finish(
            self.name,
            aggregate(figures, self.spec.aggregate),
            self.spec.on_empty,
            empty,
            figure_name,
        )

    def _summary_quantile(
        self,
        current: dict[tuple[int, SeriesKey], tuple[float, SeriesValue]],
        selections: list[tuple[_Scrape, Selection]],
    ) -> float:
        q = self.spec.quantile
        values = []
        for _, point in current.values():
            assert isinstance(point, SummaryPoint)
            found = [v for quantile, v in point.quantiles if math.isclose(quantile, q or 0.0)]
            if not found:
                have = ", ".join(f"{quantile:g}" for quantile, _ in point.quantiles) or "none"
                raise PermanentSourceError(
                    self.name,
                    f"summary {self.spec.metric} has no quantile {q:g} (it has: {have})",
                )
            values.append(found[0])
        what = f"summary {self.spec.metric} quantile {q:g}"
        for value in values:
            if value < 0:
                load_value(self.name, value, what)
        result = aggregate(values, self.spec.aggregate)
        return finish(self.name, result, self.spec.on_empty, self._empty_reason(selections), what)
