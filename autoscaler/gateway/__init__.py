"""The OpenAI-compatible gateway: a front door for the dedicated deployments that holds
requests through scale from zero and measures the traffic policies scale on.

Modules, one concern each:
- `hold`: the hold queue, a pure state machine (no clock, no I/O): arrive, ready, timeout,
  disconnect, overflow; every request ends exactly once.
- `routes`: model -> policy -> the deployment's live inference route (or that it failed).
- `gate`: one model's state: its queue, held requests, what lookups of its deployment said.
- `auth`: bearer API keys, compared in constant time.
- `stats`: per-model counters, gauges and windowed signals; the Prometheus exposition.
- `upstream`: the HTTP client to the deployments; hop-by-hop headers; the OpenAI error shape.
- `activation`: asking the daemon (in-process or its admin API) to evaluate a policy now.
- `service`: `Gateway`, the edge that joins them; `app`: the ASGI app; `signals`: what a
  `gateway` metric source reads.
"""
