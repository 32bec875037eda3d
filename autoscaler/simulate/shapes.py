"""Generated traffic of other shapes, to try a policy on traffic nobody tuned it for.

Each shape is seeded and written as a trace file `autoscaler simulate` reads. The parameters
are round, plausible numbers fixed once here, not fitted to any result:

- `bursty-short` (request trace, 1 h): short chat turns (input lognormal, median 300 tokens;
  output lognormal, median 60: about 2.5 s each) at 15 req/s, with bursts at 4x the rate
  starting every 4 minutes on average (exponential gaps) and lasting 30 s on average
  (exponential), much shorter than a start-up.
- `reasoning-long` (request trace, 2 h): long reasoning answers (input median 800 tokens;
  output lognormal, median 3,000 tokens: about 100 s each), Poisson at 0.6 req/s swinging
  +-30 % over 40 minutes.
- `diurnal` (rate trace, 14 days, 5-minute windows): a daily swing between 0.3x and 1.7x of
  2.5 req/s (peak mid-afternoon), weekends at 0.6x, each window's rate off by a lognormal
  factor (sigma 0.1), inter-arrival cv 1.5; sizes come from `--sizes` (the Mooncake hour).

Run `python -m autoscaler.simulate.shapes --out DIR [--seed N]`; `docs/simulate/make_shapes.sh`
generates them and runs every policy and baseline on each, also with 2- and 10-minute
start-ups.
"""

from __future__ import annotations

import argparse
import csv
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

DAY = 86400.0


def _lognormal(rng: np.random.Generator, median: float, sigma: float, n: int) -> np.ndarray:
    return np.maximum(np.round(rng.lognormal(math.log(median), sigma, n)), 1).astype(np.int64)


def _poisson_arrivals(
    rng: np.random.Generator, rate: Callable[[np.ndarray], np.ndarray], peak: float, duration: float
) -> np.ndarray:
    """A Poisson process with rate `rate(t)` <= `peak`, by thinning."""
    count = rng.poisson(peak * duration)
    times = np.sort(rng.uniform(0.0, duration, count))
    keep = rng.uniform(0.0, peak, count) < rate(times)
    return times[keep]


def bursty_short(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    duration, base, factor = 3600.0, 15.0, 4.0
    bursts: list[tuple[float, float]] = []
    t = rng.exponential(240.0)
    while t < duration:
        length = rng.exponential(30.0)
        bursts.append((t, t + length))
        t += length + rng.exponential(240.0)
    starts = np.array([b[0] for b in bursts])
    ends = np.array([b[1] for b in bursts])

    def rate(times: np.ndarray) -> np.ndarray:
        i = np.searchsorted(starts, times, side="right") - 1
        inside = (i >= 0) & (times < ends[np.clip(i, 0, None)])
        return np.where(inside, base * factor, base)

    arrivals = _poisson_arrivals(rng, rate, base * factor, duration)
    return (
        arrivals,
        _lognormal(rng, 300, 0.8, arrivals.size),
        _lognormal(rng, 60, 0.7, arrivals.size),
    )


def reasoning_long(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    duration, mean = 7200.0, 0.6

    def rate(times: np.ndarray) -> np.ndarray:
        return mean * (1.0 + 0.3 * np.sin(2 * math.pi * times / 2400.0))

    arrivals = _poisson_arrivals(rng, rate, mean * 1.3, duration)
    return (
        arrivals,
        _lognormal(rng, 800, 0.7, arrivals.size),
        _lognormal(rng, 3000, 0.5, arrivals.size),
    )


def diurnal(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    window, days, mean = 300.0, 14, 2.5
    starts = np.arange(0.0, days * DAY, window)
    hour = (starts % DAY) / 3600.0
    swing = 1.0 + 0.7 * np.sin(2 * math.pi * (hour - 9.0) / 24.0)  # peak at 15:00
    weekday = (starts // DAY) % 7
    weekend = np.where(weekday >= 5, 0.6, 1.0)
    noise = rng.lognormal(0.0, 0.1, starts.size)
    return starts, mean * swing * weekend * noise, np.full(starts.size, 1.5)


REQUEST_SHAPES: dict[str, Callable[[np.random.Generator], tuple[np.ndarray, ...]]] = {
    "bursty-short": bursty_short,
    "reasoning-long": reasoning_long,
}
RATE_SHAPES: dict[str, Callable[[np.random.Generator], tuple[np.ndarray, ...]]] = {
    "diurnal": diurnal,
}
SHAPES: tuple[str, ...] = (*REQUEST_SHAPES, *RATE_SHAPES)


def write_shapes(out: Path, seed: int, names: Sequence[str] = SHAPES) -> dict[str, Path]:
    """Write each named shape as `out/NAME.csv`; one seed, one child stream per shape, so a
    shape's file does not depend on which others were written."""
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for index, name in enumerate(SHAPES):
        if name not in names:
            continue
        rng = np.random.default_rng([seed, index])
        path = out / f"{name}.csv"
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            if name in REQUEST_SHAPES:
                arrivals, inputs, outputs = REQUEST_SHAPES[name](rng)
                writer.writerow(["arrival_s", "input_tokens", "output_tokens"])
                writer.writerows(
                    (f"{a:.3f}", i, o)
                    for a, i, o in zip(
                        arrivals.tolist(), inputs.tolist(), outputs.tolist(), strict=True
                    )
                )
            else:
                starts, rates, cvs = RATE_SHAPES[name](rng)
                writer.writerow(["window_start_s", "rate_rps", "rate_cv"])
                writer.writerows(
                    (f"{s:.0f}", f"{r:.4f}", f"{c:g}")
                    for s, r, c in zip(starts.tolist(), rates.tolist(), cvs.tolist(), strict=True)
                )
        written[name] = path
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m autoscaler.simulate.shapes",
        description="write seeded traces of other traffic shapes for `autoscaler simulate`",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the CSV files")
    parser.add_argument("--seed", type=int, default=0, help="seed (0)")
    parser.add_argument("--shape", action="append", choices=SHAPES, help="only these (all)")
    args = parser.parse_args(argv)
    for name, path in write_shapes(Path(args.out), args.seed, args.shape or SHAPES).items():
        print(f"{name}\t{path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
