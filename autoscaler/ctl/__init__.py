"""`autoscaler status | pause | resume | override | cancel-override | history`: talk to running
daemons over their HTTP API (`client.py` finds them and their admin token; one module per
command; `table.py` formats /status as rows, shared with the demo's view)."""
