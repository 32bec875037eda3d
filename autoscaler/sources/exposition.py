"""Pure exposition handling for the `prometheus` source: parse, select, and interval math.

Lives here: parsing a scrape body with prometheus-client's parsers (Prometheus text 0.0.4 or
OpenMetrics, chosen by Content-Type), picking one family's series by name and label matchers,
and, re-exported from `intervals.py`, the arithmetic over two scrapes (counter increases with
resets, histogram bucket increases, `histogram_quantile` as PromQL computes it); the value
types are `points.py`'s. No I/O, no clock, no state: `prometheus.py` keeps the previous scrape
and the times.

Anything malformed raises `ExpositionError` (the source turns it into a permanent error); a
number is returned only when the exposition says exactly that number.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from autoscaler.sources.intervals import aggregate as aggregate
from autoscaler.sources.intervals import counter_increase as counter_increase
from autoscaler.sources.intervals import histogram_increase as histogram_increase
from autoscaler.sources.intervals import histogram_mean as histogram_mean
from autoscaler.sources.intervals import histogram_quantile as histogram_quantile
from autoscaler.sources.intervals import merge_histograms as merge_histograms
from autoscaler.sources.numbers import NumberSyntaxError, prometheus_number
from autoscaler.sources.points import (
    ExpositionError,
    HistogramPoint,
    SeriesKey,
    SeriesValue,
    SummaryPoint,
)
from autoscaler.textcut import one_line

OPENMETRICS_TYPE = "application/openmetrics-text"
# Ask for the classic text format only; a server that speaks only OpenMetrics still answers
# in it and the Content-Type says so. Asking for OpenMetrics invites prometheus-client >= 0.22's
# "underscores" escaping, which serves `vllm:x` sample lines as `vllm_x` under a
# `# TYPE vllm:x` header (seen with prometheus-client 0.26), so the vLLM names vanish.
ACCEPT = "text/plain;version=0.0.4;q=1.0,*/*;q=0.1"


@dataclass(frozen=True, slots=True)
class Selection:
    """The selected family in one scrape: its kind and the series that matched."""

    kind: str  # gauge | counter | histogram | summary
    series: Mapping[SeriesKey, SeriesValue]
    family_series: int  # how many series the family had before label matching


@dataclass(frozen=True, slots=True)
class Selector:
    metric: str
    labels: Mapping[str, str] = field(default_factory=dict)
    labels_regex: Mapping[str, re.Pattern[str]] = field(default_factory=dict)

    @classmethod
    def build(
        cls, metric: str, labels: Mapping[str, str], labels_regex: Mapping[str, str]
    ) -> Selector:
        compiled = {}
        for key, pattern in labels_regex.items():
            try:
                compiled[key] = re.compile(pattern)
            except re.error as exc:
                raise ExpositionError(
                    f"labels_regex.{key}: {pattern!r} is not a valid regex: {exc}"
                ) from None
        return cls(metric, dict(labels), compiled)

    def matches(self, labels: Mapping[str, str]) -> bool:
        # As in PromQL, a missing label equals "" and regexes are fully anchored.
        return all(labels.get(k, "") == v for k, v in self.labels.items()) and all(
            p.fullmatch(labels.get(k, "")) for k, p in self.labels_regex.items()
        )

    def describe(self) -> str:
        parts = [f'{k}="{v}"' for k, v in self.labels.items()]
        parts += [f'{k}=~"{p.pattern}"' for k, p in self.labels_regex.items()]
        return self.metric + ("{" + ",".join(parts) + "}" if parts else "")


def parse_exposition(
    text: str, content_type: str | None, only_metric: str | None = None
) -> list[Metric]:
    """The families in a scrape body, parsed by the format its Content-Type names.

    With `only_metric`, only that family's lines are parsed (`family_lines`): a vLLM
    exposition has ~40 families and parsing one is 10-20x faster than parsing all; a problem in
    a family we do not read is not ours to report."""
    openmetrics = (content_type or "").strip().lower().startswith(OPENMETRICS_TYPE)
    if not openmetrics and text[text.rfind("\n") + 1 :].strip():
        # The format ends every line, the last one too, with a line feed: a body that ends
        # mid-line was cut short (a connection closed mid-answer, with no Content-Length to
        # tell), and its last value may be cut too (`12` read as `1`). OpenMetrics has `# EOF`.
        last = text[text.rfind("\n") + 1 :]
        raise ExpositionError(
            "malformed Prometheus text exposition: the body ends in the middle of a line "
            f"({one_line(last, 80)!r}, no final line feed): the answer was cut short?"
        )
    if only_metric is not None:
        text = family_lines(text, only_metric, openmetrics)
    parser = parse_openmetrics if openmetrics else parse_text
    try:
        return list(parser(text))
    except Exception as exc:  # the parsers raise ValueError, and worse on odd input
        fmt = "OpenMetrics" if openmetrics else "Prometheus text"
        detail = one_line(str(exc), 200) or type(exc).__name__
        raise ExpositionError(f"malformed {fmt} exposition: {detail}") from None


_SUFFIXES = ("", "_total", "_bucket", "_sum", "_count", "_created")


# `{labels}`: quoted label values may hold `}`, `#`, spaces and escaped quotes (an OpenMetrics
# exemplar after the value has braces of its own).
_LABELS = re.compile(r'\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\}')
_QUOTED_NAME = re.compile(r'\{[ \t]*"((?:[^"\\]|\\.)*)"')
_UNESCAPE = re.compile(r"\\(.)")
_FIELDS = re.compile(r"[^ \t]+")  # the formats separate fields with spaces and tabs only


def _split_sample(line: str) -> tuple[str, str]:
    """(sample name, what follows the name and labels) of a stripped sample line."""
    brace = line.find("{")
    space = min((i for i in (line.find(" "), line.find("\t")) if i >= 0), default=-1)
    if brace >= 0 and (space < 0 or brace < space):
        labels = _LABELS.match(line, brace)
        end = labels.end() if labels else line.rfind("}") + 1  # unclosed: the parser says so
        return line[:brace].strip(), line[end:]
    if space >= 0:
        return line[:space], line[space:]
    return line, ""


def _quoted_name(line: str) -> str:
    """The name of a sample line that quotes it inside its labels (`{"name", a="b"} 1`)."""
    quoted = _QUOTED_NAME.match(line)
    if quoted is None:
        return ""
    return _UNESCAPE.sub(lambda m: "\n" if m[1] == "n" else m[1], quoted[1])


def _check_sample(number: int, line: str, rest: str, openmetrics: bool) -> None:
    """A kept sample line is `name[{labels}] value [timestamp]` (classic text; OpenMetrics'
    parser checks its own lines), and its value is a number as the format spells one: fields
    are separated by spaces and tabs only, so other whitespace is part of the value."""
    fields = _FIELDS.findall(rest)
    where = f"malformed {'OpenMetrics' if openmetrics else 'Prometheus text'} exposition: line "
    where += f"{number} {one_line(line, 120)!r}"
    if not openmetrics and not 1 <= len(fields) <= 2:
        raise ExpositionError(f"{where} is not `name{{labels}} value [timestamp]`")
    if fields:
        try:
            prometheus_number(fields[0])
        except NumberSyntaxError as exc:
            raise ExpositionError(
                f"{where}: value {exc} (a sample value is decimal in ASCII digits, NaN or ±Inf)"
            ) from None


def family_lines(text: str, metric: str, openmetrics: bool = False) -> str:
    """The lines of `text` that belong to `metric`'s family (samples, HELP/TYPE/UNIT, EOF).

    Each kept sample line is also checked strictly (`_check_sample`): prometheus-client's
    text parser is lax (`m{a="b"} 1 2 3` reads as 1 with a timestamp), both parsers read a
    value with `float()` (`٣`, an Arabic-Indic 3, reads as 3), and a value read from a
    malformed line could be a wrong number."""
    base = metric[:-6] if metric.endswith("_total") else metric
    names = {base + suffix for suffix in _SUFFIXES}
    kept = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            if openmetrics:
                kept.append(raw)  # a blank line is an OpenMetrics error; let the parser say so
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if line == "# EOF" or (
                len(parts) >= 3 and parts[1] in ("HELP", "TYPE", "UNIT") and parts[2] in names
            ):
                kept.append(raw)
            continue
        if line.startswith("{"):  # a quoted (UTF-8) name: keep it, the parser decides
            if _quoted_name(line) in names:
                _check_sample(number, line, _split_sample(raw.strip(" \t"))[1], openmetrics)
            kept.append(raw)
            continue
        if not line.startswith(base):
            continue
        name, rest = _split_sample(raw.strip(" \t"))
        if name.strip() not in names:
            continue
        _check_sample(number, line, rest, openmetrics)
        kept.append(raw)
    return "\n".join(kept) + "\n"


FLOAT_INT_LIMIT = 2**1024  # the smallest integer `float()` cannot convert

_KINDS = {"gauge": "gauge", "unknown": "gauge", "untyped": "gauge", "counter": "counter"}
_KINDS |= {"histogram": "histogram", "summary": "summary"}


def _family_matches(family: Metric, metric: str) -> bool:
    if family.name == metric:
        return True
    # The parsers drop `_total` from counter family names; users write it either way.
    return family.type == "counter" and family.name + "_total" == metric


def _number(value: object, what: str, *, finite: bool = False, count: bool = False) -> float:
    """A sample's value; `count`: a count of observations, which cannot be negative."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ExpositionError(f"{what}: value {value!r} is not a number")
    if isinstance(value, int) and not -FLOAT_INT_LIMIT < value < FLOAT_INT_LIMIT:
        # The text parser reads an integer as `int` (up to 4,300 digits); one beyond float
        # range is infinite, as `1e400` is: refused below or by the load check.
        value = math.inf if value > 0 else -math.inf
    if finite and not math.isfinite(value):
        raise ExpositionError(f"{what}: value {value} is not a finite number")
    if count and value < 0:
        raise ExpositionError(f"{what}: a count is negative ({value:g})")
    return float(value)


