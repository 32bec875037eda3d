"""Provider simulators: ASGI apps that speak each provider API (NeevCloud, NetMind, Nebius)."""
