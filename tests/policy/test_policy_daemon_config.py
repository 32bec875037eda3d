"""The daemon config: the reference shape loads, secrets are references, errors are located,
and `load_daemon` checks every policy's provider against the config's profiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoscaler.policy.loader import ValidationFailed, load_daemon, load_daemon_config
from autoscaler.policy.model import LoginSpec, SecretRef

from .test_policy_errors import BASE

DESIGN_CONFIG = (
    Path(__file__).resolve().parents[2] / "docs" / "reference" / "daemon-config-example.yaml"
)

CONFIG = """\
policies: policies
providers:
  neevcloud-prod:
    type: neevcloud
    base_url: https://api.ai.neevcloud.com/aimodels
    org_id: org-abc123
    project_id: prj-abc123
    token: {env: NEEVCLOUD_ACCESS_TOKEN}
    timeout: 10s
  netmind-prod:
    type: netmind
    base_url: https://api.netmind.ai
    token: {file: /run/secrets/netmind_token}
state:
  url: sqlite:////var/lib/autoscaler/state.db
http:
  listen: 127.0.0.1:9464
  admin_token: {env: AUTOSCALER_ADMIN_TOKEN}
log:
  format: json
  level: info
zero_poll_interval: 2s
dry_run: false
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_the_design_reference_config_loads() -> None:
    config = load_daemon_config(DESIGN_CONFIG)
    assert config.policies == "/etc/autoscaler/policies"
    assert set(config.providers) == {"neevcloud-prod", "netmind-prod", "nebius-prod"}
    assert config.providers["neevcloud-prod"].timeout == 10.0
    assert config.http.admin_token == SecretRef(env="AUTOSCALER_ADMIN_TOKEN")


def test_config_fields_defaults_and_relative_policies(tmp_path: Path) -> None:
    path = write(tmp_path / "etc" / "autoscaler.yaml", CONFIG)
    config = load_daemon_config(path)
    assert config.policies == str(tmp_path / "etc" / "policies")
    assert config.source_file == str(path)
    neev = config.providers["neevcloud-prod"]
    assert neev.name == "neevcloud-prod" and neev.type == "neevcloud"
    assert (neev.org_id, neev.project_id) == ("org-abc123", "prj-abc123")
    assert neev.token == SecretRef(env="NEEVCLOUD_ACCESS_TOKEN")
    assert neev.max_retries == 4 and neev.wait_ready_timeout == 1800.0
    assert config.providers["netmind-prod"].token == SecretRef(file="/run/secrets/netmind_token")
    assert config.state.url == "sqlite:////var/lib/autoscaler/state.db"
    assert config.state.lease_ttl == 15.0
    assert config.http.listen == "127.0.0.1:9464"
    assert (config.log.format, config.log.level) == ("json", "info")
    assert config.zero_poll_interval == 2.0
    assert config.shutdown_timeout == 30.0
    with pytest.raises(TypeError):
        config.providers["x"] = neev  # type: ignore[index]


def test_login_with_console_credentials(tmp_path: Path) -> None:
    text = CONFIG.replace(
        "    token: {env: NEEVCLOUD_ACCESS_TOKEN}\n",
        "    login: {url: https://tenant.example/api/v1/auth/login, username: {env: NC_USER},\n"
        "            password: {file: /run/secrets/nc_password}}\n",
    )
    config = load_daemon_config(write(tmp_path / "c.yaml", text))
    assert config.providers["neevcloud-prod"].login == LoginSpec(
        url="https://tenant.example/api/v1/auth/login",
        username=SecretRef(env="NC_USER"),
        password=SecretRef(file="/run/secrets/nc_password"),
    )
    plain = text.replace("username: {env: NC_USER}", "username: ops@example.com")
    login = load_daemon_config(write(tmp_path / "d.yaml", plain)).providers["neevcloud-prod"].login
    assert login is not None and login.username == "ops@example.com"


LITERAL = (
    "must be {env: NAME} or {file: PATH}, got a literal value; never write the secret itself "
    "in the file, put it in an environment variable or a file"
)

