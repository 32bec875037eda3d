"""The daemon: scheduling, reconcile loop, HTTP endpoints, reload, shutdown, sd_notify, demo."""
