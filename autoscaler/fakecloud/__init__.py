"""The fake cloud: ASGI apps that speak each provider API (NeevCloud, NetMind, Nebius) and
serve a fake vLLM at every ready deployment, for tests, the demo and `autoscaler sim-provider`.
(Not the capacity simulator: that is `autoscaler.simulate`, which replays request traces.)

    from autoscaler.fakecloud import create_app, VirtualClock, Faults
    app = create_app("neevcloud", token="t0k", provision_seconds=5.0,
                     clock=VirtualClock(), faults=Faults(error_rate=0.1))
    sim = app.state.sim          # SimState: deployments, name_collisions, replica_seconds(),
                                 # requests (write log), script(...) / set_faults(...), fail(id)

`create_app(provider, *, token, provision_seconds=5.0, clock=None, faults=None,
scale_seconds=None, terminate_seconds=None, users=None)` returns a Starlette app: use it
in-process with `httpx.ASGITransport(app=app)` or serve it with uvicorn
(`autoscaler sim-provider`, see `autoscaler.fakecloud.cli`). Each app serves the provider's API
(same paths, bodies, status codes, validation, asynchronous lifecycle) plus `/_sim/`
inspection and fault control routes (see `autoscaler.fakecloud.app`). With `clock=VirtualClock()`
nothing happens until the test advances the clock.
"""

from autoscaler.fakecloud.app import PROVIDERS, create_app
from autoscaler.fakecloud.clock import VirtualClock, WallClock
from autoscaler.fakecloud.faults import Faults, ScriptedFault
from autoscaler.fakecloud.state import SimDeployment, SimState

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
