"""The daemon (`autoscaler run`). Where to start reading:

- `runner.py`: one policy's evaluation, one pass: observe -> decide -> act; `evaluation.py`
  holds the values each step hands the next, `record.py` writes the result down, `actions.py`
  is the write-ahead intent protocol every provider call goes through, `reconcile.py` finishes
  what a crash left open, `reads.py` shares source reads and provider lists between policies.
- `daemon.py`: the composition of the daemon's parts, the order they start and stop in:
  `connections.py` (store, providers, sources, history writer), `lifecycle.py` (started,
  stopping, work in flight), `policyset.py` (runners and their scheduled jobs),
  `leadership.py` (who may act), `admin.py` (pause, resume, override, activate, history);
  around them `apply.py` and `reload.py` (a new config), `shutdown.py`, `scheduling.py`,
  `health.py`.
- The edges: `http.py` (status, metrics, admin API), `metrics.py`, `logs.py`, `notify.py`
  (sd_notify), `gateway_wiring.py`, `cli_run.py` (the command).
"""
