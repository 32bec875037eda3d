"""How long a request holds a replica slot, and the lower bound on replica-seconds.

Service time is `input/prefill_tps + output/decode_tps` by default, or a model calibrated on
`splitwise_perf_model.csv` (measured prompt time by prompt size, per-token time by batch size;
`splitwise:MODEL:HARDWARE[:TP]`), with the batch taken as the replica's max concurrency (a busy
replica). The **bound** is the integral of ceil(in_flight(t) / max_concurrency) when every
request starts at its arrival: no policy that never queues can use fewer replica-seconds.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass

import numpy as np


class ServiceModelError(Exception):
    """A service model option or file that cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class ServiceModel:
    prefill_tps: float = 9000.0  # llama2-70b on 4 x H100 reads ~9k prompt tokens/s (Splitwise)
    decode_tps: float = 30.0  # per request, about 33 ms per output token at batch 16-32
    # calibrated alternative: (prompt sizes, prompt seconds) and seconds per output token
    prompt_curve: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    token_s: float | None = None
    label: str = "tokens"

    def service_s(self, input_tokens: np.ndarray, output_tokens: np.ndarray) -> np.ndarray:
        inputs = input_tokens.astype(np.float64)
        outputs = output_tokens.astype(np.float64)
        if self.prompt_curve is not None and self.token_s is not None:
            sizes, seconds = (np.asarray(v) for v in self.prompt_curve)
            prompt = np.interp(inputs, sizes, seconds)
            beyond = inputs > sizes[-1]  # extrapolate along the last segment's slope
            if beyond.any():
                slope = (seconds[-1] - seconds[-2]) / (sizes[-1] - sizes[-2])
                prompt[beyond] = seconds[-1] + slope * (inputs[beyond] - sizes[-1])
            return np.asarray(prompt + outputs * self.token_s)
        return np.asarray(inputs / self.prefill_tps + outputs / self.decode_tps)


def splitwise_model(spec: str, path: str, max_concurrency: int) -> ServiceModel:
    """`splitwise:MODEL:HARDWARE[:TP]` from the Splitwise perf model CSV at `path`."""
    parts = spec.split(":")
    if len(parts) not in (3, 4) or parts[0] != "splitwise":
        raise ServiceModelError(
            f"--service-model {spec!r}: expected splitwise:MODEL:HARDWARE[:TP], "
            "e.g. splitwise:llama2-70b:h100-80gb:4"
        )
    model, hardware = parts[1], parts[2]
    tp = parts[3] if len(parts) == 4 else None
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise ServiceModelError(f"{path}: cannot read the Splitwise perf model ({exc})") from None
    chosen = [
        r
        for r in rows
        if r.get("model") == model
        and r.get("hardware") == hardware
        and (tp is None or r.get("tensor_parallel") == tp)
    ]
    if not chosen:
        combos = sorted({f"{r['model']}:{r['hardware']}:{r['tensor_parallel']}" for r in rows})
        raise ServiceModelError(
            f"--service-model {spec!r}: no rows in {path}; available: {', '.join(combos)}"
        )
    if tp is None:  # the smallest tensor parallelism measured: the cheapest replica
        tp = min((r["tensor_parallel"] for r in chosen), key=int)
        chosen = [r for r in chosen if r["tensor_parallel"] == tp]
    prompt: dict[float, list[float]] = {}
    token: dict[float, list[float]] = {}
    for r in chosen:
        if r["batch_size"] == "1":
            prompt.setdefault(float(r["prompt_size"]), []).append(float(r["prompt_time"]) / 1e3)
        token.setdefault(float(r["batch_size"]), []).append(float(r["token_time"]) / 1e3)
    sizes = tuple(sorted(prompt))
    seconds = tuple(float(np.median(prompt[s])) for s in sizes)
    batches = sorted(token)
    per_token = float(
        np.interp(max_concurrency, batches, [float(np.median(token[b])) for b in batches])
    )
    if len(sizes) < 2:
        raise ServiceModelError(f"--service-model {spec!r}: too few prompt sizes in {path}")
    return ServiceModel(
        prompt_curve=(sizes, seconds),
        token_s=per_token,
        label=f"{spec} (tp {tp}, {per_token * 1e3:.1f} ms/token at batch {max_concurrency})",
    )


@dataclass(frozen=True, slots=True)
class Bound:
    replica_seconds: float
    peak_in_flight: int
    opening_in_flight: int  # peak in flight over the opening window (sizes the warm start)


def request_bound(
    arrival_s: np.ndarray, service_s: np.ndarray, max_concurrency: int, opening_s: float
) -> Bound:
    """Exact bound for a request trace: in-flight is a step function of starts and ends."""
    if arrival_s.size == 0:
        return Bound(0.0, 0, 0)
    times = np.concatenate([arrival_s, arrival_s + service_s])
    deltas = np.concatenate([np.ones(arrival_s.size, np.int64), -np.ones(arrival_s.size, np.int64)])
    order = np.lexsort((deltas, times))  # at equal times, ends before starts: a slot is reused
    times, deltas = times[order], deltas[order]
    in_flight = np.cumsum(deltas)
    replicas = -(-in_flight[:-1] // max_concurrency)
    seconds = float(np.sum(replicas * np.diff(times)))
    opening = in_flight[times <= opening_s]
    return Bound(seconds, int(in_flight.max()), int(opening.max()) if opening.size else 0)


def ceil_div(value: float, by: int) -> int:
    return max(math.ceil(value / by - 1e-9), 0)
