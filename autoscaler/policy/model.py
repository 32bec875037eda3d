"""Typed, immutable policy model: what a validated policy file becomes.

Frozen, slotted dataclasses mirroring `shared/design/policy-example.yaml` field for field (those
names are a contract). Each class lives in its section module (`autoscaler.policy.sections`),
where every file key is declared once on its field: type and default (the dataclass), bounds
and description (the field's `declare.spec` metadata); the validator and the JSON Schema are
derived from them. This module is the one import path for the classes; nothing here does I/O.
Durations are float seconds. Mappings are read-only (`MappingProxyType`).

The decision core reads these objects; sources and providers read their own parts
(`MetricSource` specs, `Deployment.create`).
"""

from __future__ import annotations

from autoscaler.policy.sections.behavior import (
    Activation,
    Behavior,
    Cost,
    OnDeploymentFailure,
    OnMetricFailure,
    Panic,
    RatePolicy,
    RatePolicyType,
    ScaleToZero,
    ScalingRules,
    Schedule,
    Select,
    Tolerance,
    default_scale_down,
    default_scale_up,
)
from autoscaler.policy.sections.daemon import (
    DaemonConfig,
    GatewayConfig,
    HttpConfig,
    InferenceProfile,
    LogConfig,
    LoginSpec,
    ProviderProfile,
    StateConfig,
)
from autoscaler.policy.sections.objective import (
    REQUIRED_SIGNALS,
    SIGNAL_KEYS,
    Objective,
    ObjectiveSignals,
    PolicyGateway,
)
from autoscaler.policy.sections.policy import (
    Deployment,
    Metric,
    Policy,
    Replicas,
    Target,
    TargetType,
)
from autoscaler.policy.sections.sources import (
    GATEWAY_SIGNALS,
    SOURCE_TYPES,
    Aggregate,
    BasicAuth,
    GatewaySource,
    HttpJsonSource,
    MetricSource,
    NatsSource,
    OnEmpty,
    PrometheusSource,
    PromQLSource,
    RabbitMQSource,
    RedisSource,
)
from autoscaler.policy.values import EMPTY, MiB, SecretRef

__all__ = [
    "EMPTY",
    "GATEWAY_SIGNALS",
    "REQUIRED_SIGNALS",
    "SIGNAL_KEYS",
    "SOURCE_TYPES",
    "Activation",
    "Aggregate",
    "BasicAuth",
    "Behavior",
    "Cost",
    "DaemonConfig",
    "Deployment",
    "GatewayConfig",
    "GatewaySource",
    "HttpConfig",
    "HttpJsonSource",
    "InferenceProfile",
    "LogConfig",
    "LoginSpec",
    "Metric",
    "MetricSource",
    "MiB",
    "NatsSource",
    "Objective",
    "ObjectiveSignals",
    "OnDeploymentFailure",
    "OnEmpty",
    "OnMetricFailure",
    "Panic",
    "Policy",
    "PolicyGateway",
    "PromQLSource",
    "PrometheusSource",
    "ProviderProfile",
    "RabbitMQSource",
    "RatePolicy",
    "RatePolicyType",
    "RedisSource",
    "Replicas",
    "ScaleToZero",
    "ScalingRules",
    "Schedule",
    "SecretRef",
    "Select",
    "StateConfig",
    "Target",
    "TargetType",
    "Tolerance",
    "default_scale_down",
    "default_scale_up",
]
