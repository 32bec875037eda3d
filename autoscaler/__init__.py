"""autoscaler: an autoscaling controller daemon for dedicated LLM model deployments.

Layers, one direction only: policy (data) -> core (pure decisions) <- sources / providers /
store (I/O edges) <- runtime (the daemon) / simulate / cli. `core` imports no I/O layer.
"""

__version__ = "0.1.0"
