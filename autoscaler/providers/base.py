"""The one interface every provider client implements, and the typed error tree.

The daemon acts on deployments only through `Provider`. Identity is the deployment *name*:
a create is idempotent by name (a lost response is resolved by looking the name up before any
retry), so no caller can ever make two deployments with one name.
Errors from httpx are translated at the edge (`raise ProviderTemporaryError(...) from exc`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from autoscaler.core.status import DeploymentState, Status

# The name this module used before the vocabulary moved to `autoscaler.core.status`.
NormalizedStatus = Status


@dataclass(frozen=True, slots=True)
class DeploymentInfo:
    """A deployment as the provider reports it: its identity, how to reach and recreate it,
    and its `state`, the shared `DeploymentState` value the core reads as is (the provider's
    own status word translated into the `Status` vocabulary at the edge, each client's
    `FROM_PROVIDER` table; the word itself kept in `raw_status` for messages)."""

    id: str
    name: str
    state: DeploymentState  # replicas: the count scaled to (target), >= 1 while it exists
    endpoint_url: str | None = None  # only when ready
    spec: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """Everything `Provider.create` needs to deploy it again with the same name (recreate)."""
    raw_status: str = ""  # the provider's own status word, for messages
    served_model: str | None = None
    """The model name inference requests must carry, when the provider names one: NeevCloud's
    `model_id`, a Nebius-style `routing_key`. None: the deployment serves whatever it serves."""
    unreadable: str = ""
    """What the answer got wrong that a decision needs (a ready deployment's replica count
    missing or not a count), "" when nothing: the runner treats it as a failed lookup."""

    @property
    def status(self) -> Status:
        return self.state.status

    @property
    def replicas(self) -> int:
        return self.state.replicas

    @property
    def ready_replicas(self) -> int | None:
        return self.state.ready_replicas


class Listing(list[DeploymentInfo]):
    """A list answer read (`Provider.list`): the deployments it holds, and in `skipped` the
    items that name a deployment but cannot be read as one (name -> what is wrong), left out
    so that someone else's broken deployment does not fail every lookup. A lookup of a
    skipped name fails (`answers.pick`); an item without a readable name fails the list."""

    def __init__(
        self, deployments: Iterable[DeploymentInfo] = (), skipped: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(deployments)
        self.skipped: dict[str, str] = dict(skipped or {})


@dataclass(frozen=True, slots=True)
class InferenceRoute:
    """Where and how to send OpenAI-compatible requests for one ready deployment.

    Built by `Provider.inference_route` with the provider's inference credential from the daemon
    config (`providers.NAME.inference.token`), never a client's. `headers` hold that credential,
    so they never appear in `repr`.
    """

    base_url: str  # OpenAI-compatible base: append /chat/completions, /models ...
    headers: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({}), repr=False
    )  # the provider's inference credential (Authorization) and any routing header
    model: str | None = None  # the model name to send upstream; None keeps the client's


@dataclass(frozen=True, slots=True)
class SeenRoute:
    """Where a deployment served when a client saw it ready, without the credential: what a
    daemon tells a separate gateway (`GET /policies/{name}/route`) and saves with a policy's
    state, so that a client that never saw that deployment ready can adopt it while it scales
    (`Provider.adopt_route`, with that client's own credential)."""

    deployment_id: str
    deployment_name: str
    base_url: str
    model: str | None

    @classmethod
    def of(cls, info: DeploymentInfo, route: InferenceRoute) -> SeenRoute:
        return cls(info.id, info.name, route.base_url, route.model)

    def to_json(self) -> dict[str, Any]:
        return {
            "deployment": {"id": self.deployment_id, "name": self.deployment_name},
            "base_url": self.base_url,
            "model": self.model,
        }

    @classmethod
    def from_json(cls, body: object) -> SeenRoute | None:
        """From `to_json`'s shape, or None when `body` is not that shape."""
        if not isinstance(body, Mapping) or not isinstance(body.get("deployment"), Mapping):
            return None
        deployment, base, model = body["deployment"], body.get("base_url"), body.get("model")
        ident, name = deployment.get("id"), deployment.get("name")
        if not (isinstance(ident, str) and ident and isinstance(name, str)):
            return None
        if not (isinstance(base, str) and base.startswith(("http://", "https://"))):
            return None
        if model is not None and not isinstance(model, str):
            return None
        return cls(ident, name, base, model)


class ProviderError(Exception):
    """Base of the provider error tree. `permanent` errors must not be retried."""

    permanent = False

    def __init__(self, message: str, *, status_code: int | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code  # the provider's own error code, when it sent one


class NotFoundError(ProviderError):
    permanent = True


class ConflictError(ProviderError):
    """E.g. a duplicate name, or an operation the deployment's current state refuses."""

    permanent = True


class InvalidRequestError(ProviderError):
    permanent = True


class UnauthorizedError(ProviderError):
    permanent = True


class RateLimitedError(ProviderError):
    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any):
        super().__init__(message, **kw)
        self.retry_after = retry_after


class TemporaryError(ProviderError):
    """5xx, timeouts, connection errors: retry with backoff."""


class MalformedAnswerError(TemporaryError):
    """A 2xx answer that is not what the API says (`providers/answers.py`): the message names
    what was wrong. Temporary: the lookup fails, nothing is decided on it, the next asks again."""


class DeploymentFailedError(ProviderError):
    """`wait_ready` saw the deployment turn `failed` (the provider's own status word is in the
    message). Permanent for this deployment: delete and recreate, or report."""

    permanent = True


class Provider(Protocol):
    """A client for one provider account/project. Implementations hold an httpx.AsyncClient."""

    profile_name: str

    async def find(self, name: str) -> DeploymentInfo | None:
        """The deployment with this name, or None when absent."""
        ...

    async def list(self) -> Listing:
        """Every deployment of the account; items named but unreadable are `skipped`."""
        ...

    async def scale(self, deployment: DeploymentInfo, replicas: int) -> DeploymentInfo:
        """Set the replica count (>= 1). Zero is `delete`."""
        ...

    async def delete(self, deployment: DeploymentInfo) -> None:
        """Delete it. Deleting one that is already gone is not an error."""
        ...

    async def create(self, name: str, spec: Mapping[str, Any], replicas: int) -> DeploymentInfo:
        """Deploy `name` from `spec`; adopt an existing deployment of that name instead of
        creating a second one."""
        ...

    async def wait_ready(self, name: str, timeout: float) -> DeploymentInfo:
        """Poll until `ready` (returns it), `failed` or absent (raises), or timeout (raises
        TemporaryError)."""
        ...

    def validate_spec(self, name: str, spec: Mapping[str, Any]) -> None:
        """Raise InvalidRequestError naming what is wrong with a create spec (no request)."""
        ...

    def inference_route(self, info: DeploymentInfo) -> InferenceRoute | None:
        """How to reach `info`'s OpenAI-compatible endpoint, or None when it is not routable
        (not ready, no endpoint). Pure: no request is made."""
        ...

    def adopt_route(
        self, info: DeploymentInfo, base_url: str, model: str | None
    ) -> InferenceRoute | None:
        """Take a route another process saw for `info` (a daemon that saw it ready, asked by
        a separate gateway that never did) while `info` is `initializing` (scaling): built
        with this client's inference credential and kept as `info`'s last route, so
        `inference_route` returns it until the deployment is ready again, fails or goes.
        None for any other status. Pure: no request is made."""
        ...

    async def aclose(self) -> None: ...
