"""What every provider client shares: retried requests, create-idempotent-by-name, wait_ready.

A concrete client (neevcloud.py, netmind.py, nebius.py) implements only its API: `list`,
`scale`, `delete`, spec validation and `_create_once` (ONE create attempt, never retried by
itself); `find` here looks the name up in the list (`answers.pick`) unless the client knows a
shorter way. `create` here makes that attempt safe: it looks the name up first (an existing
deployment is adopted), and after a failed attempt (timeout, dropped connection, 5xx: the
request may have been applied) it looks the name up again before any retry, so no two
deployments ever share a name. Nothing provider-specific lives here.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import anyio
import httpx

from autoscaler.policy.model import ProviderProfile
from autoscaler.providers.answers import mapping, pick
from autoscaler.providers.base import (
    ConflictError,
    DeploymentFailedError,
    DeploymentInfo,
    InferenceRoute,
    InvalidRequestError,
    Listing,
    MalformedAnswerError,
    NotFoundError,
    ProviderError,
    TemporaryError,
)
from autoscaler.providers.http import ProviderHttp
from autoscaler.providers.retry import Backoff, Clock, RetryPolicy, Sleep, call_with_retries

T = TypeVar("T")

POLL_BACKOFF = Backoff(base=1.0, factor=1.5, cap=15.0)
"""wait_ready polls after 1, 1.5, 2.25 ... seconds, at most every 15 s (no jitter needed)."""


MAX_REPLICAS = 100_000
"""A count past it is not a count any provider runs (a runaway number, a timestamp)."""


def integer(value: object) -> int | None:
    return value if type(value) is int else None


def replica_count(
    status: str, raw: object, parse: Callable[[object], int | None] = integer
) -> tuple[int, str]:
    """A replica count as `DeploymentState` takes it (>= 1), and what is wrong with it.

    `parse` reads the provider's value (None: not an integer). A ready deployment's count
    is what the next decision scales from: read as 1 when it was garbage, "5 -> 3" went out
    as a scale-up of "1 -> 3", a scale-down no window or rule allowed. So it is reported
    (`DeploymentInfo.unreadable`), never made up. Other statuses hold, whatever the count."""
    count = parse(raw)
    if count is not None and 1 <= count <= MAX_REPLICAS:
        return count, ""
    if status != "ready":
        return 1, ""
    return 1, f"the provider reports replicas {raw!r:.60}, not a count in 1..{MAX_REPLICAS}"


def decoded(profile_name: str, operation: str, response: httpx.Response) -> Any:
    """The JSON document of a provider's answer; a body that is not JSON is malformed."""
    try:
        return response.json()
    except ValueError as exc:
        raise MalformedAnswerError(
            f"{profile_name}: {operation} answered HTTP {response.status_code} "
            "with a body that is not JSON"
        ) from exc


def created(profile_name: str, response: httpx.Response) -> Mapping[str, Any]:
    """A create's answer: the deployment object. Not JSON, or not an object: malformed (the
    create may have been applied: the retry looks the name up first)."""
    return mapping(f"{profile_name}: create", decoded(profile_name, "create", response))


