"""The explicit registry: `source.type` -> the class that reads it.

Adding a source type means one new module and one line in `BUILDERS`; nothing discovers
plug-ins implicitly. Client libraries are imported only when their source type is built, so
a policy that scrapes Prometheus never imports aio-pika or nats-py.
"""

from __future__ import annotations

import importlib
from typing import Any

from autoscaler.policy.model import SOURCE_TYPES, MetricSource
from autoscaler.sources.base import PermanentSourceError, Source

# type -> (module, class)
BUILDERS: dict[str, tuple[str, str]] = {
    "prometheus": ("autoscaler.sources.prometheus", "PrometheusScrapeSource"),
    "promql": ("autoscaler.sources.promql", "PromQLQuerySource"),
    "redis": ("autoscaler.sources.redis", "RedisQueueSource"),
    "rabbitmq": ("autoscaler.sources.rabbitmq", "RabbitMQQueueSource"),
    "nats": ("autoscaler.sources.nats", "NatsConsumerSource"),
    "http_json": ("autoscaler.sources.http_json", "HttpJsonSourceReader"),
    "gateway": ("autoscaler.sources.gateway", "GatewaySignalSource"),
}
assert set(BUILDERS) == set(SOURCE_TYPES), "every source type in the model needs a builder"


def build_source(spec: MetricSource, *, name: str, **options: Any) -> Source:
    """A ready-to-read source for `spec`; `name` (the metric's name) prefixes its errors.

    Raises PermanentSourceError for a spec that cannot work (unknown type, bad regex, a
    missing parameter). `options` go to the class (tests pass an httpx `transport`)."""
    entry = BUILDERS.get(spec.type)
    if entry is None:
        allowed = ", ".join(BUILDERS)
        raise PermanentSourceError(
            name, f'parameter "type" value "{spec.type}" must be one of [{allowed}]'
        )
    module_name, class_name = entry
    cls = getattr(importlib.import_module(module_name), class_name)
    source: Source = cls(spec, name=name, **options)
    return source
