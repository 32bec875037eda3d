"""Arithmetic over two scrapes of the `prometheus` source: counter increases with resets,
histogram bucket increases and merges, `histogram_quantile` as PromQL computes it, histogram
means and the aggregation of several series. Pure: no I/O, no clock."""

from __future__ import annotations

import math
from collections.abc import Sequence

from autoscaler.sources.points import ExpositionError, HistogramPoint


def counter_increase(previous: float, current: float) -> float:
    """The increase between two scrapes; a decrease means the counter restarted from 0."""
    return current - previous if current >= previous else current


def histogram_increase(previous: HistogramPoint, current: HistogramPoint) -> HistogramPoint:
    """Bucket, sum and count increases; any decrease (or new buckets) means a restart."""
    same_bounds = [le for le, _ in previous.buckets] == [le for le, _ in current.buckets]
    reset = not same_bounds or any(
        after < before
        for (_, before), (_, after) in zip(previous.buckets, current.buckets, strict=False)
    )
    if previous.count is not None and current.count is not None:
        reset = reset or current.count < previous.count
    if reset:
        return current
    buckets = tuple(
        (le, after - before)
        for (le, after), (_, before) in zip(current.buckets, previous.buckets, strict=True)
    )
    total_sum = None
    if current.sum is not None and previous.sum is not None:
        total_sum = current.sum - previous.sum
    total_count = None
    if current.count is not None and previous.count is not None:
        total_count = current.count - previous.count
    return HistogramPoint(buckets, total_sum, total_count)


def merge_histograms(points: Sequence[HistogramPoint], what: str) -> HistogramPoint:
    """Sum histograms bucket by bucket (like `sum by (le)`); bucket bounds must agree."""
    bounds = [le for le, _ in points[0].buckets]
    for point in points[1:]:
        if [le for le, _ in point.buckets] != bounds:
            raise ExpositionError(
                f"{what}: the selected series have different buckets; select series with "
                "the same buckets (labels) or use aggregate max/min/avg"
            )
    buckets = tuple((le, sum(p.buckets[i][1] for p in points)) for i, le in enumerate(bounds))
    sums = [p.sum for p in points]
    counts = [p.count for p in points]
    merged = HistogramPoint(
        buckets,
        None if any(s is None for s in sums) else sum(s for s in sums if s is not None),
        None if any(c is None for c in counts) else sum(c for c in counts if c is not None),
    )
    totals = [count for _, count in merged.buckets] + [merged.sum or 0.0, merged.count or 0.0]
    if not all(math.isfinite(total) for total in totals):
        # Finite series whose sum overflows: inf - inf and inf / inf are NaN ("no data")
        # and a finite sum over an infinite count is a mean of 0 ("idle").
        raise ExpositionError(f"{what}: the sum of the selected series is beyond float range")
    return merged


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """PromQL's `histogram_quantile`: linear interpolation inside the bucket holding rank
    `q * total`; None when there are no observations. Buckets are cumulative, sorted by
    upper bound, and end with +Inf."""
    if not 0.0 <= q <= 1.0:
        raise ExpositionError(f"quantile {q} is outside [0, 1]")
    if not buckets or buckets[-1][0] != math.inf:
        raise ExpositionError('histogram has no le="+Inf" bucket')
    total = buckets[-1][1]
    if not math.isfinite(total):
        raise ExpositionError(f"histogram holds {total} observations (not a finite number)")
    if total <= 0:
        return None
    if len(buckets) < 2:
        return None  # only +Inf: PromQL answers NaN, there is nothing to interpolate
    rank = q * total
    index = next(i for i, (_, count) in enumerate(buckets) if count >= rank)
    if index == len(buckets) - 1:
        return buckets[-2][0]  # in the +Inf bucket: the highest finite bound
    upper, count = buckets[index]
    if index == 0 and upper <= 0:
        return upper
    lower, below = (0.0, 0.0) if index == 0 else buckets[index - 1]
    in_bucket = count - below
    if in_bucket <= 0:
        return upper
    return lower + (upper - lower) * ((rank - below) / in_bucket)


def histogram_mean(point: HistogramPoint, what: str) -> float | None:
    """Mean observation over an interval (sum increase / count increase); None if none."""
    if point.sum is None or point.count is None:
        raise ExpositionError(f"{what}: histogram has no _sum/_count; set a quantile instead")
    if point.count <= 0:
        return None
    return point.sum / point.count


def aggregate(values: Sequence[float], how: str) -> float | None:
    if not values:
        return None
    if any(math.isnan(v) for v in values):
        return math.nan  # a NaN series makes the whole answer "no data", never a guess
    if how in ("sum", "avg"):
        try:
            total = math.fsum(values)
        except OverflowError:  # beyond float range: report "not finite", never a crash
            return math.inf
        return total if how == "sum" else total / len(values)
    if how == "max":
        return max(values)
    if how == "min":
        return min(values)
    raise ExpositionError(f"aggregate {how!r} must be one of [sum, avg, max, min]")
