"""Settings a container sets from its environment, over the config file:

- `AUTOSCALER_CONFIG`: the config file when `--config` is not given;
- `AUTOSCALER_LISTEN`: `http.listen` (e.g. `0.0.0.0:9464` in a container);
- `AUTOSCALER_LOG_LEVEL`: `log.level` (debug, info, warning, error).

Applied on every load (start and reload), so a reload keeps them. A bad value is a config
error naming the variable, like a bad key in the file.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import get_args, get_type_hints

from autoscaler.policy.model import DaemonConfig, LogConfig

CONFIG = "AUTOSCALER_CONFIG"
LISTEN = "AUTOSCALER_LISTEN"
LOG_LEVEL = "AUTOSCALER_LOG_LEVEL"
LEVELS: tuple[str, ...] = get_args(get_type_hints(LogConfig)["level"])


def with_environment(
    config: DaemonConfig, environ: Mapping[str, str] | None = None
) -> DaemonConfig | list[str]:
    """The config with the environment's overrides, or the error lines."""
    from autoscaler.runtime.http import ListenAddressError, parse_listen

    env = os.environ if environ is None else environ
    errors: list[str] = []
    listen = env.get(LISTEN, "").strip()
    if listen:
        try:
            parse_listen(listen)
        except ListenAddressError as exc:
            errors.append(f"{LISTEN}: {str(exc).removeprefix('http.listen: ')}")
        else:
            config = dataclasses.replace(
                config, http=dataclasses.replace(config.http, listen=listen)
            )
    level = env.get(LOG_LEVEL, "").strip().lower()
    if level:
        if level not in LEVELS:
            errors.append(f"{LOG_LEVEL}: {level!r} must be one of {', '.join(LEVELS)}")
        else:
            log = dataclasses.replace(config.log, level=level)  # type: ignore[arg-type]
            config = dataclasses.replace(config, log=log)
    return errors or config
