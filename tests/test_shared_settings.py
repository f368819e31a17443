"""One settings model (taap.settings) for the A8 settings the token server and the guard share:
the same variable, default and range in both roles, read only where ``load`` is called."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from taap.errors import ConfigurationError
from taap.resource import GuardSettings
from taap.server.settings import RegistrySettings, ServerSettings
from taap.settings import SharedSettings

SRC = Path(__file__).resolve().parent.parent / "src" / "taap"
SHARED = sorted(SharedSettings.model_fields)
ENV = {
    "TAAP_POP_POLICY": "java-compat",
    "TAAP_LEEWAY": "7",
    "TAAP_POP_MAX_TTL": "90",
    "TAAP_POP_MAX_AGE": "45",
    "TAAP_MAX_BODY": "4096",
    "TAAP_MAX_HEADERS": "8192",
    "TAAP_JWKS_TTL": "120",
    "TAAP_JWKS_MIN_REFRESH": "2.5",
    "TAAP_REDIS_URL": "redis://127.0.0.1:6390/5",
    "TAAP_GUARD_TOKEN_CACHE": "0",
    "TAAP_REVOCATION_MAX_AGE": "3",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.upper().startswith("TAAP_"):
            monkeypatch.delenv(name)


def test_the_server_reads_every_shared_setting_as_the_guard_does() -> None:
    assert set(SHARED) <= set(ServerSettings.model_fields)
    for name in SHARED:
        # the same type, default and range (FieldInfo compares by identity; its repr shows all)
        assert repr(ServerSettings.model_fields[name]) == repr(SharedSettings.model_fields[name])
    assert set(ENV) == {f"TAAP_{name.upper()}" for name in SHARED}
    server, shared = ServerSettings.load(environ=ENV), SharedSettings.load(environ=ENV)
    assert {n: getattr(server, n) for n in SHARED} == {n: getattr(shared, n) for n in SHARED}
    assert {n: getattr(ServerSettings.load(environ={}), n) for n in SHARED} == {
        n: getattr(SharedSettings.load(environ={}), n) for n in SHARED
    }


def test_guard_settings_from_the_server_equal_the_field_by_field_ones() -> None:
    server = ServerSettings.load(environ=ENV)
    by_hand = GuardSettings(
        policy=server.policy,
        leeway=server.leeway,
        max_body=server.max_body,
        max_headers=server.max_headers,
        jwks_ttl=server.jwks_ttl,
        jwks_min_refresh=server.jwks_min_refresh,
        redis_url=server.redis_url,
        revocation_max_age=server.revocation_max_age,
        token_cache=server.guard_token_cache,
    )
    assert GuardSettings.from_settings(server) == by_hand
    assert GuardSettings.from_env(ENV) == by_hand
    assert by_hand.policy.name == "java-compat"
    assert (by_hand.policy.leeway, by_hand.policy.max_ttl, by_hand.policy.max_age) == (7, 90, 45)
    assert (by_hand.jwks_min_refresh, by_hand.token_cache) == (2.5, 0)
    assert by_hand.revocation_max_age == 3
    assert GuardSettings.from_env({}) == GuardSettings.from_settings(ServerSettings.load())
    assert GuardSettings.from_env({}) == GuardSettings()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TAAP_LEEWAY", "ten"),
        ("TAAP_LEEWAY", "301"),
        ("TAAP_POP_POLICY", "loose"),
        ("TAAP_POP_MAX_TTL", "0"),
        ("TAAP_POP_MAX_AGE", "3601"),
        ("TAAP_MAX_BODY", "1023"),
        ("TAAP_MAX_HEADERS", "-1"),
        ("TAAP_JWKS_TTL", "0"),
        ("TAAP_JWKS_MIN_REFRESH", "-1"),
        ("TAAP_GUARD_TOKEN_CACHE", "many"),
        ("TAAP_REVOCATION_MAX_AGE", "0.5"),
        ("TAAP_REVOCATION_MAX_AGE", "61"),
    ],
)
def test_a_bad_value_is_refused_by_both_roles_naming_the_variable(
    variable: str, value: str
) -> None:
    with pytest.raises(ConfigurationError, match=f"\\({variable}\\)") as guard:
        GuardSettings.from_env({variable: value})
    with pytest.raises(ConfigurationError, match=f"\\({variable}\\)") as server:
        ServerSettings.load(environ={variable: value})
    assert str(guard.value).startswith("invalid settings: ")
    assert str(server.value).startswith("invalid settings: ")


def test_only_load_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAAP_LEEWAY", "5")
    monkeypatch.setenv("taap_max_body", "2048")  # names match regardless of case
    assert ServerSettings(public_url="http://127.0.0.1:9").leeway == 10
    loaded = ServerSettings.load()
    assert (loaded.leeway, loaded.max_body) == (5, 2048)
    assert ServerSettings.load(environ={}).leeway == 10  # a given mapping replaces os.environ
    assert GuardSettings.from_env().leeway == 5
    assert GuardSettings.from_env({"TAAP_LEEWAY": "3"}).policy.leeway == 3


def test_registry_settings_are_the_servers_registry_part() -> None:
    env = {"TAAP_PEPPER": "p" * 16, "TAAP_KEY_ENCRYPTION_KEY": "k" * 16, "TAAP_LEEWAY": "x"}
    registry = RegistrySettings.load(environ=env, database_url="sqlite:///r.db")
    assert registry.database_url == "sqlite:///r.db"
    assert (registry.pepper_bytes(), registry.key_password()) == (b"p" * 16, b"k" * 16)
    assert "p" * 16 not in repr(registry)
    assert "k" * 16 not in repr(registry)
    with pytest.raises(ConfigurationError, match=r"\(TAAP_KEY_ENCRYPTION_KEY\)"):
        RegistrySettings.load(environ={"TAAP_KEY_ENCRYPTION_KEY": "short"})


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name.startswith("taap")}


def test_the_shared_model_sits_below_server_resource_and_cli() -> None:
    assert {name.split(".")[1] for name in _imports(SRC / "settings.py")} <= {"core", "errors"}
    below = [*(SRC / "core").rglob("*.py"), *(SRC / "stores").rglob("*.py")]
    assert [str(p) for p in below if "taap.settings" in _imports(p)] == []
