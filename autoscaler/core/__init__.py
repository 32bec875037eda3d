"""The decision core: pure functions of (policy, state, observation, now). No I/O, no clock."""
