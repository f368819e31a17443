"""The timing decoy through the token endpoint (SECURITY.md A2): even a decoy row armed with an
active status, a known secret and the caller's key never authenticates, by any id shape, on
v2 and v6, over SqlRegistry on a real SQLite file and on PostgreSQL; its answers are
byte-identical to an unknown client's."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from server_kit import PEPPER, Harness, basic, make_harness, v6_body

from kit.postgres import temporary_database
from taap.core import PrivateKey
from taap.server.registry._decoy import DECOY_CLIENT_ID
from taap.server.registry.database import parse_database_url
from taap.server.registry.secrets import hash_secret
from taap.server.registry.sql import SqlRegistry, open_registry

KNOWN = "the-decoy-secret-an-attacker-somehow-knows-0123"


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/decoy.db"
        return
    with temporary_database(request.getfixturevalue("postgres_url"), "taap_decoy") as url:
        yield url


@pytest.fixture
async def armed(
    database_url: str, rsa_key: PrivateKey, signing_key: PrivateKey
) -> AsyncIterator[tuple[Harness, SqlRegistry]]:
    """A server over a SQL registry whose decoy row is active, with secret KNOWN and the
    caller's key: the worst case, so only the code (not the row) keeps it out."""
    registry = await open_registry(database_url, pepper=PEPPER)
    engine = sa.create_engine(parse_database_url(database_url).url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE clients SET status = 'active' WHERE id = :d"),
                {"d": DECOY_CLIENT_ID},
            )
            conn.execute(
                sa.text("UPDATE client_secrets SET digest = :h WHERE client_id = :d"),
                {"h": hash_secret(PEPPER, KNOWN).hex(), "d": DECOY_CLIENT_ID},
            )
            conn.execute(
                sa.text("UPDATE client_keys SET pem = :p, thumbprint = :t WHERE client_id = :d"),
                {
                    "p": rsa_key.public.to_pem().decode("ascii"),
                    "t": rsa_key.thumbprint,
                    "d": DECOY_CLIENT_ID,
                },
            )
    finally:
        engine.dispose()
    harness = await make_harness(rsa_key, signing_key=signing_key, registry=registry)
    try:
        yield harness, registry
    finally:
        await registry.close()


def _raw_basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode("utf-8")).decode("ascii")


# Ways to name the decoy in Basic credentials: as is (split at its own ':'), percent-encoded,
# a full-width colon, surrounding spaces, a trailing NUL, another case.
DECOY_SHAPES = [
    _raw_basic(f"{DECOY_CLIENT_ID}:{KNOWN}"),
    basic(DECOY_CLIENT_ID.replace(":", "%3A"), KNOWN),
    basic(DECOY_CLIENT_ID.replace(":", "%3a"), KNOWN),
    basic(DECOY_CLIENT_ID.replace(":", "\uff1a"), KNOWN),
    basic(f" {DECOY_CLIENT_ID} ".replace(":", "%3A"), KNOWN),
    basic(DECOY_CLIENT_ID.replace(":", "%3A") + "\x00", KNOWN),
    basic(DECOY_CLIENT_ID.upper().replace(":", "%3A"), KNOWN),
    _raw_basic(f"taap:{KNOWN}"),
    _raw_basic(f"taap:timing-decoy:{KNOWN}".replace("taap:", "taap::", 1)),
]


async def _unknown_answer(harness: Harness, version: str) -> tuple[int, bytes]:
    auth = basic("taap-NoSuchClient0123456789abcdefghij", KNOWN)
    body = v6_body("taap-NoSuchClient0123456789abcdefghij", KNOWN) if version == "v6" else None
    response = await harness.post(version, authorization=auth, body=body)
    # An unknown id reads the armed decoy's rows: they must still not authenticate it.
    assert response.status_code == 401, response.text
    return response.status_code, response.content


async def test_a_real_client_of_the_same_registry_gets_a_token(
    armed: tuple[Harness, SqlRegistry], rsa_key: PrivateKey
) -> None:
    harness, registry = armed
    record, secret = await registry.create_client(
        name="real", keys=[rsa_key.public], apis=["connectivity"]
    )
    response = await harness.post("v2", authorization=basic(record.client_id, secret))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("shape", range(len(DECOY_SHAPES)))
async def test_the_armed_decoy_never_authenticates_on_v2(
    armed: tuple[Harness, SqlRegistry], shape: int
) -> None:
    harness, _ = armed
    expected = await _unknown_answer(harness, "v2")
    response = await harness.post("v2", authorization=DECOY_SHAPES[shape])
    assert (response.status_code, response.content) == expected
    assert response.json()["error_code"] == "client_auth_failed"


async def test_the_armed_decoy_never_authenticates_on_v6(
    armed: tuple[Harness, SqlRegistry],
) -> None:
    harness, _ = armed
    expected = await _unknown_answer(harness, "v6")
    for auth in DECOY_SHAPES[:3]:
        response = await harness.post(
            "v6", authorization=auth, body=v6_body(DECOY_CLIENT_ID, KNOWN)
        )
        assert (response.status_code, response.content) == expected
    assert expected[0] == 401


async def test_the_registry_answers_none_for_the_armed_decoy(
    armed: tuple[Harness, SqlRegistry],
) -> None:
    _, registry = armed
    assert await registry.get_client(DECOY_CLIENT_ID) is None
    assert await registry.get_client(DECOY_CLIENT_ID.replace(":", "%3A")) is None
    assert DECOY_CLIENT_ID not in [c.client_id for c in await registry.list_clients()]


async def test_memory_registry_server_treats_the_decoy_id_as_unknown(harness: Harness) -> None:
    expected = await _unknown_answer(harness, "v2")
    for auth in DECOY_SHAPES:
        response = await harness.post("v2", authorization=auth)
        assert (response.status_code, response.content) == expected
    assert await harness.registry.get_client(DECOY_CLIENT_ID) is None
