"""The pytest plugin as this suite meets it: installed through the ``pytest11`` entry point,
its fixtures start a real sandbox and hand out working credentials."""

from __future__ import annotations

import base64
import json
import stat

import httpx
import pytest

from kit.docsample import sample_test
from taap.errors import ConfigurationError
from taap.testing import SandboxProduct, TaapSandbox, TaapSandboxFactory

DEVICE = "/iot-connectivity/v1/devices/8901260000000000001"


def test_the_plugin_is_registered_by_its_entry_point(pytestconfig: pytest.Config) -> None:
    plugin = pytestconfig.pluginmanager.get_plugin("taap")
    assert plugin is not None
    assert plugin.__name__ == "taap.testing"


def test_session_sandbox_serves_a_guarded_call(taap_sandbox: TaapSandbox) -> None:
    assert taap_sandbox.token_url.endswith("/oauth2/v2/tokens")
    assert taap_sandbox.client_id.startswith("taap-")
    assert stat.S_IMODE(taap_sandbox.key_path.stat().st_mode) == 0o600
    with httpx.Client(auth=taap_sandbox.auth(), base_url=taap_sandbox.api_url) as http:
        response = http.get(DEVICE)
    assert response.status_code == 200
    assert response.json()["iccid"] == "8901260000000000001"


def test_the_sandbox_refuses_an_unsigned_call(taap_sandbox: TaapSandbox) -> None:
    response = httpx.get(taap_sandbox.api_url + DEVICE)
    assert response.status_code == 401
    assert response.json()["error_code"] == "token_invalid"


def test_secret_stays_out_of_the_repr(taap_sandbox: TaapSandbox) -> None:
    assert taap_sandbox.client_secret not in repr(taap_sandbox)


def test_new_client_has_its_own_key_and_subscriptions(taap_sandbox: TaapSandbox) -> None:
    other = taap_sandbox.new_client(apis=["sms-notification"])
    assert other.client_id != taap_sandbox.client_id
    assert other.key_path != taap_sandbox.key_path
    assert other.apis == ("sms-notification",)
    with httpx.Client(auth=other.auth(), base_url=other.api_url) as http:
        response = http.get(DEVICE)
    assert (response.status_code, response.json()["error_code"]) == (403, "not_subscribed")


def test_factory_custom_product_settings_and_v6(taap_sandbox_factory: TaapSandboxFactory) -> None:
    box = taap_sandbox_factory(
        apis=["orders"],
        products=[SandboxProduct("orders", "/orders/v1", token_server="v6")],
        settings={"TAAP_TOKEN_TTL": "120"},
    )
    assert box.token_url.endswith("/oauth2/v6/tokens")
    token = box.auth().tokens.fetch()
    claims = json.loads(base64.urlsafe_b64decode(token.access_token.split(".")[1] + "=="))
    assert claims["apis"] == ["orders"]
    assert claims["exp"] - claims["iat"] == 120


def test_factory_refuses_an_invalid_setting(taap_sandbox_factory: TaapSandboxFactory) -> None:
    with pytest.raises(ConfigurationError, match="TAAP_TOKEN_TTL"):
        taap_sandbox_factory(settings={"TAAP_TOKEN_TTL": "soon"})


def test_factory_refuses_a_product_that_exists(taap_sandbox_factory: TaapSandboxFactory) -> None:
    with pytest.raises(ConfigurationError):
        taap_sandbox_factory(products=[SandboxProduct("connectivity", "/elsewhere/v1")])


def test_the_documented_sample_test_passes(pytester: pytest.Pytester) -> None:
    """docs/testing.md's sample, in a project of its own (no conftest, no ini of ours)."""
    pytester.makepyfile(test_taap_sandbox=sample_test())
    # pytest-asyncio, a dev dependency here, warns when its loop scope is unset.
    result = pytester.runpytest_subprocess("-q", "-p", "no:asyncio", "-W", "error")
    result.assert_outcomes(passed=3)
    assert result.ret == 0


def test_the_environment_does_not_reach_the_sandbox(
    taap_sandbox_factory: TaapSandboxFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TAAP_TOKEN_TTL", "60")
    token = taap_sandbox_factory().auth().tokens.fetch()
    assert token.expires_in == 3599


def test_the_plugin_can_be_turned_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_uses_it(taap_sandbox):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:asyncio", "-p", "no:taap")
    result.stdout.fnmatch_lines(["*fixture 'taap_sandbox' not found*"])


def test_without_the_server_extra_only_fixture_users_fail(pytester: pytest.Pytester) -> None:
    """uvicorn missing, as after ``pip install taap``: pytest still runs; asking for the
    sandbox fails that test with the install hint."""
    pytester.makeconftest("import sys\nsys.modules['uvicorn'] = None\n")
    pytester.makepyfile(
        "def test_plain():\n    assert True\n\ndef test_sandbox(taap_sandbox):\n    pass\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:asyncio")
    result.assert_outcomes(passed=1, errors=1)
    output = result.stdout.str()
    assert "needs the server extra: pip install 'taap[server]'" in output
    assert "Traceback" not in output
