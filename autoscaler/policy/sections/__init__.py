"""The sections of a policy and of the daemon config: each model dataclass declares its file
keys once (type, bounds, default, description; see `autoscaler.policy.declare`), next to the
cross-field checks that need more than one key. `autoscaler.policy.model` re-exports the classes.
"""
