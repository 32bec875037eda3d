"""Trace files the simulator replays: request traces and rate traces.

A **request trace** has one row per request (arrival time, input tokens, output tokens). The
canonical layout is `arrival_s,input_tokens,output_tokens`; Mooncake
(`timestamp_ms,input_length,output_length`), Azure LLM inference
(`TIMESTAMP,ContextTokens,GeneratedTokens`, ISO date-times), BurstGPT
(`Timestamp,Model,Request tokens,Response tokens,...`, seconds), splitwise-sim
(`request_id,...,arrival_timestamp,batch_size,prompt_size,token_size`, seconds) and Vidur
(`arrived_at,num_prefill_tokens,num_decode_tokens`, seconds) are recognised from their
headers, and `ColumnMap` maps any other CSV. A file whose first character is `{` is read as JSON
Lines, one object per request, its keys taking the place of a header: Mooncake's own release
(`{"timestamp": ms, "input_length": ..., "output_length": ..., "hash_ids": [...]}`) loads as
it is. A **rate trace** (`window_start_s,rate_rps[,rate_cv]`) gives
a request rate per window; `generate_arrivals` turns it into seeded arrivals (gamma inter-arrival
times with shape 1/cv^2, exponential when cv is 1 or missing) with token sizes drawn from a
request trace.

Rows out of arrival order (a trace merged from several servers) are sorted, and counted in
`out_of_order` so the command can say so; numeric times from 2000 on are epoch times, kept
(like ISO ones) in `epoch_offset` for schedules. Every row of every model, failed requests (0
output tokens) included, is one stream, unless `--where COLUMN=VALUE` keeps one workload's
rows (`trace_rows.py`). Only parsing and generation live here (one field's parsing:
`trace_fields.py`); no simulation.
Every bad row raises `TraceError` naming `file:line` and what is wrong.
"""

from __future__ import annotations

import itertools
import math
from array import array
from dataclasses import dataclass, replace

import numpy as np

from autoscaler.simulate.trace_fields import (
    EPOCH_2000_S,
    MAX_SPAN_S,
    TimeUnit,
    guess_unit,
    number,
    span_error,
    time_parser,
    tokens,
)
from autoscaler.simulate.trace_fields import TIME_UNITS as TIME_UNITS  # the options' choices
from autoscaler.simulate.trace_files import Rows, TraceError, blank, open_rows
from autoscaler.simulate.trace_rows import Kept, Where


@dataclass(frozen=True, slots=True)
class ColumnMap:
    """Which CSV columns hold the arrival time and token counts, and the time unit.

    Any field left None is taken from the recognised layout (or guessed, for the unit).
    """

    time: str | None = None
    input: str | None = None
    output: str | None = None
    time_unit: TimeUnit | None = None
    where: tuple[Where, ...] = ()  # rows replayed (`trace_rows.py`): all, when empty

    def is_empty(self) -> bool:
        return self.time is None and self.input is None and self.output is None


@dataclass(frozen=True, slots=True)
class RequestTrace:
    """Requests sorted by arrival; times in seconds from the first arrival."""

    arrival_s: np.ndarray  # float64, sorted, starts at 0
    input_tokens: np.ndarray  # int64
    output_tokens: np.ndarray  # int64
    source: str
    layout: str  # which header layout was recognised (or "mapped")
    epoch_offset: float = 0.0  # epoch seconds of time 0 for ISO or epoch traces; 0 otherwise
    out_of_order: int = 0  # rows earlier than the row above them in the file (now sorted)
    first_out_of_order: str = ""  # `file:line` of the first such row

    def __len__(self) -> int:
        return int(self.arrival_s.size)

    @property
    def duration_s(self) -> float:
        return float(self.arrival_s[-1]) if self.arrival_s.size else 0.0

    def head(self, n: int) -> RequestTrace:
        return replace(
            self,
            arrival_s=self.arrival_s[:n],
            input_tokens=self.input_tokens[:n],
            output_tokens=self.output_tokens[:n],
        )


