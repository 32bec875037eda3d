"""Hot reload: on SIGHUP or when the config or a policy file changes, validate everything and
switch to it; an invalid change is rejected (every error logged) and the running config kept.

Change detection polls file fingerprints (mtime, size, inode) every `POLL_SECONDS`: the config
file, every policy file it names, the policy folder itself (so added and removed files
count), and every credential file the config refers to (`{file: ...}`).

Credentials are re-read on every reload (SIGHUP, or any watched file changing, credential
files included): a rotated provider token or admin token takes effect without a restart, and
`credentials_changed` names what changed (`http.admin_token`, `providers.NAME.token`), never a
value. An admin token that became empty or short, or a credential that cannot be read, is
logged (`credentials_error`) and the one in use is kept. (Under systemd, `LoadCredential=`
copies the files at start only: rotate them with `systemctl restart`, or point the config at
a file outside `$CREDENTIALS_DIRECTORY`.)

Polling instead of inotify/`watchfiles`: no extra dependency, a handful of `stat` calls per
poll, and it sees what inotify misses (ConfigMap symlink swaps, network and bind mounts,
editors that replace files by rename).

Must not live here: applying a config to running policies (`apply.py`), signals.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import structlog

from autoscaler.policy.errors import PolicyError, ValidationFailed
from autoscaler.policy.loader import expand_paths, load_daemon
from autoscaler.policy.model import DaemonConfig, Policy, SecretRef
from autoscaler.secrets import Secret, SecretError, credential_files, describe_ref, resolve

if TYPE_CHECKING:
    from autoscaler.runtime.connections import Connections

log = structlog.get_logger("autoscaler.reload")

POLL_SECONDS = 2.0

Fingerprint = dict[str, tuple[int, int, int] | None]


def credential_refs(config: DaemonConfig) -> dict[str, SecretRef | str | None]:
    """Every credential reference in the daemon config, by the name logs use."""
    refs: dict[str, SecretRef | str | None] = {"http.admin_token": config.http.admin_token}
    for name, profile in sorted(config.providers.items()):
        refs[f"providers.{name}.token"] = profile.token
        if profile.login is not None:
            refs[f"providers.{name}.login.username"] = profile.login.username
            refs[f"providers.{name}.login.password"] = profile.login.password
    return refs


def watched_paths(config_path: str, config: DaemonConfig) -> list[str]:
    paths = [config_path, *credential_files(credential_refs(config).values())]
    policies = config.policies
    if os.path.isdir(policies):
        paths.append(policies)
    else:
        parent = os.path.dirname(policies) or "."
        if os.path.isdir(parent):
            paths.append(parent)  # a glob's folder: new matching files change its mtime
    errors: list[PolicyError] = []
    paths.extend(str(p) for p in expand_paths([policies], errors))
    return paths


def fingerprint(paths: list[str]) -> Fingerprint:
    out: Fingerprint = {}
    for path in paths:
        try:
            st = os.stat(path)
            out[path] = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            out[path] = None
    return out


def load_checked(config_path: str) -> tuple[DaemonConfig, list[Policy]] | list[str]:
    """The config and policies, or the error lines (`FILE:LINE:COL: key.path: message`)."""
    from autoscaler.runtime.environment import with_environment

    try:
        config, policies = load_daemon(config_path)
    except ValidationFailed as exc:
        return [str(e) for e in exc.errors]
    overridden = with_environment(config)  # AUTOSCALER_LISTEN, AUTOSCALER_LOG_LEVEL
    return overridden if isinstance(overridden, list) else (overridden, policies)


def load_for_start(config_path: str, command: str) -> tuple[DaemonConfig, list[Policy]] | None:
    """`load_checked` for a command starting up: on errors, print each line and a summary
    naming `command` to stderr and return None (the caller exits 2, nothing started)."""
    loaded = load_checked(config_path)
    if not isinstance(loaded, list):
        return loaded
    for line in loaded:
        print(line, file=sys.stderr)
    print(f"autoscaler {command}: {len(loaded)} error(s); nothing started", file=sys.stderr)
    return None


def refused_at_start(exc: BaseException) -> str | None:
    """The one line saying why a start was refused, found in `exc` (task groups wrap what
    their tasks raise): a store that cannot be opened, an address that cannot be listened
    on (taken, or a host that does not resolve); else None (a crash)."""
    from autoscaler.httpserver import ListenAddressError
    from autoscaler.store.opening import StoreOpenError

    if isinstance(exc, StoreOpenError | ListenAddressError):
        return str(exc)
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = refused_at_start(inner)
            if found is not None:
                return found
    return None


class ReloadHost(Protocol):
    """What reloading needs of the daemon (`daemon.Daemon`); a protocol, so this module does
    not import the daemon it reloads."""

    config: DaemonConfig  # the config in force: watched files, log and listen settings
    connections: Connections  # its provider clients, for rotated credentials
    last_reload: dict[str, Any] | None  # the outcome of the last reload, for /status

    def clock(self) -> float: ...

    async def apply(
        self, config: DaemonConfig, policies: Sequence[Policy]
    ) -> dict[str, list[str]]: ...


class Reloader:
    """Reload logic bound to one daemon: `reload(reason)` and the polling `watch` task."""

    def __init__(self, daemon: ReloadHost, config_path: str) -> None:
        self.daemon = daemon
        self.config_path = config_path
        self._lock = anyio.Lock()
        self._fingerprint: Fingerprint = {}
        self.rejected = 0
        self.applied = 0
        self.daemon_http = daemon.config.http  # what the HTTP server was started with
        self.admin_token: Secret | None = None  # the one in use; the HTTP app asks for it

    def _paths(self) -> list[str]:
        return watched_paths(self.config_path, self.daemon.config)

    def remember(self) -> None:
        self._fingerprint = fingerprint(self._paths())

    async def reload(self, reason: str) -> bool:
        """Validate and apply. False when the new files were rejected."""
        async with self._lock:
            # Fingerprint before reading: a write racing the read shows up on the next poll.
            self.remember()
            loaded = await anyio.to_thread.run_sync(load_checked, self.config_path)
            now = self.daemon.clock()
            if isinstance(loaded, list):
                self.rejected += 1
                for line in loaded:
                    log.error("reload_error", error=line)
                log.error(
                    "reload_rejected",
                    reason=reason,
                    errors=len(loaded),
                    note="the running configuration is kept",
                )
                self.daemon.last_reload = {
                    "t": now,
                    "reason": reason,
                    "ok": False,
                    "errors": loaded,
                }
                return False
            config, policies = loaded
            old_log = self.daemon.config.log
            report = await self.daemon.apply(config, policies)
            if config.log != old_log:
                from autoscaler.runtime.logs import configure_logging

                configure_logging(config.log)
            if config.http.listen != self.daemon_http.listen:
                log.warning(
                    "reload_ignored", key="http.listen", note="a new listen address needs a restart"
                )
            self.refresh_credentials(config)
            self.applied += 1
            log.info("reloaded", reason=reason, **report)
            self.daemon.last_reload = {"t": now, "reason": reason, "ok": True, **report}
            return True

    def refresh_credentials(self, config: DaemonConfig) -> list[str]:
        """Re-read every credential; swap in the ones that changed (see the module).
        Returns the names of those that changed."""
        from autoscaler.providers.registry import refresh_credentials
        from autoscaler.runtime.http import check_admin_token

        changed: list[str] = []
        ref = config.http.admin_token
        try:
            admin = check_admin_token(resolve(ref))
        except SecretError as exc:
            where = describe_ref(ref) if isinstance(ref, SecretRef) else "http.admin_token"
            log.error(
                "credentials_error",
                name="http.admin_token",
                ref=where,
                error=str(exc),
                note="the admin token in use is kept",
            )
        else:
            if admin != self.admin_token:
                self.admin_token = admin
                changed.append("http.admin_token")
        for name, provider in list(self.daemon.connections.providers.items()):
            profile = config.providers.get(name)
            if profile is None:
                continue
            try:
                changed.extend(refresh_credentials(provider, profile))
            except (SecretError, ValueError) as exc:
                log.error(
                    "credentials_error",
                    name=f"providers.{name}",
                    error=str(exc),
                    note="the credentials in use are kept",
                )
        if changed:
            log.info("credentials_changed", changed=changed)
        return changed

    async def watch(self, poll: float = POLL_SECONDS) -> None:
        """Poll the files forever; reload when any fingerprint changes."""
        if not self._fingerprint:
            self.remember()
        while True:
            await anyio.sleep(poll)
            try:
                current = fingerprint(self._paths())
            except Exception as exc:  # a vanished folder must not end the watch
                log.warning("reload_watch_failed", error=str(exc))
                continue
            if current != self._fingerprint:
                changed = sorted(
                    p
                    for p in set(current) | set(self._fingerprint)
                    if current.get(p) != self._fingerprint.get(p)
                )
                await self.reload("files changed: " + ", ".join(Path(p).name for p in changed))
