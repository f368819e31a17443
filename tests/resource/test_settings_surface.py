"""GuardSettings.from_env and the curated surface of taap.resource."""

from __future__ import annotations

import importlib

import pytest

from taap.errors import ConfigurationError
from taap.resource import GuardSettings, ProductMap


def test_defaults_are_a8() -> None:
    settings = GuardSettings.from_env({})
    assert (settings.policy.name, settings.policy.leeway) == ("strict", 10)
    assert (settings.policy.max_ttl, settings.policy.max_age) == (120, 60)
    assert (settings.max_body, settings.max_headers) == (1024 * 1024, 16 * 1024)
    assert (settings.jwks_ttl, settings.jwks_min_refresh) == (300, 30)
    assert settings.redis_url is None
    assert settings.revocation_max_age == 5


def test_env_overrides() -> None:
    settings = GuardSettings.from_env(
        {
            "TAAP_POP_POLICY": "lenient",
            "TAAP_LEEWAY": "5",
            "TAAP_MAX_BODY": "2048",
            "TAAP_JWKS_TTL": "60",
            "TAAP_JWKS_MIN_REFRESH": "2",
            "TAAP_REDIS_URL": "redis://127.0.0.1:6390/3",
            "TAAP_GUARD_TOKEN_CACHE": "0",
        }
    )
    assert (settings.policy.name, settings.policy.leeway, settings.leeway) == ("lenient", 5, 5)
    assert (settings.max_body, settings.jwks_ttl, settings.jwks_min_refresh) == (2048, 60, 2)
    assert settings.redis_url == "redis://127.0.0.1:6390/3"
    assert settings.token_cache == 0


@pytest.mark.parametrize(
    "env",
    [
        {"TAAP_LEEWAY": "ten"},
        {"TAAP_POP_POLICY": "loose"},
        {"TAAP_JWKS_TTL": "0"},
        {"TAAP_MAX_BODY": "-1"},
    ],
)
def test_invalid_env(env: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        GuardSettings.from_env(env)


@pytest.mark.parametrize(
    ("path", "product"),
    [
        ("/sms/v1", "sms-notification"),
        ("/sms/v1/messages", "sms-notification"),
        ("/sms/v1x/messages", None),
        ("/sms", None),
        ("/iot-connectivity/v1/devices/1", "connectivity"),
        ("/", None),
    ],
)
def test_default_product_map(path: str, product: str | None) -> None:
    assert ProductMap.default().product_for(path) == product


def test_longest_base_path_wins() -> None:
    products = ProductMap({"/api": "general", "/api/admin": "admin"})
    assert products.product_for("/api/admin/users") == "admin"
    assert products.product_for("/api/users") == "general"


def test_product_map_refuses_bad_entries() -> None:
    with pytest.raises(ValueError, match="invalid product mapping"):
        ProductMap({"no-slash": "x"})


@pytest.mark.parametrize(
    "name", ["taap.resource", "taap.resource.dependency", "taap.resource.sample", "taap.sandbox"]
)
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    assert len(module.__all__) == len(set(module.__all__))
    for attr in module.__all__:
        assert hasattr(module, attr), f"{name}.{attr} missing"
        assert not attr.startswith("_")


def test_resource_does_not_need_the_token_server_or_sql() -> None:
    import subprocess
    import sys

    code = (
        "import sys, taap.resource, taap.resource.sample;"
        "bad=[m for m in ('taap.server','taap.client','sqlalchemy') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
