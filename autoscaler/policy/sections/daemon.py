"""The daemon config (`autoscaler run --config FILE`): providers, state, http, log, gateway.

Mirrors `shared/design/daemon-config-example.yaml`. Each key is declared once on its dataclass
field (`declare.spec`); `DAEMON` is derived from the classes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from autoscaler.policy.choices import Either
from autoscaler.policy.declare import obj, spec
from autoscaler.policy.errors import quote
from autoscaler.policy.fields import Here, ListOf, MapOf
from autoscaler.policy.scalars import (
    PATH,
    PATH_TEXT,
    Bool,
    Duration,
    Enum,
    Int,
    Secret,
    Str,
    Url,
)
from autoscaler.policy.sections.policy import LABEL_PATTERN, LABEL_TEXT, MIN_INTERVAL
from autoscaler.policy.sections.sources import HTTP
from autoscaler.policy.values import SecretRef


def _secret(description: str) -> dict[str, Any]:
    return spec(Secret(description))


def _duration(description: str) -> dict[str, Any]:
    return spec(Duration(description, positive=True))


def _listen(text: str) -> None:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f'must be HOST:PORT like "127.0.0.1:9464", got {quote(text)}')


@dataclass(frozen=True, slots=True)
class LoginSpec:
    """Console credentials exchanged for an access token (NeevCloud tenant login)."""

    url: str = field(metadata=spec(Url("login endpoint", HTTP)))
    username: SecretRef | str = field(
        metadata=spec(
            Either(
                Str("user name"),
                Secret("user name from env or file"),
                "a user name or {env: NAME} / {file: PATH}",
            )
        )
    )
    password: SecretRef = field(metadata=spec(Secret("password")))


LOGIN = obj(LoginSpec, "console credentials exchanged for an access token; refreshed on 401")


@dataclass(frozen=True, slots=True)
class InferenceProfile:
    """How the gateway reaches a provider's OpenAI-compatible inference endpoints."""

    # the inference key (NeevCloud: sk-nc-*, not the API token)
    token: SecretRef | None = field(
        default=None,
        metadata=_secret(
            "inference key sent upstream by the gateway (NeevCloud: an sk-nc-* key, not the "
            "API token; NetMind and Nebius-style default to the profile's token)"
        ),
    )
    # Nebius-style shared base; elsewhere when none is reported
    base_url: str | None = field(
        default=None,
        metadata=spec(
            Url(
                "OpenAI-compatible base ending in /v1: the shared base of Nebius-style endpoints "
                "(default: the API base_url + /v1); elsewhere used only when a ready deployment "
                "reports no endpoint",
                HTTP,
            )
        ),
    )


INFERENCE = obj(
    InferenceProfile,
    "how the gateway reaches this provider's OpenAI-compatible inference endpoints",
)


def _api_path_id(what: str) -> Str:
    """A NeevCloud id that goes into the API's paths as it is: URL-safe characters only (the
    API's ids read like `org-abc123`), never a dot segment, so it cannot point elsewhere."""
    return Str(
        f"NeevCloud {what} id (as in its API paths, e.g. org-abc123)",
        pattern=r"(?!\.{1,2}$)[A-Za-z0-9._~-]+",
        pattern_text="an id of letters, digits, '-', '_', '.' or '~' (it goes into API paths)",
    )


@dataclass(frozen=True, slots=True)
class ProviderProfile:
    name: str  # the key under `providers:` (not a key inside the profile)
    type: Literal["neevcloud", "netmind", "nebius"] = field(
        metadata=spec(Enum(("neevcloud", "netmind", "nebius"), "provider API"))
    )
    base_url: str = field(metadata=spec(Url("API base URL", HTTP)))
    org_id: str | None = field(default=None, metadata=spec(_api_path_id("organisation")))
    project_id: str | None = field(default=None, metadata=spec(_api_path_id("project")))
    token: SecretRef | None = field(default=None, metadata=_secret("API token"))
    login: LoginSpec | None = field(default=None, metadata=spec(LOGIN))
    timeout: float = field(default=10.0, metadata=_duration("bound on each API call"))
    max_retries: int = field(  # retry budget per call for temporary errors
        default=4, metadata=spec(Int("retry budget per call for temporary errors", ge=0, le=100))
    )
    # bound on waiting for `ready` after create
    wait_ready_timeout: float = field(
        default=1800.0, metadata=_duration("bound on waiting for ready after create")
    )
    # the gateway's way to the deployments
    inference: InferenceProfile | None = field(default=None, metadata=spec(INFERENCE))