CONFIG_CASES = [
    (
        "literal token",
        CONFIG.replace("token: {env: NEEVCLOUD_ACCESS_TOKEN}", "token: eyJhbGciOi"),
        [f"8:12: providers.neevcloud-prod.token: {LITERAL}"],
    ),
    (
        "literal admin token",
        CONFIG.replace("admin_token: {env: AUTOSCALER_ADMIN_TOKEN}", "admin_token: hunter2"),
        [f"18:16: http.admin_token: {LITERAL}"],
    ),
    (
        "literal login password",
        CONFIG.replace(
            "    token: {env: NEEVCLOUD_ACCESS_TOKEN}\n",
            "    login: {url: https://t.example/login, username: me, password: pw}\n",
        ),
        [f"8:67: providers.neevcloud-prod.login.password: {LITERAL}"],
    ),
    (
        "secret with both env and file",
        CONFIG.replace("{env: NEEVCLOUD_ACCESS_TOKEN}", "{env: A, file: b}"),
        ['8:12: providers.neevcloud-prod.token: set either "env" or "file", not both'],
    ),
    (
        "secret with a bad env name",
        CONFIG.replace("{env: NEEVCLOUD_ACCESS_TOKEN}", "{env: 1-bad}"),
        [
            "8:18: providers.neevcloud-prod.token.env: must be an environment variable name, "
            'got "1-bad"'
        ],
    ),
    (
        "provider type",
        CONFIG.replace("type: netmind", "type: runpod"),
        [
            "11:11: providers.netmind-prod.type: must be one of [neevcloud, netmind, nebius], "
            'got "runpod"'
        ],
    ),
    (
        "login only for neevcloud",
        CONFIG.replace(
            "    token: {file: /run/secrets/netmind_token}\n",
            "    login: {url: https://t.example/login, username: me, password: {env: P}}\n",
        ),
        [
            '13:12: providers.netmind-prod.login: login is only supported for type "neevcloud",'
            ' not "netmind"; use token'
        ],
    ),
    (
        "neevcloud without its organisation and project",
        CONFIG.replace("    org_id: org-abc123\n    project_id: prj-abc123\n", ""),
        [
            "4:11: providers.neevcloud-prod.type: neevcloud needs org_id and project_id (its API "
            "paths name them)"
        ],
    ),
    (
        "no credential",
        CONFIG.replace("    token: {file: /run/secrets/netmind_token}\n", ""),
        ["11:5: providers.netmind-prod: needs token or login (the API credential)"],
    ),
    (
        "base_url scheme",
        CONFIG.replace("https://api.netmind.ai", "api.netmind.ai"),
        [
            "12:15: providers.netmind-prod.base_url: must be a URL starting with one of "
            '[http://, https://], got "api.netmind.ai"'
        ],
    ),
    (
        "listen address",
        CONFIG.replace("listen: 127.0.0.1:9464", "listen: localhost"),
        ['17:11: http.listen: must be HOST:PORT like "127.0.0.1:9464", got "localhost"'],
    ),
    (
        "state url",
        CONFIG.replace("sqlite:////var/lib/autoscaler/state.db", "mysql://db/x"),
        [
            '15:8: state.url: must be a sqlite:// or postgresql:// URL, got "mysql://db/x"',
        ],
    ),
    (
        "log level typo",
        CONFIG.replace("level: info", "levle: info"),
        ['21:3: log.levle: unknown key "levle" (did you mean "level"?)'],
    ),
    (
        "missing policies",
        CONFIG.replace("policies: policies\n", ""),
        ['1:1: (root): missing required key "policies"'],
    ),
    (
        "no providers",
        "policies: p\nproviders: {}\n",
        ["2:12: providers: must have at least 1 entry, got none"],
    ),
    (
        "provider name is a label",
        CONFIG.replace("netmind-prod:", "Netmind Prod:"),
        [
            "10:3: providers.Netmind Prod: must be a lowercase name of letters, digits and '-' "
            'that starts and ends with a letter or digit, got "Netmind Prod"'
        ],
    ),
    (
        "two documents",
        CONFIG + "---\n" + CONFIG,
        ["25:1: (root): a config file holds exactly one document, got 2"],
    ),
    (
        "gateway on the port of http.listen",
        CONFIG + "gateway:\n  listen: 0.0.0.0:9464\n  api_keys: [{env: GW}]\n",
        [
            '25:11: gateway.listen: "0.0.0.0:9464" is the port http.listen ("127.0.0.1:9464") '
            "uses; give the gateway a port of its own"
        ],
    ),
    (
        # Both ids go into the API's paths as they are: "../x" would point elsewhere.
        "neevcloud ids that are no path segment",
        CONFIG.replace("org_id: org-abc123", 'org_id: "../x"').replace(
            "project_id: prj-abc123", 'project_id: "prj/1?a"'
        ),
        [
            "6:13: providers.neevcloud-prod.org_id: must be an id of letters, digits, '-', "
            "'_', '.' or '~' (it goes into API paths), got \"../x\"",
            "7:17: providers.neevcloud-prod.project_id: must be an id of letters, digits, '-', "
            "'_', '.' or '~' (it goes into API paths), got \"prj/1?a\"",
        ],
    ),
    (
        "zero_poll_interval",
        CONFIG.replace("zero_poll_interval: 2s", "zero_poll_interval: 0"),
        ["22:21: zero_poll_interval: must be a duration of at least 50ms, got 0"],
    ),
    (
        # Each poll reads the activation sources (and may ask the provider): not a busy loop.
        "zero_poll_interval below the floor",
        CONFIG.replace("zero_poll_interval: 2s", "zero_poll_interval: 0.0001ms"),
        ['22:21: zero_poll_interval: must be a duration of at least 50ms, got "0.0001ms"'],
    ),
    (
        "policies path with a NUL byte",
        CONFIG.replace("policies: policies", 'policies: "poli\\0cies"'),
        ['1:11: policies: must be a path without NUL bytes, got "poli\\u0000cies"'],
    ),
    (
        "credential file with a NUL byte",
        CONFIG.replace("{file: /run/secrets/netmind_token}", '{file: "/run/secrets/a\\0b"}'),
        [
            "13:19: providers.netmind-prod.token.file: must be a path without NUL bytes, got "
            '"/run/secrets/a\\u0000b"'
        ],
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in CONFIG_CASES], ids=[c[0] for c in CONFIG_CASES]
)
def test_config_errors(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = write(tmp_path / "c.yaml", text)
    with pytest.raises(ValidationFailed) as caught:
        load_daemon_config(path)
    assert [str(e) for e in caught.value.errors] == [f"{path}:{line}" for line in expected]


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed) as caught:
        load_daemon_config(tmp_path / "nope.yaml")
    assert [str(e) for e in caught.value.errors] == [
        f"{tmp_path}/nope.yaml:1:1: (file): cannot read: No such file or directory"
    ]


