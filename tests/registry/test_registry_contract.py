"""The Registry contract (TAAP.md A5), run against MemoryRegistry, SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import UTC, timedelta

import pytest
from registry_kit import PEPPER, FakeClock

from taap.core import PrivateKey, generate_private_key
from taap.errors import ConfigurationError, NotFoundError
from taap.server.registry._rules import DEFAULT_KEY_PUBLISH_SECONDS
from taap.server.registry.port import DEFAULT_PRODUCTS, ApiProduct, Registry
from taap.server.registry.secrets import hash_secret, verify_secret

CLIENT_ID = re.compile(r"taap-[A-Za-z0-9]{32}")


@pytest.fixture(scope="module")
def third_key() -> PrivateKey:
    return generate_private_key(2048)


async def test_create_client_generates_id_and_strong_secret(
    registry: Registry, rsa_key: PrivateKey
) -> None:
    record, secret = await registry.create_client(
        name="  Acme  ", keys=[rsa_key.public], apis=["sms-notification", "location"]
    )
    assert CLIENT_ID.fullmatch(record.client_id)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", secret)
    assert record.name == "Acme"
    assert record.status == "active"
    assert record.weak_secret is False
    assert record.apis == ("location", "sms-notification")
    assert [k.thumbprint for k in record.keys] == [rsa_key.thumbprint]
    assert record.secret_digests == (hash_secret(PEPPER, secret),)
    assert record.created_at.tzinfo is not None
    assert record.created_at.utcoffset() == timedelta(0)

    fetched = await registry.get_client(record.client_id)
    assert fetched is not None
    assert verify_secret(PEPPER, secret, fetched.secret_digests)
    assert not verify_secret(PEPPER, secret + "x", fetched.secret_digests)
    assert fetched.apis == record.apis
    assert fetched.keys == record.keys
    assert fetched.created_at == record.created_at


async def test_two_clients_get_different_ids_and_secrets(
    registry: Registry, rsa_key: PrivateKey
) -> None:
    a, secret_a = await registry.create_client(name="a", keys=[rsa_key.public], apis=[])
    b, secret_b = await registry.create_client(name="b", keys=[rsa_key.public], apis=[])
    assert a.client_id != b.client_id
    assert secret_a != secret_b
    # One public key may belong to two clients (uniqueness is per client).
    assert a.keys == b.keys


async def test_unknown_client_is_none(registry: Registry) -> None:
    assert await registry.get_client("taap-doesnotexist") is None
    assert await registry.get_client("") is None


@pytest.mark.parametrize("hostile", ["a\x00b", "x" * 10_000, "id:with:colons", "é", "a b", "%"])
async def test_hostile_client_ids_are_unknown_not_errors(registry: Registry, hostile: str) -> None:
    # Basic-auth input reaches get_client as is: it must answer None, never fail (no 5xx).
    assert await registry.get_client(hostile) is None


async def test_chosen_id_and_sandbox_secret_are_flagged_weak(
    registry: Registry, demo_key: PrivateKey
) -> None:
    record, secret = await registry.create_client(
        name="sandbox",
        keys=[demo_key.public],
        apis=["connectivity"],
        secret="123:abc",
        client_id="sandbox-client",
    )
    assert secret == "123:abc"
    assert record.client_id == "sandbox-client"
    assert record.weak_secret is True
    fetched = await registry.get_client("sandbox-client")
    assert fetched is not None
    assert fetched.weak_secret is True
    assert verify_secret(PEPPER, "123:abc", fetched.secret_digests)
    listed = {c.client_id: c for c in await registry.list_clients()}
    assert listed["sandbox-client"].weak_secret is True


async def test_long_chosen_secret_is_not_weak(registry: Registry, rsa_key: PrivateKey) -> None:
    record, _ = await registry.create_client(
        name="x", keys=[rsa_key.public], apis=[], secret="s" * 40
    )
    assert record.weak_secret is False


async def test_duplicate_client_id_refused(registry: Registry, rsa_key: PrivateKey) -> None:
    await registry.create_client(name="a", keys=[rsa_key.public], apis=[], client_id="dup-1")
    with pytest.raises(ConfigurationError, match="already registered"):
        await registry.create_client(name="b", keys=[rsa_key.public], apis=[], client_id="dup-1")
    record = await registry.get_client("dup-1")
    assert record is not None
    assert record.name == "a"


@pytest.mark.parametrize("bad", ["", "has:colon", "has space", "x" * 129, "é"])
async def test_bad_client_id_refused(registry: Registry, rsa_key: PrivateKey, bad: str) -> None:
    with pytest.raises(ConfigurationError, match="client id"):
        await registry.create_client(name="a", keys=[rsa_key.public], apis=[], client_id=bad)
    assert await registry.list_clients() == []


@pytest.mark.parametrize("bad", ["", "   ", "x" * 201, "tab\there"])
async def test_bad_name_refused(registry: Registry, rsa_key: PrivateKey, bad: str) -> None:
    with pytest.raises(ConfigurationError, match="name"):
        await registry.create_client(name=bad, keys=[rsa_key.public], apis=[])


@pytest.mark.parametrize("bad", ["", "new\nline", "x" * 513])
async def test_bad_chosen_secret_refused(registry: Registry, rsa_key: PrivateKey, bad: str) -> None:
    with pytest.raises(ConfigurationError, match="secret"):
        await registry.create_client(name="a", keys=[rsa_key.public], apis=[], secret=bad)


async def test_unknown_api_refused_and_nothing_created(
    registry: Registry, rsa_key: PrivateKey
) -> None:
    with pytest.raises(NotFoundError, match="no-such-api"):
        await registry.create_client(
            name="a", keys=[rsa_key.public], apis=["location", "no-such-api"], client_id="c-1"
        )
    assert await registry.get_client("c-1") is None
    assert await registry.list_clients() == []


async def test_products_are_seeded_from_a5(registry: Registry) -> None:
    products = await registry.list_products()
    assert list(products) == sorted(DEFAULT_PRODUCTS, key=lambda p: p.id)
    by_id = {p.id: (p.token_server, p.base_path) for p in products}
    assert by_id["call-verification"] == ("v6", "/call-verification/v1")
    assert by_id["connectivity"] == ("v2", "/iot-connectivity/v1")
    assert by_id["fraud-prevention"] == ("v6", "/fraud-prevention/v1")
    assert by_id["location"] == ("v2", "/location/v1")
    assert by_id["sms-notification"] == ("v2", "/sms/v1")


async def test_custom_product(registry: Registry, rsa_key: PrivateKey) -> None:
    product = ApiProduct(id="weather", name="Weather", token_server="v6", base_path="/weather/v2")
    assert await registry.create_product(product) == product
    assert product in await registry.list_products()
    with pytest.raises(ConfigurationError, match="already exists"):
        await registry.create_product(product)
    record, _ = await registry.create_client(name="w", keys=[rsa_key.public], apis=["weather"])
    assert record.apis == ("weather",)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", "Upper"),
        ("id", ""),
        ("id", "-lead"),
        ("name", " "),
        ("token_server", "v3"),
        ("base_path", "relative/v1"),
        ("base_path", "/trailing/"),
        ("base_path", "/a//b"),
        ("base_path", "/q?x=1"),
    ],
)
async def test_bad_product_refused(registry: Registry, field: str, value: str) -> None:
    fields = {"id": "ok-api", "name": "Ok", "token_server": "v2", "base_path": "/ok/v1"}
    fields[field] = value
    with pytest.raises(ConfigurationError):
        await registry.create_product(ApiProduct(**fields))  # type: ignore[arg-type]
    assert "ok-api" not in {p.id for p in await registry.list_products()}


async def test_disable_enable(registry: Registry, rsa_key: PrivateKey, clock: FakeClock) -> None:
    record, _ = await registry.create_client(name="a", keys=[rsa_key.public], apis=[])
    clock.advance(5)
    disabled = await registry.set_status(record.client_id, "disabled")
    assert disabled.status == "disabled"
    assert disabled.updated_at == record.updated_at + timedelta(seconds=5)
    assert disabled.created_at == record.created_at
    fetched = await registry.get_client(record.client_id)
    assert fetched is not None
    assert fetched.status == "disabled"
    enabled = await registry.set_status(record.client_id, "active")
    assert enabled.status == "active"
    with pytest.raises(ConfigurationError):
        await registry.set_status(record.client_id, "gone")  # type: ignore[arg-type]


async def test_admin_calls_on_unknown_client(registry: Registry, rsa_key: PrivateKey) -> None:
    calls = [
        registry.set_status("nobody", "disabled"),
        registry.rotate_secret("nobody"),
        registry.add_key("nobody", rsa_key.public),
        registry.remove_key("nobody", rsa_key.thumbprint),
        registry.subscribe("nobody", "location"),
        registry.unsubscribe("nobody", "location"),
    ]
    for call in calls:
        with pytest.raises(NotFoundError, match="nobody"):
            await call


async def test_rotate_secret_replaces_at_once(registry: Registry, rsa_key: PrivateKey) -> None:
    record, old = await registry.create_client(name="a", keys=[rsa_key.public], apis=[])
    new = await registry.rotate_secret(record.client_id)
    assert new != old
    fetched = await registry.get_client(record.client_id)
    assert fetched is not None
    assert verify_secret(PEPPER, new, fetched.secret_digests)
    assert not verify_secret(PEPPER, old, fetched.secret_digests)
    assert len(fetched.secret_digests) == 1


async def test_rotate_secret_with_grace_keeps_previous_until_it_ends(
    registry: Registry, rsa_key: PrivateKey, clock: FakeClock
) -> None:
    record, first = await registry.create_client(name="a", keys=[rsa_key.public], apis=[])
    second = await registry.rotate_secret(record.client_id, grace=60)
    fetched = await registry.get_client(record.client_id)
    assert fetched is not None
    assert verify_secret(PEPPER, first, fetched.secret_digests)
    assert verify_secret(PEPPER, second, fetched.secret_digests)
    # A second rotation keeps only the secret it replaces: never more than two live secrets.
    third = await registry.rotate_secret(record.client_id, grace=60)
    fetched = await registry.get_client(record.client_id)
    assert fetched is not None
    assert len(fetched.secret_digests) == 2
    assert not verify_secret(PEPPER, first, fetched.secret_digests)
    assert verify_secret(PEPPER, second, fetched.secret_digests)
    clock.advance(61)
    fetched = await registry.get_client(record.client_id)
    assert fetched is not None
    assert fetched.secret_digests == (hash_secret(PEPPER, third),)


async def test_rotate_to_chosen_secret_sets_weak_flag(
    registry: Registry, rsa_key: PrivateKey
) -> None:
    record, _ = await registry.create_client(name="a", keys=[rsa_key.public], apis=[])
    assert await registry.rotate_secret(record.client_id, "short") == "short"
    fetched = await registry.get_client(record.client_id)
    assert fetched is not None
    assert fetched.weak_secret is True
    await registry.rotate_secret(record.client_id)
    fetched = await registry.get_client(record.client_id)
    assert fetched is not None
    assert fetched.weak_secret is False


async def test_bad_grace_refused(registry: Registry, rsa_key: PrivateKey) -> None:
    record, secret = await registry.create_client(name="a", keys=[rsa_key.public], apis=[])
    with pytest.raises(ConfigurationError, match="grace"):
        await registry.rotate_secret(record.client_id, grace=-1)
    fetched = await registry.get_client(record.client_id)
    assert fetched is not None
    assert verify_secret(PEPPER, secret, fetched.secret_digests)


async def test_key_rotation(
    registry: Registry, rsa_key: PrivateKey, other_key: PrivateKey, third_key: PrivateKey
) -> None:
    record, _ = await registry.create_client(name="a", keys=[rsa_key.public], apis=[])
    added = await registry.add_key(record.client_id, other_key.public)
    assert [k.thumbprint for k in added.keys] == [rsa_key.thumbprint, other_key.thumbprint]
    with pytest.raises(ConfigurationError, match="already registered"):
        await registry.add_key(record.client_id, other_key.public)
    with pytest.raises(NotFoundError):
        await registry.remove_key(record.client_id, third_key.thumbprint)
    removed = await registry.remove_key(record.client_id, rsa_key.thumbprint)
    assert [k.thumbprint for k in removed.keys] == [other_key.thumbprint]
    with pytest.raises(ConfigurationError, match="last key"):
        await registry.remove_key(record.client_id, other_key.thumbprint)
    fetched = await registry.get_client(record.client_id)
    assert fetched is not None
    assert [k.thumbprint for k in fetched.keys] == [other_key.thumbprint]


async def test_create_with_several_keys_dedupes(
    registry: Registry, rsa_key: PrivateKey, other_key: PrivateKey
) -> None:
    record, _ = await registry.create_client(
        name="a", keys=[rsa_key.public, other_key.public, rsa_key.public], apis=[]
    )
    assert {k.thumbprint for k in record.keys} == {rsa_key.thumbprint, other_key.thumbprint}
    assert len(record.keys) == 2


async def test_subscriptions(registry: Registry, rsa_key: PrivateKey) -> None:
    record, _ = await registry.create_client(name="a", keys=[rsa_key.public], apis=["location"])
    cid = record.client_id
    assert (await registry.subscribe(cid, "call-verification")).apis == (
        "call-verification",
        "location",
    )
    assert (await registry.subscribe(cid, "location")).apis == ("call-verification", "location")
    assert (await registry.unsubscribe(cid, "location")).apis == ("call-verification",)
    assert (await registry.unsubscribe(cid, "location")).apis == ("call-verification",)
    with pytest.raises(NotFoundError, match="nope"):
        await registry.subscribe(cid, "nope")
    with pytest.raises(NotFoundError, match="nope"):
        await registry.unsubscribe(cid, "nope")
    fetched = await registry.get_client(cid)
    assert fetched is not None
    assert fetched.apis == ("call-verification",)


async def test_list_clients_oldest_first(
    registry: Registry, rsa_key: PrivateKey, clock: FakeClock
) -> None:
    ids = []
    for name in ("first", "second", "third"):
        record, _ = await registry.create_client(name=name, keys=[rsa_key.public], apis=[])
        ids.append(record.client_id)
        clock.advance(1)
    listed = await registry.list_clients()
    assert [c.client_id for c in listed] == ids
    assert [c.name for c in listed] == ["first", "second", "third"]


async def test_repr_holds_no_digest(registry: Registry, rsa_key: PrivateKey) -> None:
    record, secret = await registry.create_client(name="a", keys=[rsa_key.public], apis=[])
    text = repr(record) + repr(registry)
    assert secret not in text
    assert record.secret_digests[0].hex() not in text
    assert str(record.secret_digests[0]) not in text


async def test_ping(registry: Registry) -> None:
    assert await registry.ping() is True


async def test_signing_key_rotation(registry: Registry, clock: FakeClock) -> None:
    initial = await registry.signing_keys()
    assert len(initial) == 1
    first = initial[0]
    assert first.publish_until is None
    assert first.kid == first.key.thumbprint
    assert first.key.bits == 2048

    clock.advance(10)
    second = await registry.rotate_signing_key()
    published = await registry.signing_keys()
    assert [k.kid for k in published] == [second.kid, first.kid]
    old = published[1]
    assert old.publish_until is not None
    expected = published[0].created_at + timedelta(seconds=DEFAULT_KEY_PUBLISH_SECONDS)
    assert abs((old.publish_until - expected).total_seconds()) < 1
    assert old.publish_until.tzinfo is not None
    assert old.publish_until.astimezone(UTC) == old.publish_until

    clock.advance(DEFAULT_KEY_PUBLISH_SECONDS - 1)
    assert [k.kid for k in await registry.signing_keys()] == [second.kid, first.kid]
    clock.advance(2)
    assert [k.kid for k in await registry.signing_keys()] == [second.kid]
    # The whole history stays listable.
    assert {k.kid for k in await registry.all_signing_keys()} == {first.kid, second.kid}


async def test_retire_signing_key(registry: Registry, clock: FakeClock) -> None:
    first = (await registry.signing_keys())[0]
    with pytest.raises(ConfigurationError, match="active"):
        await registry.retire_signing_key(first.kid)
    clock.advance(1)
    second = await registry.rotate_signing_key()
    retired = await registry.retire_signing_key(first.kid)
    assert retired.retired is True
    assert [k.kid for k in await registry.signing_keys()] == [second.kid]
    with pytest.raises(NotFoundError):
        await registry.retire_signing_key("no-such-kid")
    history = {k.kid: k.retired for k in await registry.all_signing_keys()}
    assert history == {first.kid: True, second.kid: False}


async def test_signing_keys_sign_and_verify(registry: Registry) -> None:
    active = (await registry.signing_keys())[0]
    signature = active.key.sign_rs256(b"message")
    assert active.key.public.verify_rs256(signature, b"message")