def _check_login(here: Here) -> None:
    if here.ok("type", "login") and here.values.get("login") and here["type"] != "neevcloud":
        here.error(
            ["login"],
            f'login is only supported for type "neevcloud", not {quote(here["type"])}; use token',
        )


def _check_client_needs(here: Here) -> None:
    """What `providers.registry.build_provider` needs to make a client: a credential, and
    NeevCloud's organisation and project (its API paths name them)."""
    if here.values.get("token") is None and here.values.get("login") is None:
        here.error([], "needs token or login (the API credential)")
    if here.ok("type") and here["type"] == "neevcloud":
        missing = [k for k in ("org_id", "project_id") if here.values.get(k) is None]
        if missing:
            here.error(
                ["type"], f"neevcloud needs {' and '.join(missing)} (its API paths name them)"
            )


PROVIDER = obj(
    ProviderProfile,
    "a provider account that policies name in deployment.provider",
    checks=[_check_login, _check_client_needs],
)


def _state_url(text: str) -> None:
    from autoscaler.store.url import parse_store_url

    try:
        parse_store_url(text)
    except ValueError as exc:  # its message names the URL (password redacted) and the forms
        raise ValueError(str(exc).removeprefix("state.url ")) from None


@dataclass(frozen=True, slots=True)
class StateConfig:
    url: str = field(
        default="sqlite:///var/lib/autoscaler/state.db",
        metadata=spec(
            Str(
                "sqlite:///PATH (embedded) or postgresql://user@host/db (several daemons)",
                pattern=r"(sqlite|postgresql|postgres)://.*",
                pattern_text="a sqlite:// or postgresql:// URL",
                check=_state_url,
            )
        ),
    )
    lease_ttl: float = field(
        default=15.0, metadata=_duration("leader lease (PostgreSQL); renewed every ttl/3")
    )


STATE = obj(StateConfig, "durable state and write-ahead intents")


@dataclass(frozen=True, slots=True)
class HttpConfig:
    listen: str = field(
        default="127.0.0.1:9464",
        metadata=spec(
            Str("HOST:PORT for /metrics /healthz /readyz /status and admin", check=_listen)
        ),
    )
    admin_token: SecretRef | None = field(
        default=None, metadata=_secret("admin endpoints refuse requests without it")
    )
    # seconds a request head may take (slow clients are cut)
    header_timeout: float = field(
        default=10.0, metadata=_duration("bound on receiving a request head (slow clients are cut)")
    )
    max_connections: int = field(  # open connections at once; past it: 503 and close
        default=256,
        metadata=spec(Int("open connections at once; past it new ones get 503", ge=1, le=100_000)),
    )


HTTP_CONFIG = obj(HttpConfig, "the daemon's HTTP endpoint")


@dataclass(frozen=True, slots=True)
class LogConfig:
    format: Literal["json", "console", "auto"] = field(
        default="auto",
        metadata=spec(Enum(("json", "console", "auto"), "auto: console on a TTY, else json")),
    )
    level: Literal["debug", "info", "warning", "error"] = field(
        default="info",
        metadata=spec(Enum(("debug", "info", "warning", "error"), "lowest level logged")),
    )


