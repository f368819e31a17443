"""``taap gateway``'s settings: flags over ``TAAP_*`` variables over the TOML file, and one clear
line for each mistake (no process is started)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from kit.processes import clean_env, run_taap
from taap.errors import ConfigurationError
from taap.gateway import GatewaySettings, load_settings, read_config_file

TOKEN = "https://auth.example.com"


def test_defaults_and_the_a5_base_paths() -> None:
    settings = load_settings(
        environ={}, token_server=TOKEN, upstreams={"connectivity": "http://10.0.0.5:8080/"}
    )
    assert settings.upstreams == {"connectivity": "http://10.0.0.5:8080"}
    assert settings.upstream_timeout == 30
    assert settings.port == 8080
    assert not settings.strip_authorization
    assert not settings.auth_request
    assert settings.product_paths({"connectivity"}) == {"/iot-connectivity/v1": "connectivity"}
    assert settings.max_body == 1024 * 1024  # the shared A8 settings come along


def test_flags_over_variables_over_the_file(tmp_path: Path) -> None:
    conf = tmp_path / "gateway.toml"
    conf.write_text(
        'token_server = "https://file.example.com"\n'
        "upstream_timeout = 12\n"
        "port = 9000\n"
        "auth_request = true\n"
        "[upstreams]\n"
        'orders = "http://10.0.0.7:9000"\n'
        "[base_paths]\n"
        'orders = "/orders/v1/"\n'
    )
    environ = {"TAAP_UPSTREAM_TIMEOUT": "5", "TAAP_PORT": "9001"}
    settings = load_settings(config=str(conf), environ=environ, port=9002)
    assert settings.token_server == "https://file.example.com"
    assert settings.upstream_timeout == 5
    assert settings.port == 9002
    assert settings.auth_request
    assert settings.product_paths({"orders"}) == {"/orders/v1": "orders"}
    assert "/orders/v1" in settings.product_paths()  # /auth judges every known product


def test_upstreams_from_a_variable() -> None:
    environ = {
        "TAAP_TOKEN_SERVER": TOKEN,
        "TAAP_UPSTREAMS": "connectivity=http://a:1, sms-notification=https://b",
    }
    settings = GatewaySettings.load(environ=environ)
    assert settings.upstreams == {"connectivity": "http://a:1", "sms-notification": "https://b"}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "nothing to serve"),
        ({"upstreams": {"orders": "http://a:1"}}, "no base path for product orders"),
        ({"upstreams": {"connectivity": "http://a:1/api"}}, "scheme://host[:port] only"),
        ({"upstreams": {"connectivity": "ftp://a"}}, "http:// or https://"),
        ({"upstreams": {"connectivity": "http://a:1"}, "upstream_timeout": 0}, "upstream_timeout"),
        ({"upstreams": "connectivity"}, "PRODUCT=VALUE"),
        ({"upstreams": {"connectivity": "http://a:1"}, "workers": 2}, "needs --redis-url"),
        ({"auth_request": True, "base_paths": {"x": "relative"}}, "plain path"),
    ],
)
def test_mistakes_are_one_clear_line(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(environ={}, token_server=TOKEN, **values)
    assert message in caught.value.description
    assert "\n" not in caught.value.description


def test_config_file_problems(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("upstreams = [\n")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        read_config_file(bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('tokenserver = "x"\n')
    with pytest.raises(ConfigurationError, match="unknown setting tokenserver"):
        read_config_file(unknown)
    big = tmp_path / "big.toml"
    big.write_text("# " + "x" * 70_000)
    with pytest.raises(ConfigurationError, match="larger than"):
        read_config_file(big)
    with pytest.raises(ConfigurationError, match="cannot read"):
        read_config_file(tmp_path / "missing.toml")


def test_the_command_says_what_is_wrong_in_one_line(tmp_path: Path) -> None:
    result = run_taap("gateway", "--token-server", TOKEN, "--upstream", "orders=http://a:1")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "configuration_error: invalid settings: settings: no base path for product orders: "
        "give --base-path PRODUCT=/path"
    ]
    result = run_taap("gateway", "--upstream", "connectivity", env=clean_env())
    assert result.returncode == 2
    assert "expected PRODUCT=VALUE" in result.stderr


def test_the_command_reads_its_config_file(tmp_path: Path) -> None:
    conf = tmp_path / "gateway.toml"
    conf.write_text(
        'token_server = "https://auth.example.com"\n[upstreams]\norders = "http://a:1"\n'
    )
    result = run_taap("gateway", "--config", str(conf), "--port", "0")
    assert result.returncode == 1
    assert "no base path for product orders" in result.stderr
    result = run_taap("gateway", "--config", str(tmp_path / "nope.toml"))
    assert result.returncode == 1
    assert result.stderr.startswith("configuration_error: cannot read")


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = run_taap(
            "gateway", "--token-server", TOKEN, "--upstream", "connectivity=http://a:1",
            "--port", str(port),
        )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr == f"taap gateway: port {port} on 127.0.0.1 is already in use\n"


def test_listener_limits_from_the_environment_are_checked() -> None:
    env = clean_env(TAAP_HEADER_TIMEOUT="0", TAAP_MAX_CONNECTIONS="0")
    done = run_taap(
        "gateway", "--token-server", TOKEN, "--upstream", "connectivity=http://a:1", env=env
    )
    (line,) = done.stderr.splitlines()
    assert line.startswith("configuration_error: invalid settings: ")
    assert "(TAAP_HEADER_TIMEOUT)" in line
    assert "(TAAP_MAX_CONNECTIONS)" in line
