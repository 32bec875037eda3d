"""JSON Schema (draft 2020-12) of policy files and of the daemon config.

Generated from the same tables the validator uses (`tables`, derived from the model dataclasses
in `sections`), so both accept the same keys, types, enums and bounds. Cross-field rules
(min <= max, activation names, cron syntax) are only in the validator; the schema is for
editors.
"""

from __future__ import annotations

from typing import Any

from autoscaler.policy.tables import DAEMON, POLICY

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def policy_json_schema() -> dict[str, Any]:
    """The JSON Schema of one policy document."""
    return {
        "$schema": DIALECT,
        "$id": "https://autoscaler.local/schema/policy.json",
        "title": "autoscaler policy",
        **POLICY.schema(),
    }


def daemon_config_json_schema() -> dict[str, Any]:
    """The JSON Schema of the daemon config file (`autoscaler run --config FILE`)."""
    return {
        "$schema": DIALECT,
        "$id": "https://autoscaler.local/schema/daemon-config.json",
        "title": "autoscaler daemon config",
        **DAEMON.schema(),
    }