LOG = obj(LogConfig, "logging")


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """`gateway:` in the daemon config: the OpenAI-compatible front door (`autoscaler.gateway`),
    inside `autoscaler run` or as its own process (`autoscaler gateway --config FILE`)."""

    listen: str = field(  # loopback by default: exposing it is a decision
        default="127.0.0.1:8080",
        metadata=spec(Str("HOST:PORT the OpenAI-compatible API listens on", check=_listen)),
    )
    api_keys: tuple[SecretRef, ...] = field(  # bearer keys clients present
        default=(),
        metadata=spec(
            ListOf(
                Secret("a bearer key clients present ({env: NAME} or {file: NAME})"),
                "the API keys clients authenticate with",
                min_items=1,
            ),
            required=True,
        ),
    )
    max_held: int = field(  # per model; past it a request is refused (503) at once
        default=100, metadata=spec(Int("most requests held per model (policy default)", ge=0))
    )
    # seconds; Nebius-style start-up takes 10-15 min: raise it there
    max_hold: float = field(
        default=600.0, metadata=_duration("longest a request is held per model (policy default)")
    )
    max_body: int = field(  # bytes of a request body (chat histories fit)
        default=4 * 1024 * 1024,
        metadata=spec(Int("largest request body in bytes", ge=1024, le=1024**3)),
    )
    # seconds a response may take (long generations)
    upstream_timeout: float = field(
        default=600.0, metadata=_duration("longest a response from the deployment may take")
    )
    max_connections: int = field(  # open client connections at once; past it: 503 and close
        default=1024,
        metadata=spec(
            Int("open client connections at once; past it new ones get 503", ge=1, le=1_000_000)
        ),
    )
    # seconds a request head may take (slow clients are cut)
    header_timeout: float = field(
        default=10.0,
        metadata=_duration("bound on receiving a request head (slow clients are cut)"),
    )
    poll_interval: float = field(
        default=1.0, metadata=_duration("how often a held model's deployment is looked up")
    )
    daemons: tuple[str, ...] = field(  # daemon base URLs (separate process): activation there
        default=(),
        metadata=spec(
            ListOf(
                Url("a daemon's HTTP base URL, e.g. http://127.0.0.1:9464", HTTP),
                "daemons to ask for activation (a separate gateway process); the leader acts",
            )
        ),
    )
    admin_token: SecretRef | None = field(  # for `daemons`; default: http.admin_token
        default=None, metadata=_secret("the daemons' admin token (default: http.admin_token)")
    )


GATEWAY_CONFIG = obj(
    GatewayConfig, "the OpenAI-compatible gateway that holds requests through scale from zero"
)


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    # a file, a folder (every *.yaml / *.yml) or a glob; relative to the config
    policies: str = field(
        metadata=spec(
            Str(
                "a file, a folder (every *.yaml / *.yml) or a glob; relative to this file",
                pattern=PATH,
                pattern_text=PATH_TEXT,
            )
        )
    )
    providers: Mapping[str, ProviderProfile] = field(
        metadata=spec(
            MapOf(
                PROVIDER,
                "provider profiles by name",
                min_items=1,
                key=Str(pattern=LABEL_PATTERN, pattern_text=LABEL_TEXT, max_len=63),
            )
        )
    )
    state: StateConfig = field(default_factory=StateConfig, metadata=spec(STATE))
    http: HttpConfig = field(default_factory=HttpConfig, metadata=spec(HTTP_CONFIG))
    log: LogConfig = field(default_factory=LogConfig, metadata=spec(LOG))
    zero_poll_interval: float = field(  # each poll reads sources (and may ask the provider)
        default=2.0,
        metadata=spec(
            Duration(
                "how often activation metrics are read while at zero",
                positive=True,
                at_least=MIN_INTERVAL,
            )
        ),
    )
    dry_run: bool = field(
        default=False, metadata=spec(Bool("decide and report, never call a provider"))
    )
    shutdown_timeout: float = field(
        default=30.0, metadata=_duration("deadline for in-flight actions on SIGTERM")
    )
    source_file: str | None = None  # where it was loaded from (not a file key)
    # the gateway runs in the daemon when set
    gateway: GatewayConfig | None = field(default=None, metadata=spec(GATEWAY_CONFIG))


def _same_address(a: str, b: str) -> bool:
    """Whether two HOST:PORT listen addresses would bind the same port (a wildcard host
    takes the port on every address)."""
    host_a, _, port_a = a.rpartition(":")
    host_b, _, port_b = b.rpartition(":")
    wildcard = {"0.0.0.0", "[::]", "*"}
    return port_a == port_b and (host_a == host_b or bool({host_a, host_b} & wildcard))


def _check_listen(here: Here) -> None:
    """The gateway and the daemon's HTTP endpoint cannot share a port: the second bind fails
    once the daemon has started."""
    if not here.ok("http", "gateway") or here["gateway"] is None:
        return
    listen, taken = here["gateway"].listen, here["http"].listen
    if _same_address(listen, taken):
        here.error(
            ["gateway", "listen"],
            f"{quote(listen)} is the port http.listen ({quote(taken)}) uses; give the "
            "gateway a port of its own",
        )


DAEMON = obj(
    DaemonConfig,
    "autoscaler daemon configuration (autoscaler run --config FILE)",
    checks=[_check_listen],
)
