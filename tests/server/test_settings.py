"""ServerSettings (TAAP.md A8): defaults, environment, validation."""

from __future__ import annotations

import pytest

from taap.errors import ConfigurationError
from taap.server.settings import ServerSettings, parse_rate, trusted_networks
from taap.stores.ratelimit import Rate


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("TAAP_"):
            monkeypatch.delenv(name)


def test_defaults() -> None:
    s = ServerSettings.load()
    assert s.database_url == "sqlite:///./taap.db"
    assert s.redis_url is None
    assert s.base_url == "http://127.0.0.1:8000"
    assert s.issuer_url == "http://127.0.0.1:8000/oauth2/v1"
    assert s.token_mode == "separate"
    assert (s.pop_policy, s.leeway, s.pop_max_ttl, s.pop_max_age) == ("strict", 10, 120, 60)
    assert s.token_ttl == 3600
    assert (s.max_body, s.max_headers) == (1024 * 1024, 16 * 1024)
    assert s.client_rate == Rate(10, 6.0)
    assert s.address_rate == Rate(30, 2.0)
    assert s.forwarded_allow_ips == ""
    assert (s.key_refresh, s.registry_cache, s.jwks_ttl, s.jwks_min_refresh) == (30, 0, 300, 30)
    assert s.policy.name == "strict"
    assert s.policy.leeway == 10


def test_environment_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAAP_PORT", "9001")
    monkeypatch.setenv("TAAP_TOKEN_MODE", "single")
    monkeypatch.setenv("TAAP_POP_POLICY", "lenient")
    monkeypatch.setenv("TAAP_LEEWAY", "5")
    monkeypatch.setenv("TAAP_PEPPER", "pepper!")
    s = ServerSettings.load(port=9100, token_mode=None)
    assert s.port == 9100  # the flag wins
    assert s.token_mode == "single"  # None means "not given on the command line"
    assert s.policy.name == "lenient"
    assert s.policy.leeway == 5
    assert s.pepper_bytes() == b"pepper!"
    assert "pepper!" not in repr(s)
    assert s.base_url == "http://127.0.0.1:9100"


def test_workers_need_redis() -> None:
    with pytest.raises(ConfigurationError, match="needs --redis-url"):
        ServerSettings.load(workers=2)
    assert ServerSettings.load(workers=2, redis_url="redis://127.0.0.1:6390/0").workers == 2


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("token_mode", "double"),
        ("pop_policy", "loose"),
        ("rate_client", "10"),
        ("rate_address", "0/5"),
        ("forwarded_allow_ips", "not-an-ip"),
        ("public_url", "ftp://x"),
        ("max_body", 10),
        ("sign_threads", -1),
        ("sign_threads", "many"),
        ("sign_threads", 65),
    ],
)
def test_invalid_settings_are_named(name: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=name):
        ServerSettings.load(**{name: value})


def test_signing_threads_auto_and_explicit(monkeypatch: pytest.MonkeyPatch) -> None:
    auto = ServerSettings.load()
    assert auto.sign_threads == "auto"
    # auto: cores - 1 threads with one worker (the event loop keeps a core); at most 4.
    assert [auto.signing_threads(cpus) for cpus in (1, 2, 3, 5, 16)] == [0, 1, 2, 4, 4]
    several = ServerSettings.load(workers=2, redis_url="redis://127.0.0.1:6390/0")
    assert several.signing_threads(16) == 0  # the workers already have the cores
    monkeypatch.setenv("TAAP_SIGN_THREADS", "0")
    assert ServerSettings.load().signing_threads(16) == 0  # inline, whatever the machine
    monkeypatch.setenv("TAAP_SIGN_THREADS", "3")
    assert ServerSettings.load().signing_threads(1) == 3  # explicit wins, even on one core
    assert ServerSettings.load(sign_threads="auto").signing_threads(3) == 2  # the flag wins


def test_parsers() -> None:
    assert parse_rate("5/0.5") == Rate(5, 0.5)
    assert trusted_networks("*") == "*"
    assert [str(n) for n in trusted_networks("10.0.0.1, ::1")] == ["10.0.0.1/32", "::1/128"]