@dataclass(frozen=True, slots=True)
class RateTrace:
    """Request rate per window. `rate_cv` is NaN where the file gives none (treated as 1)."""

    window_start_s: np.ndarray  # float64, increasing, starts at 0
    window_s: np.ndarray  # float64 duration of each window
    rate_rps: np.ndarray  # float64 >= 0
    rate_cv: np.ndarray  # float64, NaN = Poisson
    source: str

    @property
    def duration_s(self) -> float:
        return float(self.window_start_s[-1] + self.window_s[-1]) if self.rate_rps.size else 0.0

    def scaled(self, factor: float, thin: bool = True) -> RateTrace:
        """Rates times `factor`. Scaling down is read as independent thinning of the traced
        stream (a smaller deployment of the same workload), which makes arrivals less bursty:
        a renewal process kept with probability p has squared cv p*cv^2 + (1 - p). Scaling up
        (independent copies superposed) keeps the index of dispersion, so cv stays. With
        `thin=False` the cv is kept as written."""
        cv = self.rate_cv
        if thin and factor < 1.0:
            cv = np.sqrt(factor * cv * cv + (1.0 - factor))  # NaN (Poisson) stays NaN
        return RateTrace(
            self.window_start_s, self.window_s, self.rate_rps * factor, cv, self.source
        )

    def filled_gaps(self) -> tuple[RateTrace, int]:
        """Windows with rate 0 and no cv read as gaps in collection (not idle traffic): their
        rate and cv are interpolated from the windows around them. Returns the trace and how
        many windows were filled."""
        gap = (self.rate_rps == 0) & np.isnan(self.rate_cv)
        if not gap.any() or gap.all():
            return self, 0
        index = np.arange(self.rate_rps.size)
        rate = self.rate_rps.copy()
        rate[gap] = np.interp(index[gap], index[~gap], self.rate_rps[~gap])
        cv = self.rate_cv.copy()
        known = ~np.isnan(cv)
        if known.any():
            cv[gap] = np.interp(index[gap], index[known], self.rate_cv[known])
        filled = RateTrace(self.window_start_s, self.window_s, rate, cv, self.source)
        return filled, int(gap.sum())

    def expected_requests(self) -> float:
        return float(np.sum(self.rate_rps * self.window_s))


Trace = RequestTrace | RateTrace

# header (lower-cased) -> (layout name, time column, input column, output column, unit)
_REQUEST_LAYOUTS: tuple[tuple[str, str, str, str, TimeUnit], ...] = (
    ("canonical", "arrival_s", "input_tokens", "output_tokens", "s"),
    ("mooncake", "timestamp_ms", "input_length", "output_length", "ms"),
    ("mooncake", "timestamp", "input_length", "output_length", "ms"),
    ("azure", "timestamp", "contexttokens", "generatedtokens", "iso"),
    ("burstgpt", "timestamp", "request tokens", "response tokens", "s"),
    ("splitwise", "arrival_timestamp", "prompt_size", "token_size", "s"),
    ("vidur", "arrived_at", "num_prefill_tokens", "num_decode_tokens", "s"),
)


def load_trace(path: str, columns: ColumnMap | None = None) -> Trace:
    """Read a request or rate trace, recognising the layout from its header."""
    with open_rows(path) as (header, rows, first):
        lowered = [h.strip().lower() for h in header]
        columns = columns or ColumnMap()
        if columns.is_empty() and "window_start_s" in lowered and "rate_rps" in lowered:
            if columns.where:
                raise TraceError(f"{path}: --where picks requests; this is a rate trace")
            return _rate_trace(path, lowered, rows, first)
        return _request_trace(path, header, lowered, rows, columns, first)


def load_request_trace(path: str, columns: ColumnMap | None = None) -> RequestTrace:
    trace = load_trace(path, columns)
    if not isinstance(trace, RequestTrace):
        raise TraceError(f"{path}: a request trace is needed here, but this is a rate trace")
    return trace


def _column(path: str, lowered: list[str], header: list[str], name: str, role: str) -> int:
    key = name.strip().lower()
    if key not in lowered:
        raise TraceError(f"{path}:1: no {role} column {name!r}; the header has {', '.join(header)}")
    return lowered.index(key)


