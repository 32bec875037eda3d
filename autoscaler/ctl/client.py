"""Where the daemons are and how to reach them: URLs, the admin token, leader following.

URLs come from `--url` (may repeat), else `AUTOSCALER_URL` (comma-separated), else the
config's `http.listen` (`--config FILE` or `AUTOSCALER_CONFIG`), else the default listen
address. The admin token comes from `--token-file`, else `AUTOSCALER_ADMIN_TOKEN`, else the
config's `http.admin_token` reference (resolved like the daemon does).

Several daemons (PostgreSQL): only the leader takes admin changes; a standby answers 409.
`admin()` tries each URL in turn and stops at the first that is not a standby, so
`--url http://a:9464 --url http://b:9464` reaches the leader wherever it runs.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:9464"
TIMEOUT = 10.0


class CtlError(Exception):
    """What to print (one line per daemon tried) before exiting 1."""


def add_target_arguments(parser: argparse.ArgumentParser, *, admin: bool = False) -> None:
    parser.add_argument(
        "--url",
        action="append",
        metavar="URL",
        help="a daemon's HTTP address; repeat for several daemons (default: $AUTOSCALER_URL, "
        f"else the config's http.listen, else {DEFAULT_URL})",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="daemon config to take the URL (and admin token) from (default: $AUTOSCALER_CONFIG)",
    )
    if admin:
        parser.add_argument(
            "--token-file",
            metavar="FILE",
            help="file holding the admin bearer token (default: $AUTOSCALER_ADMIN_TOKEN, else "
            "the config's http.admin_token)",
        )


def listen_url(listen: str) -> str:
    """`http.listen` -> a URL to connect to (a wildcard address means this host)."""
    from autoscaler.runtime.http import parse_listen

    host, port = parse_listen(listen)
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


@dataclass
class Target:
    urls: list[str]
    token: str | None = None
    config: Any = field(default=None, repr=False)


def _config(args: argparse.Namespace) -> Any:
    path = getattr(args, "config", None) or os.environ.get("AUTOSCALER_CONFIG")
    if not path:
        return None
    from autoscaler.policy.errors import ValidationFailed
    from autoscaler.policy.loader import load_daemon_config

    try:
        return load_daemon_config(path)
    except ValidationFailed as exc:
        raise CtlError("\n".join(str(e) for e in exc.errors)) from None


def resolve_target(args: argparse.Namespace, *, admin: bool = False) -> Target:
    config = _config(args)
    urls = list(args.url or [])
    if not urls and os.environ.get("AUTOSCALER_URL"):
        urls = [u.strip() for u in os.environ["AUTOSCALER_URL"].split(",") if u.strip()]
    if not urls and config is not None:
        urls = [listen_url(config.http.listen)]
    urls = [u.rstrip("/") for u in urls] or [DEFAULT_URL]
    token = _token(args, config) if admin else None
    return Target(urls, token, config)


def _token(args: argparse.Namespace, config: Any) -> str | None:
    path = getattr(args, "token_file", None)
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read().strip()
        except OSError as exc:
            raise CtlError(f"--token-file {path}: cannot read: {exc.strerror or exc}") from None
    if os.environ.get("AUTOSCALER_ADMIN_TOKEN"):
        return os.environ["AUTOSCALER_ADMIN_TOKEN"].strip()
    if config is not None and config.http.admin_token is not None:
        from autoscaler.secrets import SecretError, resolve

        try:
            secret = resolve(config.http.admin_token)
        except SecretError as exc:
            raise CtlError(f"{config.source_file}: http.admin_token: {exc}") from None
        return secret.reveal() if secret is not None else None
    return None


def _describe(url: str, response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
    except ValueError:
        error = None
    return f"{url}: HTTP {response.status_code}: {error or response.text.strip()[:200]}"


def _answer(url: str, response: httpx.Response) -> dict[str, Any]:
    """A daemon's 200 answer: a JSON object; CtlError when something else answered."""
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise CtlError(
            f"{url}: HTTP 200 but not a JSON object ({response.text.strip()[:80]!r}): "
            "is this an autoscaler daemon's address?"
        )
    return answer


def get_json(url: str, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
    """GET one daemon's JSON object; CtlError naming the URL when it cannot be had."""
    try:
        response = httpx.get(url + path, params=params, timeout=TIMEOUT)
    except httpx.HTTPError as exc:
        raise CtlError(f"{url}: cannot reach the daemon: {exc}") from None
    if response.status_code != 200:
        raise CtlError(_describe(url, response))
    return _answer(url, response)


def get_any(target: Target, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
    """The first daemon that answers (any daemon can read the shared store)."""
    problems = []
    for url in target.urls:
        try:
            return get_json(url, path, params)
        except CtlError as exc:
            problems.append(str(exc))
    raise CtlError("\n".join(problems))


def admin(
    target: Target, method: str, path: str, body: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    """Send an admin request to the leader: each URL in turn until one is not a standby.
    Returns (the URL that took it, its JSON answer)."""
    if not target.token:
        raise CtlError(
            "no admin token: pass --token-file FILE, set AUTOSCALER_ADMIN_TOKEN, or give "
            "--config FILE whose http.admin_token can be read"
        )
    headers = {"Authorization": f"Bearer {target.token}"}
    problems = []
    standby = False
    for url in target.urls:
        try:
            response = httpx.request(
                method, url + path, json=body, headers=headers, timeout=TIMEOUT
            )
        except httpx.HTTPError as exc:
            problems.append(f"{url}: cannot reach the daemon: {exc}")
            continue
        if response.status_code == 409:  # a standby: the leader is elsewhere
            standby = True
            problems.append(_describe(url, response))
            continue
        if response.status_code != 200:
            raise CtlError(_describe(url, response))
        return url, _answer(url, response)
    if len(target.urls) == 1 and standby:
        problems.append("(give every daemon's --url to reach the leader wherever it runs)")
    raise CtlError("\n".join(problems))
