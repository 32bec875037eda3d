"""The two document tables the loader validates with and `schema` publishes.

Both are derived from the model dataclasses (`autoscaler.policy.sections`), where every key is
declared once; this module only names the roots.
"""

from __future__ import annotations

from autoscaler.policy.sections.daemon import DAEMON
from autoscaler.policy.sections.policy import POLICY

__all__ = ["DAEMON", "POLICY"]
