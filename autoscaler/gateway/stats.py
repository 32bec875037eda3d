"""Per-model traffic: the Prometheus metrics and the windowed signals policies scale on.

`Stats` takes `now` (monotonic seconds) as an argument; the edge passes the clock. Windowed
values live in one-second buckets kept for `MAX_WINDOW` seconds: arrivals, the peak of held +
in flight, time to first byte and duration sums, tokens. `aggregate` sums a window into plain
numbers (`Window`), the shape `/signals` serves; `signal_value` turns summed windows (one per
gateway process) into the number a `gateway` source reads, so the in-process and the remote
paths compute it the same way.
Label values are fixed: the configured model names and the outcomes of `hold.OUTCOME_LABELS`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

MAX_WINDOW = 3600  # seconds of one-second buckets kept per model
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)
HOLD_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 900, 1800)


@dataclass(slots=True)
class Window:
    """Sums over a window (or one second's bucket)."""

    arrivals: float = 0.0
    concurrency: float = 0.0  # peak held + in flight
    ttft_sum: float = 0.0
    ttft_count: float = 0.0
    duration_sum: float = 0.0
    duration_count: float = 0.0
    prompt_tokens: float = 0.0
    completion_tokens: float = 0.0
    held: float = 0.0  # now (not windowed)
    in_flight: float = 0.0  # now (not windowed)

    def add(self, other: Window) -> None:
        for f in fields(self):
            if f.name == "concurrency":
                continue
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        self.concurrency = max(self.concurrency, other.concurrency)

    def to_json(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Window:
        names = {f.name for f in fields(cls)}
        return cls(**{k: float(v) for k, v in data.items() if k in names})


def signal_value(windows: Iterable[Window], signal: str, window: float) -> float:
    """One number from windows of several models or gateway processes: counts add up, and so
    do peaks (peaks of separate processes may not coincide: an upper bound, the safe side for
    activation); means are weighted by their counts."""
    ws = list(windows)

    def total(name: str) -> float:
        return sum(getattr(w, name) for w in ws)

    if signal in ("held", "in_flight", "concurrency"):
        return total(signal)
    seconds = max(1.0, min(window, MAX_WINDOW))
    if signal == "arrival_rate":
        return total("arrivals") / seconds
    if signal == "prompt_tokens_rate":
        return total("prompt_tokens") / seconds
    if signal == "completion_tokens_rate":
        return total("completion_tokens") / seconds
    if signal in ("ttft", "duration"):
        count = total(f"{signal}_count")
        return total(f"{signal}_sum") / count if count else 0.0
    raise ValueError(f"unknown gateway signal {signal!r}")


@dataclass(slots=True)
class _Model:
    held: int = 0
    in_flight: int = 0
    buckets: dict[int, Window] = field(default_factory=dict)

    def bucket(self, now: float) -> Window:
        second = int(now)
        b = self.buckets.get(second)
        if b is None:
            b = self.buckets[second] = Window()
            if len(self.buckets) > MAX_WINDOW + 1:
                for old in [s for s in self.buckets if s < second - MAX_WINDOW]:
                    del self.buckets[old]
        return b

    def note_concurrency(self, now: float) -> None:
        b = self.bucket(now)
        b.concurrency = max(b.concurrency, self.held + self.in_flight)


class Stats:
    """The gateway's per-model measurements, exported on its own registry."""

    def __init__(self, models: Iterable[str] = ()) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._requests = Counter(
            "autoscaler_gateway_requests",
            "requests that ended, by outcome (answered, cancelled, refused_<reason>)",
            ["model", "outcome"],
            registry=r,
        )
        self._arrivals = Counter(
            "autoscaler_gateway_arrivals", "requests that arrived", ["model"], registry=r
        )
        self._held = Gauge(
            "autoscaler_gateway_held_requests", "requests held now", ["model"], registry=r
        )
        self._in_flight = Gauge(
            "autoscaler_gateway_in_flight_requests",
            "requests being answered by the deployment now",
            ["model"],
            registry=r,
        )
        self._ttfb = Histogram(
            "autoscaler_gateway_time_to_first_byte_seconds",
            "from arrival to the first response byte sent to the client (holding included)",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._duration = Histogram(
            "autoscaler_gateway_request_duration_seconds",
            "from arrival to the last response byte (holding included)",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._hold = Histogram(
            "autoscaler_gateway_hold_seconds",
            "how long requests were held before release, refusal or cancel",
            ["model"],
            buckets=HOLD_BUCKETS,
            registry=r,
        )
        self._tokens = Counter(
            "autoscaler_gateway_tokens",
            "tokens from the responses' usage (streamed usage included)",
            ["model", "kind"],
            registry=r,
        )
        self._activations = Counter(
            "autoscaler_gateway_activations",
            "activation requests to the daemon, by result (accepted, refused, error)",
            ["model", "result"],
            registry=r,
        )
        self._models: dict[str, _Model] = {}
        for model in models:
            self.model(model)

    def model(self, name: str) -> _Model:
        m = self._models.get(name)
        if m is None:
            m = self._models[name] = _Model()
        return m

    # -- events (now: monotonic seconds) ---------------------------------------------------

    def arrived(self, model: str, now: float) -> None:
        self._arrivals.labels(model).inc()
        self.model(model).bucket(now).arrivals += 1

    def held_changed(self, model: str, delta: int, now: float) -> None:
        m = self.model(model)
        m.held += delta
        self._held.labels(model).set(m.held)
        m.note_concurrency(now)

    def in_flight_changed(self, model: str, delta: int, now: float) -> None:
        m = self.model(model)
        m.in_flight += delta
        self._in_flight.labels(model).set(m.in_flight)
        m.note_concurrency(now)

    def hold_ended(self, model: str, seconds: float) -> None:
        self._hold.labels(model).observe(seconds)

    def first_byte(self, model: str, seconds: float, now: float) -> None:
        self._ttfb.labels(model).observe(seconds)
        b = self.model(model).bucket(now)
        b.ttft_sum += seconds
        b.ttft_count += 1

    def ended(self, model: str, outcome: str, seconds: float | None, now: float) -> None:
        self._requests.labels(model, outcome).inc()
        if seconds is not None:
            self._duration.labels(model).observe(seconds)
            b = self.model(model).bucket(now)
            b.duration_sum += seconds
            b.duration_count += 1

    def tokens(self, model: str, prompt: int, completion: int, now: float) -> None:
        if prompt:
            self._tokens.labels(model, "prompt").inc(prompt)
        if completion:
            self._tokens.labels(model, "completion").inc(completion)
        b = self.model(model).bucket(now)
        b.prompt_tokens += prompt
        b.completion_tokens += completion

    def activation(self, model: str, result: str) -> None:
        self._activations.labels(model, result).inc()

    # -- reading ----------------------------------------------------------------------------

    def aggregate(self, model: str, window: float, now: float) -> Window:
        """The last `window` seconds (the current second included) of one model."""
        m = self._models.get(model)
        out = Window()
        if m is None:
            return out
        first = int(now) - max(0, min(int(window), MAX_WINDOW) - 1)
        peak = float(m.held + m.in_flight)
        for second, b in m.buckets.items():
            if second >= first:
                out.add(b)
        out.concurrency = max(out.concurrency, peak)
        out.held, out.in_flight = float(m.held), float(m.in_flight)
        return out

    def snapshot(self, window: float, now: float) -> dict[str, dict[str, float]]:
        """Every model's window: the JSON `/signals` serves."""
        return {name: self.aggregate(name, window, now).to_json() for name in self._models}

    def models(self) -> list[str]:
        return list(self._models)