class BaseProvider:
    """Shared machinery; subclasses set `provider_type` and implement the API calls."""

    provider_type = "base"
    create_sets_replicas = True
    """False when the API's create has no replica field: the client deploys one replica and
    `wait_ready` scales to the requested count once the deployment is ready."""
    rate_limit_per_operation = False
    """True when the provider's 429s limit one operation (not the whole account): the
    Retry-After gate then closes only that operation."""

    def __init__(
        self,
        profile: ProviderProfile,
        http: ProviderHttp,
        *,
        retry: RetryPolicy | None = None,
        poll: Backoff = POLL_BACKOFF,
        sleep: Sleep = anyio.sleep,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
    ):
        self.profile = profile
        self.profile_name = profile.name
        self.http = http
        self.retry = retry or RetryPolicy(
            max_retries=profile.max_retries, deadline=max(60.0, 6 * profile.timeout)
        )
        self.poll = poll
        self.sleep = sleep
        self.clock = clock
        self.rng = rng or random.Random()
        self._pending_replicas: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(profile={self.profile_name!r}, http={self.http!r})"

    async def aclose(self) -> None:
        await self.http.aclose()

    def status(self) -> dict[str, Any]:
        """For `/status`: last error with its time, failures in a row, rate-limit gate."""
        return self.http.status()

    # --- plumbing ---------------------------------------------------------------------------

    async def _retried(self, operation: Callable[[], Awaitable[T]]) -> T:
        return await call_with_retries(
            operation, self.retry, sleep=self.sleep, clock=self.clock, rng=self.rng
        )

    async def _request_json(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """A retried request; the decoded JSON body (None for an empty body)."""

        async def once() -> Any:
            response = await self.http.request(operation, method, path, json=json, params=params)
            if not response.content:
                return None
            return decoded(self.profile_name, operation, response)

        return await self._retried(once)

    # --- to implement -----------------------------------------------------------------------

    async def find(self, name: str) -> DeploymentInfo | None:
        """Looked up in the whole list (an API without a lookup by name)."""
        listing = await self.list()
        return pick(f"{self.profile_name}: find", name, listing, skipped=listing.skipped)

    async def list(self) -> Listing:
        raise NotImplementedError

    async def scale(self, deployment: DeploymentInfo, replicas: int) -> DeploymentInfo:
        raise NotImplementedError

    async def delete(self, deployment: DeploymentInfo) -> None:
        raise NotImplementedError

    def inference_route(self, info: DeploymentInfo) -> InferenceRoute | None:
        raise NotImplementedError

    def adopt_route(
        self, info: DeploymentInfo, base_url: str, model: str | None
    ) -> InferenceRoute | None:
        raise NotImplementedError

    def validate_spec(self, name: str, spec: Mapping[str, Any]) -> None:
        """Raise InvalidRequestError naming what is wrong with a create spec."""
        raise NotImplementedError

    async def _create_once(
        self, name: str, spec: Mapping[str, Any], replicas: int
    ) -> DeploymentInfo:
        """One create request, not retried (the caller resolves lost responses)."""
        raise NotImplementedError

    # --- shared operations --------------------------------------------------------------------

    @staticmethod
    def check_replicas(replicas: int) -> None:
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
            raise InvalidRequestError(
                f"replicas must be an integer >= 1, got {replicas!r} (zero means delete)"
            )

    async def create(self, name: str, spec: Mapping[str, Any], replicas: int) -> DeploymentInfo:
        """Deploy `name`, or adopt the deployment that already has that name."""
        self.check_replicas(replicas)
        self.validate_spec(name, spec)
        existing = await self.find(name)
        if existing is not None:
            return self._adopt(existing, replicas)

        async def resolve_lost_response(error: ProviderError) -> DeploymentInfo | None:
            # The failed attempt may have created it: look before sending another create.
            found = await self.find(name)
            return None if found is None else self._adopt(found, replicas)

        async def attempt() -> DeploymentInfo:
            try:
                return await self._create_once(name, spec, replicas)
            except ConflictError:
                # Someone (maybe our own earlier attempt) holds the name: adopt it.
                found = await self.find(name)
                if found is None:
                    raise
                return self._adopt(found, replicas)

        info = await call_with_retries(
            attempt,
            self.retry,
            sleep=self.sleep,
            clock=self.clock,
            rng=self.rng,
            before_retry=resolve_lost_response,
        )
        if not self.create_sets_replicas and replicas > 1:
            self._pending_replicas[name] = replicas
        return info

    def _adopt(self, existing: DeploymentInfo, replicas: int) -> DeploymentInfo:
        if existing.status == "terminating":
            raise TemporaryError(
                f"{self.profile_name}: deployment {existing.name!r} is still terminating; "
                "it can be created again once it is gone"
            )
        if existing.replicas != replicas:
            self._pending_replicas[existing.name] = replicas
        return existing

    async def wait_ready(self, name: str, timeout: float) -> DeploymentInfo:
        """Poll (with backoff) until ready; then apply a replica count that create could not
        set (see `create_sets_replicas`) and wait for that too."""
        deadline = self.clock() + timeout
        attempt = 0
        last: DeploymentInfo | None = None
        while True:
            try:
                last = await self.find(name)
            except ProviderError as exc:
                if exc.permanent:
                    raise
                # temporary (already retried inside find): keep polling until the deadline
            else:
                if last is None:
                    raise NotFoundError(f"{self.profile_name}: deployment {name!r} is absent")
                if last.status == "failed":
                    self._pending_replicas.pop(name, None)
                    raise DeploymentFailedError(
                        f"{self.profile_name}: deployment {name!r} failed "
                        f"(provider status {last.raw_status!r})"
                    )
                if last.status == "terminating":
                    raise NotFoundError(f"{self.profile_name}: deployment {name!r} is terminating")
                if last.status == "ready":
                    pending = self._pending_replicas.pop(name, None)
                    if pending is None or pending == last.replicas:
                        return last
                    last = await self.scale(last, pending)
                    if last.status == "ready":
                        return last
            remaining = deadline - self.clock()
            if remaining <= 0:
                raise TemporaryError(
                    f"{self.profile_name}: deployment {name!r} not ready after {timeout:g} s"
                    + (f" (status {last.raw_status!r})" if last else "")
                )
            await self.sleep(min(self.poll.ceiling(attempt), remaining))
            attempt += 1
