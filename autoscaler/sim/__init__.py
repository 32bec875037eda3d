"""Provider simulators: ASGI apps that speak each provider API (NeevCloud, NetMind, Nebius).

    from autoscaler.sim import create_app, VirtualClock, Faults
    app = create_app("neevcloud", token="t0k", provision_seconds=5.0,
                     clock=VirtualClock(), faults=Faults(error_rate=0.1))
    sim = app.state.sim          # SimState: deployments, name_collisions, replica_seconds(),
                                 # requests (write log), script(...) / set_faults(...), fail(id)

`create_app(provider, *, token, provision_seconds=5.0, clock=None, faults=None,
scale_seconds=None, terminate_seconds=None, users=None)` returns a Starlette app: use it
in-process with `httpx.ASGITransport(app=app)` or serve it with uvicorn
(`autoscaler sim-provider`, see `autoscaler.sim.cli`). Each app serves the provider's API
(same paths, bodies, status codes, validation, asynchronous lifecycle) plus `/_sim/`
inspection and fault control routes (see `autoscaler.sim.app`). With `clock=VirtualClock()`
nothing happens until the test advances the clock.
"""

from autoscaler.sim.app import PROVIDERS, create_app
from autoscaler.sim.clock import VirtualClock, WallClock
from autoscaler.sim.faults import Faults, ScriptedFault
from autoscaler.sim.state import SimDeployment, SimState

__all__ = [
    "PROVIDERS",
    "Faults",
    "ScriptedFault",
    "SimDeployment",
    "SimState",
    "VirtualClock",
    "WallClock",
    "create_app",
]
