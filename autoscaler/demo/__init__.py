"""`autoscaler demo`: the daemon on an embedded default, against the provider simulator, with
synthetic traffic (`traffic.py`) and a terminal view (`view.py`). Sits on top of everything:
nothing else in the package imports it."""
