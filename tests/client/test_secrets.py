"""The client secret and the private key never show in reprs, logs or error messages."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import httpx
import pytest

from taap.client import (
    ClientCredentials,
    PopAuth,
    PopRequestsAuth,
    Secret,
    TokenClient,
    TokenEndpoint,
    build_token_request,
)
from taap.client.flows import NeedToken
from taap.client.profiles import Profile, resolve_settings
from taap.core import PrivateKey
from taap.errors import ClientAuthError, KeyFormatError, TaapError, TransportError

from ._fake import FakeTaap
from .conftest import SECRET


def _key_fragments(key: PrivateKey) -> list[str]:
    pem = key.to_pem().decode()
    body = "".join(pem.splitlines()[1:-1])
    numbers = key.key.private_numbers()
    return [body[:40], body[200:240], str(numbers.d)[:30], str(numbers.p)[:30]]


def _assert_clean(text: str, key: PrivateKey) -> None:
    assert SECRET not in text
    for fragment in _key_fragments(key):
        assert fragment not in text


def test_reprs_hide_secret_and_key(credentials: ClientCredentials, fake_url: str) -> None:
    tokens = TokenClient(f"{fake_url}/oauth2/v6/tokens", credentials)
    token = tokens.token()
    prepared = build_token_request(TokenEndpoint(url=f"{fake_url}/oauth2/v6/tokens"), credentials)
    shown = " ".join(
        [
            repr(credentials),
            str(credentials),
            repr(credentials.client_secret),
            f"{credentials.client_secret}",
            repr(tokens),
            repr(tokens.cache),
            repr(PopAuth(tokens)),
            repr(PopRequestsAuth(tokens)),
            repr(token),
            repr(NeedToken(token)),  # what a flow asks its driver for
            repr(prepared),
        ]
    )
    tokens.close()
    _assert_clean(shown, credentials.key)
    assert token.access_token not in shown
    assert credentials.client_id in shown  # the id is not a secret and helps debugging


def test_profile_and_settings_hide_secret_and_password() -> None:
    password = "key-password-" + SECRET
    stored = Profile(
        token_url="http://127.0.0.1:8000/oauth2/v2/tokens",
        client_id="taap-c",
        client_secret=SECRET,
        key="key.pem",
        password_env="MY_KEY_PASSWORD",
    )
    settings = resolve_settings(
        Profile(), profile=stored, environ={"MY_KEY_PASSWORD": password}, require_url=True
    )
    assert settings.password is not None
    shown = " ".join(
        [
            repr(stored),
            str(stored),
            repr(settings),
            str(settings),
            repr(settings.client_secret),
            str(settings.password),
            f"{settings.password!r}",
        ]
    )
    assert SECRET not in shown
    assert "key-password" not in shown
    assert "taap-c" in shown  # the id and the places are shown: they help debugging
    assert settings.client_secret.reveal() == SECRET
    assert settings.password.reveal() == password


def test_secret_cannot_be_pickled() -> None:
    with pytest.raises(TypeError):
        pickle.dumps(Secret("x"))


def test_logs_of_a_full_flow_are_clean(
    fake: FakeTaap,
    fake_url: str,
    credentials: ClientCredentials,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = TokenClient(f"{fake_url}/oauth2/v6/tokens", credentials)
    with httpx.Client(base_url=fake_url, auth=PopAuth(tokens)) as http:
        assert http.post("/api/x", json={"a": 1}).status_code == 200
    tokens.close()
    assert caplog.records  # httpx/httpcore did log the exchange
    _assert_clean(caplog.text, credentials.key)


def test_error_messages_are_clean(
    fake: FakeTaap,
    fake_url: str,
    credentials: ClientCredentials,
    rsa_key: PrivateKey,
    tmp_path: Path,
) -> None:
    messages: list[str] = []
    wrong = ClientCredentials(
        client_id=credentials.client_id, client_secret=Secret(SECRET + "x"), key=rsa_key
    )
    with TokenClient(f"{fake_url}/oauth2/v6/tokens", wrong) as tokens:
        with pytest.raises(ClientAuthError) as auth_error:
            tokens.fetch()
        messages += [
            str(auth_error.value),
            repr(auth_error.value),
            str(auth_error.value.log_detail),
        ]
    with TokenClient("http://127.0.0.1:9/oauth2/v2/tokens", credentials, sleep=lambda s: None) as t:
        with pytest.raises(TransportError) as transport_error:
            t.fetch()
        messages.append(str(transport_error.value))
    encrypted = tmp_path / "key.pem"
    encrypted.write_bytes(rsa_key.to_pem(b"the-right-password"))
    with pytest.raises(KeyFormatError) as key_error:
        ClientCredentials.from_key_file(
            client_id="c",
            client_secret=SECRET,
            key_path=encrypted,
            password=SECRET,
        )
    messages.append(str(key_error.value))
    text = "\n".join(messages)
    _assert_clean(text, rsa_key)
    assert all(isinstance(m, str) for m in messages)


def test_error_chain_carries_no_secret(credentials: ClientCredentials) -> None:
    tokens = TokenClient("http://127.0.0.1:9/oauth2/v6/tokens", credentials, sleep=lambda s: None)
    with pytest.raises(TaapError) as caught:
        tokens.fetch()
    tokens.close()
    chain = []
    err: BaseException | None = caught.value
    while err is not None:
        chain.append(f"{type(err).__name__}: {err}")
        err = err.__cause__ or err.__context__
    _assert_clean("\n".join(chain), credentials.key)