def _columns(
    path: str, header: list[str], lowered: list[str], columns: ColumnMap
) -> tuple[str, int, int, int, TimeUnit | None]:
    """The layout, the time, input and output column indices, and the time unit when the
    layout or the mapping says it (None: guess it from the data)."""
    layout = "mapped"
    time_col, input_col, output_col = columns.time, columns.input, columns.output
    unit: TimeUnit | None = columns.time_unit
    for name, t, i, o, u in _REQUEST_LAYOUTS:
        wanted = ((time_col or t).lower(), (input_col or i).lower(), (output_col or o).lower())
        if all(column in lowered for column in wanted):
            layout = name if columns.is_empty() else f"{name}+mapped"
            time_col, input_col, output_col = time_col or t, input_col or i, output_col or o
            if unit is None and columns.time is None:
                unit = u
            break
    if time_col is None or input_col is None or output_col is None:
        raise TraceError(
            f"{path}:1: unrecognised header ({', '.join(header)}); expected "
            "arrival_s,input_tokens,output_tokens (request trace) or "
            "window_start_s,rate_rps[,rate_cv] (rate trace), or map the columns with "
            "--time-column, --input-column and --output-column"
        )
    ti = _column(path, lowered, header, time_col, "time")
    ii = _column(path, lowered, header, input_col, "input-token")
    oi = _column(path, lowered, header, output_col, "output-token")
    return layout, ti, ii, oi, unit


def _request_trace(
    path: str,
    header: list[str],
    lowered: list[str],
    rows: Rows,
    columns: ColumnMap,
    first: int,
) -> RequestTrace:
    layout, ti, ii, oi, unit = _columns(path, header, lowered, columns)
    kept = Kept(path, header, columns.where)
    rows = kept.rows(rows)
    if unit is None:
        head: list[list[str]] = []  # rows up to the first with a time, read again below
        for row in rows:
            head.append(row)
            if len(row) > ti and row[ti].strip():
                break
        unit = guess_unit(header[ti], head[-1][ti] if head and len(head[-1]) > ti else "")
        rows = itertools.chain(head, rows)
    read = _read_requests(path, header, (ti, ii, oi), unit, rows, first)
    times, inputs, outputs, late, first_late = read
    if not times:
        raise (
            kept.nothing_kept()
            if columns.where
            else TraceError(f"{path}: no requests (only a header)")
        )
    arrivals = np.frombuffer(times, dtype=np.float64)
    order = np.argsort(arrivals, kind="stable")
    arrivals = arrivals[order]
    start = float(arrivals[0])
    # a numeric time past 2000 counts from the epoch: kept so schedules see the trace's clock
    offset = start if unit == "iso" or start >= EPOCH_2000_S else 0.0
    return RequestTrace(
        arrivals - start,
        np.frombuffer(inputs, dtype=np.int64)[order],
        np.frombuffer(outputs, dtype=np.int64)[order],
        path,
        layout,
        offset,
        late,
        first_late,
    )


def _read_requests(
    path: str,
    header: list[str],
    cols: tuple[int, int, int],
    unit: TimeUnit,
    rows: Rows,
    first: int,
) -> tuple[array[float], array[int], array[int], int, str]:
    """Arrival times (seconds), input and output tokens of every row, in file order, and how
    many rows arrive before the row above them (a trace merged from several servers), with
    where the first is. A time that stretches the trace past `MAX_SPAN_S` fails at its row: a
    misread unit would otherwise simulate for hours (or exhaust memory) before anything looks
    wrong."""
    ti, ii, oi = cols
    width = max(ti, ii, oi) + 1
    times = array("d")
    inputs = array("q")
    outputs = array("q")
    parse_time = time_parser(unit)
    low = high = previous = math.nan
    late, first_late = 0, ""
    for line, row in enumerate(rows, start=first):
        if blank(row):
            continue
        if len(row) < width:
            raise TraceError(
                f"{path}:{line}: {len(row)} fields, but column {header[width - 1]!r} "
                f"is field {width}"
            )
        where = f"{path}:{line}"
        t = parse_time(row[ti], where, header[ti])
        if not low <= t <= high:  # a new earliest or latest arrival (or the first)
            low, high = (t, t) if not times else (min(low, t), max(high, t))
            if high - low > MAX_SPAN_S:
                raise span_error(where, header[ti], row[ti], low, high)
        if t < previous:
            late += 1
            first_late = first_late or where
        previous = t
        times.append(t)
        inputs.append(tokens(row[ii], where, header[ii]))
        outputs.append(tokens(row[oi], where, header[oi]))
    return times, inputs, outputs, late, first_late


