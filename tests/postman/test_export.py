"""``taap postman export`` and the library behind it: the two documents, file modes, what the
command says, and its refusals (one line, never a traceback)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from postman_kit import export
from starlette.routing import Route

from kit.processes import clean_env, run_taap
from taap.core import generate_private_key
from taap.postman import (
    COLLECTION_FILE,
    ENVIRONMENT_FILE,
    SAMPLE_CALLS,
    PostmanExport,
    build_collection,
    build_environment,
)
from taap.resource.keys import StaticKeys
from taap.resource.sample import create_sample_app

TOKEN_URL = "https://gw.example/taap/oauth2/v2/tokens"


def test_collection_shape() -> None:
    collection = build_collection(PostmanExport(token_url=TOKEN_URL, client_id="c1"))
    assert collection["info"]["schema"].endswith("/collection/v2.1.0/collection.json")
    step2, calls = collection["item"]
    assert step2["name"] == "Step 2: access token"
    assert calls["name"] == "Steps 3\u20134: API calls"
    assert [i["name"] for i in step2["item"]] == [
        "v2 token (connectivity, location, sms-notification)",
        "v6 token (call-verification, fraud-prevention)",
    ]
    v2, v6 = (item["request"] for item in step2["item"])
    assert (v2["url"], v2["body"]["raw"]) == ("{{token_url}}", "")
    assert json.loads(v6["body"]["raw"]) == {
        "client_id": "{{client_id}}",
        "client_secret": "{{client_secret}}",
        "scope": "response_mode",
        "grant-type": "client_credentials",
    }
    assert [i["name"] for i in calls["item"]] == [
        "Device lookup (connectivity)",
        "Send SMS (sms-notification)",
    ]
    for item in calls["item"]:
        headers = {h["key"]: h["value"] for h in item["request"]["header"]}
        assert headers["Authorization"] == "Bearer {{access_token_v2}}"
    (event,) = collection["event"]
    assert event["listen"] == "prerequest"
    assert "function rs256Sign(key, message) {" in event["script"]["exec"]


def test_products_choose_the_requests() -> None:
    spec = PostmanExport(token_url=TOKEN_URL, client_id="c1", products=["call-verification"])
    step2, calls = build_collection(spec)["item"]
    assert [i["name"] for i in step2["item"]] == ["v6 token (call-verification)"]
    assert calls["item"] == []


def test_environment_derives_both_token_urls() -> None:
    for url in (TOKEN_URL, TOKEN_URL.replace("/v2/", "/v6/")):
        env = build_environment(PostmanExport(token_url=url, client_id="c1"))
        values = {v["key"]: (v["value"], v["type"]) for v in env["values"]}
        assert values == {
            "token_url": (TOKEN_URL, "default"),
            "token_url_v6": (TOKEN_URL.replace("/v2/", "/v6/"), "default"),
            "api_url": ("https://gw.example", "default"),
            "client_id": ("c1", "default"),
            "client_secret": ("", "secret"),
            "private_key": ("", "secret"),
        }


def test_sample_calls_are_routes_of_the_sample_app() -> None:
    app = create_sample_app(keys=StaticKeys({"k1": generate_private_key(2048).public}))
    routes = [r for r in app.routes if isinstance(r, Route)]
    for calls in SAMPLE_CALLS.values():
        for call in calls:
            assert any(
                r.methods and call.method in r.methods and r.path_regex.match(call.path)
                for r in routes
            ), call


def test_without_secrets_the_files_are_0644_and_say_what_is_missing(tmp_path: Path) -> None:
    said = export(tmp_path, "--token-url", TOKEN_URL, "--client-id", "c1")
    assert "Left empty: client_secret, private_key" in said
    assert "0600" not in said
    for name in (COLLECTION_FILE, ENVIRONMENT_FILE):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644
        assert str(tmp_path / name) in said


def test_secrets_tighten_an_existing_environment(tmp_path: Path) -> None:
    export(tmp_path, "--token-url", TOKEN_URL, "--client-id", "c1")
    said = export(
        tmp_path,
        "--token-url",
        TOKEN_URL,
        "--client-id",
        "c1",
        "--client-secret-env",
        "S",
        env=clean_env(S="the-secret"),
    )
    assert "holds secrets (client_secret)" in said
    assert "Left empty: private_key" in said
    assert "the-secret" not in said
    environment = tmp_path / ENVIRONMENT_FILE
    assert stat.S_IMODE(environment.stat().st_mode) == 0o600
    assert "the-secret" in environment.read_text()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--token-url", "ftp://x/oauth2/v2/tokens"], "absolute http(s) URL"),
        (["--token-url", "https://x/oauth2/tokens"], "must end in /v2/tokens or /v6/tokens"),
        (["--token-url", TOKEN_URL, "--product", "nope"], "unknown product 'nope'"),
        (["--token-url", TOKEN_URL, "--api-url", "gw.example"], "API URL"),
    ],
)
def test_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    result = run_taap("postman", "export", "--out", str(tmp_path), "--client-id", "c", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_bad_key_and_missing_secret_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    for extra in (["--key", str(bad)], ["--client-secret-env", "UNSET_VAR"]):
        result = run_taap(
            "postman",
            "export",
            "--out",
            str(tmp_path / "o"),
            "--client-id",
            "c",
            "--token-url",
            TOKEN_URL,
            *extra,
        )
        assert result.returncode == 1, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert result.stderr.startswith(("key_invalid: ", "configuration_error: "))