def test_load_daemon_reads_the_policies_of_the_config(tmp_path: Path) -> None:
    config_path = write(tmp_path / "autoscaler.yaml", CONFIG)
    write(tmp_path / "policies" / "chat.yaml", BASE)
    config, policies = load_daemon(config_path)
    assert config.providers.keys() == {"neevcloud-prod", "netmind-prod"}
    assert [p.name for p in policies] == ["chat"]
    assert policies[0].source_file == str(tmp_path / "policies" / "chat.yaml")


def test_load_daemon_checks_provider_names(tmp_path: Path) -> None:
    config_path = write(tmp_path / "autoscaler.yaml", CONFIG)
    policy = write(
        tmp_path / "policies" / "chat.yaml", BASE.replace("neevcloud-prod", "neevcloud-stage")
    )
    with pytest.raises(ValidationFailed) as caught:
        load_daemon(config_path)
    assert [str(e) for e in caught.value.errors] == [
        f"{policy}:2:24: deployment.provider: must name a provider profile of {config_path}, "
        'one of [neevcloud-prod, netmind-prod], got "neevcloud-stage"'
    ]


def test_load_daemon_reports_policy_errors_and_a_missing_folder(tmp_path: Path) -> None:
    config_path = write(tmp_path / "autoscaler.yaml", CONFIG)
    with pytest.raises(ValidationFailed) as caught:
        load_daemon(config_path)
    assert [str(e) for e in caught.value.errors] == [
        f"{tmp_path}/policies:1:1: (file): cannot read: No such file or directory"
    ]
    write(tmp_path / "policies" / "bad.yaml", BASE.replace("max: 4", "max: many"))
    with pytest.raises(ValidationFailed) as caught:
        load_daemon(config_path)
    assert [e.path for e in caught.value.errors] == ["replicas.max"]