def _rate_trace(path: str, lowered: list[str], rows: Rows, first: int) -> RateTrace:
    si = lowered.index("window_start_s")
    ri = lowered.index("rate_rps")
    ci = lowered.index("rate_cv") if "rate_cv" in lowered else None
    starts: list[float] = []
    rates: list[float] = []
    cvs: list[float] = []
    for line, row in enumerate(rows, start=first):
        if blank(row):
            continue
        where = f"{path}:{line}"
        if len(row) <= max(si, ri):
            raise TraceError(f"{where}: {len(row)} fields, expected {len(lowered)}")
        start = number(row[si], where, "window_start_s")
        rate = number(row[ri], where, "rate_rps")
        if rate < 0:
            raise TraceError(f"{where}: column 'rate_rps': {rate} is negative")
        if starts and start <= starts[-1]:
            raise TraceError(
                f"{where}: column 'window_start_s': {row[si]} does not increase "
                f"(previous window starts at {starts[-1]:g})"
            )
        if starts and start - starts[0] > MAX_SPAN_S:
            raise span_error(where, "window_start_s", row[si], starts[0], start, " (not s)")
        cv = math.nan
        if ci is not None and len(row) > ci and row[ci].strip():
            cv = number(row[ci], where, "rate_cv")
            if cv <= 0:
                raise TraceError(f"{where}: column 'rate_cv': {row[ci]} must be > 0")
        starts.append(start)
        rates.append(rate)
        cvs.append(cv)
    if not starts:
        raise TraceError(f"{path}: no windows (only a header)")
    start_arr = np.asarray(starts, dtype=np.float64)
    start_arr -= start_arr[0]
    gaps = np.diff(start_arr)
    last = float(np.median(gaps)) if gaps.size else 60.0  # the last window lasts as long as most
    windows = np.append(gaps, last)
    return RateTrace(start_arr, windows, np.asarray(rates), np.asarray(cvs, dtype=np.float64), path)


def cv_of(value: float) -> float:
    """The coefficient of variation to generate with: NaN (missing) means Poisson (1)."""
    return 1.0 if math.isnan(value) else float(value)


def generate_arrivals(trace: RateTrace, rng: np.random.Generator) -> np.ndarray:
    """Seeded arrival times for a rate trace: a renewal process per window whose inter-arrival
    times are gamma distributed with mean 1/rate and the window's coefficient of variation."""
    chunks: list[np.ndarray] = []
    for start, width, rate, cv_raw in zip(
        trace.window_start_s.tolist(),
        trace.window_s.tolist(),
        trace.rate_rps.tolist(),
        trace.rate_cv.tolist(),
        strict=True,
    ):
        if rate <= 0 or width <= 0:
            continue
        cv = cv_of(cv_raw)
        mean_gap = 1.0 / rate
        expected = rate * width
        times: list[np.ndarray] = []
        clock = 0.0
        while clock < width:
            batch = int(expected + 6.0 * math.sqrt(expected) * max(cv, 1.0) + 16)
            if cv == 1.0:
                gaps = rng.exponential(mean_gap, batch)
            else:
                shape = 1.0 / (cv * cv)
                gaps = rng.gamma(shape, mean_gap / shape, batch)
            stamps = clock + np.cumsum(gaps)
            times.append(stamps[stamps < width])
            clock = float(stamps[-1])
        if times:
            chunks.append(start + np.concatenate(times))
    if not chunks:
        return np.empty(0, dtype=np.float64)
    return np.concatenate(chunks)


def requests_from_rates(
    trace: RateTrace, sizes: RequestTrace, rng: np.random.Generator
) -> RequestTrace:
    """Materialise a rate trace into requests: seeded arrivals, token sizes drawn (as pairs,
    keeping the input/output correlation) from the `sizes` request trace."""
    arrivals = generate_arrivals(trace, rng)
    picks = rng.integers(0, len(sizes), arrivals.size)
    return RequestTrace(
        arrivals,
        sizes.input_tokens[picks],
        sizes.output_tokens[picks],
        trace.source,
        "rate",
        0.0,
    )