def _key(labels: Mapping[str, str], drop: str | None = None) -> SeriesKey:
    return tuple(sorted((k, v) for k, v in labels.items() if k != drop))


def _bound(text: str, label: str, what: str) -> float:
    try:
        value = prometheus_number(text)
    except NumberSyntaxError:
        raise ExpositionError(f"{what}: {label}={text!r} is not a number") from None
    if math.isnan(value):
        raise ExpositionError(f"{what}: {label}={text!r} is NaN")
    return value


def select(families: Iterable[Metric], selector: Selector) -> Selection | None:
    """The series of `selector.metric` matching its labels; None when the family is absent."""
    chosen = [f for f in families if _family_matches(f, selector.metric)]
    if not chosen:
        return None
    kinds = set()
    for family in chosen:
        kind = _KINDS.get(family.type)
        if kind is None:
            raise ExpositionError(
                f"{selector.metric} is a {family.type}; supported: gauge, counter, "
                "histogram, summary, untyped"
            )
        kinds.add(kind)
    if len(kinds) > 1:
        raise ExpositionError(f"{selector.metric} is declared as {' and '.join(sorted(kinds))}")
    kind = kinds.pop()
    name = chosen[0].name
    samples = [s for f in chosen for s in f.samples]
    if kind in ("gauge", "counter"):
        counter = kind == "counter"
        series = _scalar_series(samples, name + ("_total" if counter else ""), counter=counter)
    elif kind == "histogram":
        series = _histogram_series(samples, name)
    else:
        series = _summary_series(samples, name)
    matched = {k: v for k, v in series.items() if selector.matches(dict(k))}
    return Selection(kind, matched, len(series))


def _scalar_series(
    samples: Sequence[object], sample_name: str, *, counter: bool
) -> dict[SeriesKey, SeriesValue]:
    series: dict[SeriesKey, SeriesValue] = {}
    for s in samples:
        if s.name != sample_name:  # type: ignore[attr-defined]
            continue  # `_created` and other companions
        key = _key(s.labels)  # type: ignore[attr-defined]
        if key in series:
            raise ExpositionError(f"duplicate series {sample_name}{_fmt(key)}")
        what = f"{sample_name}{_fmt(key)}"
        value = _number(s.value, what, finite=counter)  # type: ignore[attr-defined]
        if counter and value < 0:
            raise ExpositionError(f"{what}: counter is negative ({value:g})")
        series[key] = value
    return series


def _fmt(key: SeriesKey) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in key) + "}"


def _histogram_series(samples: Sequence[object], name: str) -> dict[SeriesKey, SeriesValue]:
    buckets: dict[SeriesKey, dict[float, float]] = {}
    sums: dict[SeriesKey, float] = {}
    counts: dict[SeriesKey, float] = {}
    for s in samples:
        sample_name, labels, value = s.name, s.labels, s.value  # type: ignore[attr-defined]
        if sample_name == name + "_bucket":
            key = _key(labels, drop="le")
            what = f"{name}_bucket{_fmt(key)}"
            if "le" not in labels:
                raise ExpositionError(f"{what}: bucket without an le label")
            le = _bound(labels["le"], "le", what)
            per = buckets.setdefault(key, {})
            if le in per:
                raise ExpositionError(f"{what}: duplicate bucket le={labels['le']}")
            per[le] = _number(value, what, finite=True, count=True)
        elif sample_name in (name + "_sum", name + "_count"):
            key = _key(labels)
            is_count = sample_name.endswith("_count")
            target = counts if is_count else sums
            if key in target:
                raise ExpositionError(f"duplicate series {sample_name}{_fmt(key)}")
            target[key] = _number(value, f"{sample_name}{_fmt(key)}", finite=True, count=is_count)
    series: dict[SeriesKey, SeriesValue] = {}
    for key in set(buckets) | set(sums) | set(counts):
        per = buckets.get(key, {})
        what = f"{name}{_fmt(key)}"
        if math.inf not in per:
            raise ExpositionError(f'{what}: histogram has no le="+Inf" bucket')
        ordered = tuple(sorted(per.items()))
        for (_, before), (le, after) in itertools.pairwise(ordered):
            if after < before:
                raise ExpositionError(f"{what}: bucket le={le:g} holds fewer than the one below")
        series[key] = HistogramPoint(ordered, sums.get(key), counts.get(key))
    return series


def _summary_series(samples: Sequence[object], name: str) -> dict[SeriesKey, SeriesValue]:
    quantiles: dict[SeriesKey, dict[float, float]] = {}
    sums: dict[SeriesKey, float] = {}
    counts: dict[SeriesKey, float] = {}
    for s in samples:
        sample_name, labels, value = s.name, s.labels, s.value  # type: ignore[attr-defined]
        if sample_name == name and "quantile" in labels:
            key = _key(labels, drop="quantile")
            what = f"{name}{_fmt(key)}"
            q = _bound(labels["quantile"], "quantile", what)
            per = quantiles.setdefault(key, {})
            if q in per:
                raise ExpositionError(f"{what}: duplicate quantile {labels['quantile']}")
            per[q] = _number(value, what)
        elif sample_name in (name + "_sum", name + "_count"):
            key = _key(labels)
            is_count = sample_name.endswith("_count")
            target = counts if is_count else sums
            if key in target:
                raise ExpositionError(f"duplicate series {sample_name}{_fmt(key)}")
            # As for histograms: an infinite _sum or _count turns the interval mean into
            # NaN (inf - inf), which would pass as "no data" (on_empty: zero reads 0).
            target[key] = _number(value, f"{sample_name}{_fmt(key)}", finite=True, count=is_count)
    return {
        key: SummaryPoint(
            tuple(sorted(quantiles.get(key, {}).items())), sums.get(key), counts.get(key)
        )
        for key in set(quantiles) | set(sums) | set(counts)
    }
