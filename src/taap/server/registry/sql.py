"""The client registry on SQLAlchemy Core (TAAP.md A5): SQLite by default, PostgreSQL for scale.

:func:`open_registry` is the one entry point: it parses the URL, builds the engine, runs the
migrations, makes sure a signing key exists, and returns a :class:`SqlRegistry`.

Hot path: :meth:`SqlRegistry.get_client` is one statement (a ``UNION ALL`` of the client row,
its live secrets, keys and subscriptions) and nothing is cached but parsed key objects, so a
change made by the CLI or another node is seen by the next request (A8 ``TAAP_REGISTRY_CACHE=0``).
An unknown id reads the timing decoy's rows instead and builds its record before answering
``None`` (SECURITY.md A2; :mod:`taap.server.registry._decoy`), so both cost the same.
Every database failure becomes :class:`~taap.errors.UnavailableError` (503), chained.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Row

from taap.core.keys import PrivateKey, PublicKey, generate_private_key, load_private_key
from taap.core.keys import load_public_key as _load_public_key
from taap.errors import ConfigurationError, KeyFormatError, NotFoundError, TaapError
from taap.server.registry import migrations
from taap.server.registry._decoy import DECOY_CLIENT_ID, is_decoy
from taap.server.registry._rules import (
    DEFAULT_CLIENT_ID_PREFIX,
    DEFAULT_KEY_PUBLISH_SECONDS,
    check_client_id,
    check_grace,
    check_name,
    check_prefix,
    check_product,
    check_secret,
    dedupe,
    is_client_id,
    new_client_id,
    publishable_keys,
    to_datetime,
)
from taap.server.registry._sql_runner import Runner, make_runner
from taap.server.registry._sql_tables import (
    api_products,
    client_keys,
    client_secrets,
    clients,
    signing_keys,
    subscriptions,
)
from taap.server.registry.database import DatabaseUrl, parse_database_url
from taap.server.registry.port import ApiProduct, ClientRecord, ClientStatus, SigningKeyRecord
from taap.server.registry.secrets import generate_secret, hash_secret, is_weak_secret

__all__ = ["SqlRegistry", "downgrade_database", "open_registry", "upgrade_database"]

T = TypeVar("T")

_TS = sa.DateTime(timezone=True)
_MAX_PARSED_KEYS = 10_000


def _utc(value: datetime | str) -> datetime:
    # SQLite hands back naive datetimes, or ISO strings on the raw hot path (everything
    # written here is UTC); PostgreSQL aware ones in the session's zone: all become UTC.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _null(type_: Any) -> sa.Cast[Any]:
    return sa.cast(sa.null(), type_)


def _client_statement(*, every: bool = False) -> sa.CompoundSelect[Any]:
    """The client row, its live secrets, keys and subscriptions: one round trip.

    An unknown id reads the timing decoy's rows instead (SECURITY.md A2: the same index
    lookups, the same number of rows, the same record to build); the head row's ``f`` says
    whether the id asked for was found. ``every``: all clients at once (listings), each row
    led by its client id.
    """
    cid = sa.bindparam("cid", type_=sa.String)
    now = sa.bindparam("now", type_=_TS)
    wanted = clients.alias("wanted")
    # The asked id when it exists, else the decoy's: a constant subquery, evaluated once.
    target = sa.func.coalesce(
        sa.select(wanted.c.id).where(wanted.c.id == cid).scalar_subquery(),
        sa.literal_column(f"'{DECOY_CLIENT_ID}'", sa.String),
    )

    def scoped(select: sa.Select[Any], owner: sa.ColumnElement[str]) -> sa.Select[Any]:
        if every:
            return select.add_columns(owner.label("owner"))
        return select.where(owner == target)

    head = sa.select(
        sa.literal_column("'c'").label("kind"),
        clients.c.name.label("a"),
        clients.c.status.label("b"),
        clients.c.created_at.label("t1"),
        clients.c.updated_at.label("t2"),
        (_null(sa.Boolean) if every else (clients.c.id == cid)).label("f"),
        _null(sa.Integer).label("n"),
    )
    head = scoped(head, clients.c.id)
    live = sa.select(
        sa.literal_column("'s'"),
        client_secrets.c.digest,
        _null(sa.Text),
        client_secrets.c.created_at,
        _null(_TS),
        client_secrets.c.weak,
        client_secrets.c.id,
    ).where(sa.or_(client_secrets.c.expires_at.is_(None), client_secrets.c.expires_at > now))
    live = scoped(live, client_secrets.c.client_id)
    keys = sa.select(
        sa.literal_column("'k'"),
        client_keys.c.thumbprint,
        client_keys.c.pem,
        client_keys.c.created_at,
        _null(_TS),
        _null(sa.Boolean),
        client_keys.c.id,
    )
    keys = scoped(keys, client_keys.c.client_id)
    apis = sa.select(
        sa.literal_column("'a'"),
        subscriptions.c.api_id,
        _null(sa.Text),
        subscriptions.c.created_at,
        _null(_TS),
        _null(sa.Boolean),
        _null(sa.Integer),
    )
    apis = scoped(apis, subscriptions.c.client_id)
    return sa.union_all(head, live, keys, apis)


_CLIENT_SQL = _client_statement()
_ALL_CLIENTS_SQL = _client_statement(every=True)
_ACTIVE_KEY_UPDATE = (
    sa.update(signing_keys)
    .where(signing_keys.c.publish_until.is_(None), signing_keys.c.retired.is_(False))
    .values(publish_until=sa.bindparam("until", type_=_TS))
)


class SqlRegistry:
    """:class:`~taap.server.registry.Registry` on a SQL database. Build it with
    :func:`open_registry`; ``clock`` returns POSIX seconds (tests move it)."""

    def __init__(
        self,
        runner: Runner,
        *,
        pepper: bytes,
        database: DatabaseUrl,
        clock: Callable[[], float] = time.time,
        client_id_prefix: str = DEFAULT_CLIENT_ID_PREFIX,
        key_publish_seconds: float = DEFAULT_KEY_PUBLISH_SECONDS,
        key_password: bytes | None = None,
    ) -> None:
        if not pepper:
            raise ConfigurationError("the registry needs a non-empty pepper")
        self._runner = runner
        self._pepper = pepper
        self.database = database
        self._clock = clock
        self._prefix = check_prefix(client_id_prefix)
        self._publish_seconds = key_publish_seconds
        self._key_password = key_password
        # Parsed keys by their stored PEM: parsing costs far more than the query (PEM → key is
        # immutable, so this cache can never serve a stale registration).
        self._public_keys: dict[str, PublicKey] = {}
        self._private_keys: dict[str, PrivateKey] = {}

    def __repr__(self) -> str:
        return f"SqlRegistry({self.database.masked!r})"

    @property
    def mode(self) -> str:
        """How statements run: ``inline``, ``thread`` or ``async`` (see docs/registry.md)."""
        return self._runner.mode

    # -- hot path -----------------------------------------------------------------------
    async def get_client(self, client_id: str) -> ClientRecord | None:
        """The client with its live secrets, keys and subscriptions, or ``None``.

        Raises:
            UnavailableError: the database cannot be reached.
        """
        if not is_client_id(client_id):
            return None
        now = to_datetime(self._clock())
        rows = await self._runner.fetch(_CLIENT_SQL, {"cid": client_id, "now": now})
        return self._record(client_id, rows)

    async def list_products(self) -> Sequence[ApiProduct]:
        """Every API product, sorted by id.

        Raises:
            UnavailableError: the database cannot be reached.
        """
        rows = await self._runner.read(
            lambda conn: conn.execute(sa.select(api_products).order_by(api_products.c.id)).all(),
            retry=True,
        )
        return [
            ApiProduct(id=r.id, name=r.name, token_server=r.token_server, base_path=r.base_path)
            for r in rows
        ]

    async def signing_keys(self) -> Sequence[SigningKeyRecord]:
        """Keys to publish in JWKS, the active signing key first.

        Raises:
            UnavailableError: the database cannot be reached.
        """
        now = to_datetime(self._clock())
        query = sa.select(signing_keys).where(
            signing_keys.c.retired.is_(False),
            sa.or_(signing_keys.c.publish_until.is_(None), signing_keys.c.publish_until > now),
        )
        rows = await self._runner.read(lambda conn: conn.execute(query).all(), retry=True)
        return publishable_keys((self._signing_record(r) for r in rows), now)

    async def all_signing_keys(self) -> Sequence[SigningKeyRecord]:
        """Every signing key, retired and expired ones included, newest first.

        Raises:
            UnavailableError: the database cannot be reached.
        """
        query = sa.select(signing_keys).order_by(signing_keys.c.created_at.desc())
        rows = await self._runner.read(lambda conn: conn.execute(query).all(), retry=True)
        return [self._signing_record(r) for r in rows]

    async def ping(self) -> bool:
        """True when the database answers ``SELECT 1``; never raises."""
        try:
            await self._runner.read(lambda conn: conn.execute(sa.text("SELECT 1")).scalar())
        except TaapError:
            return False
        return True

    # -- administration -----------------------------------------------------------------
    async def create_client(
        self,
        *,
        name: str,
        keys: Sequence[PublicKey],
        apis: Sequence[str],
        secret: str | None = None,
        client_id: str | None = None,
    ) -> tuple[ClientRecord, str]:
        """Create a client; returns the record and the plaintext secret (shown once).

        Raises:
            ConfigurationError: bad name, id or secret, or the id is taken.
            NotFoundError: an API id is unknown.
            UnavailableError: the database cannot be reached.
        """
        cleaned = check_name(name)
        chosen = check_secret(secret) if secret is not None else None
        cid = check_client_id(client_id) if client_id is not None else new_client_id(self._prefix)
        plain = chosen if chosen is not None else generate_secret()
        weak = chosen is not None and is_weak_secret(chosen)
        unique = list({k.thumbprint: k for k in keys}.values())
        api_ids = dedupe(apis)
        now = to_datetime(self._clock())

        def work(conn: Connection) -> ClientRecord:
            if conn.execute(sa.select(clients.c.id).where(clients.c.id == cid)).first():
                raise ConfigurationError(f"client id {cid!r} is already registered")
            for api in api_ids:
                self._require_product(conn, api)
            conn.execute(
                clients.insert().values(
                    id=cid, name=cleaned, status="active", created_at=now, updated_at=now
                )
            )
            self._insert_secret(conn, cid, plain, weak=weak, now=now)
            for key in unique:
                self._insert_key(conn, cid, key, now)
            for api in api_ids:
                conn.execute(
                    subscriptions.insert().values(client_id=cid, api_id=api, created_at=now)
                )
            return self._load(conn, cid, now)

        return await self._write(work, duplicate=f"client id {cid!r} is already registered"), plain

    async def list_clients(self) -> Sequence[ClientRecord]:
        """Every client, oldest first (secrets, keys and subscriptions included).

        Raises:
            UnavailableError: the database cannot be reached.
        """
        now = to_datetime(self._clock())

        def work(conn: Connection) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in conn.execute(_ALL_CLIENTS_SQL, {"now": now})]

        grouped: dict[str, list[tuple[Any, ...]]] = {}
        for row in await self._runner.read(work, retry=True):
            if not is_decoy(row[-1]):
                grouped.setdefault(row[-1], []).append(row[:-1])
        records = [self._record(cid, rows) for cid, rows in grouped.items()]
        found = [r for r in records if r is not None]  # rows of a client deleted meanwhile
        return sorted(found, key=lambda r: (r.created_at, r.client_id))

    async def set_status(self, client_id: str, status: ClientStatus) -> ClientRecord:
        """Enable or disable a client.

        Raises:
            NotFoundError: unknown client.
            ConfigurationError: status is not ``active`` or ``disabled``.
            UnavailableError: the database cannot be reached.
        """
        if status not in ("active", "disabled"):
            raise ConfigurationError("status must be 'active' or 'disabled'")
        now = to_datetime(self._clock())

        def work(conn: Connection) -> ClientRecord:
            self._touch(conn, client_id, now, status=status)
            return self._load(conn, client_id, now)

        return await self._write(work)

    async def rotate_secret(
        self, client_id: str, secret: str | None = None, *, grace: float = 0
    ) -> str:
        """Replace the client's secret; the previous one stays valid ``grace`` seconds.

        Raises:
            NotFoundError: unknown client.
            ConfigurationError: bad chosen secret or grace period.
            UnavailableError: the database cannot be reached.
        """
        chosen = check_secret(secret) if secret is not None else None
        check_grace(grace)
        plain = chosen if chosen is not None else generate_secret()
        weak = chosen is not None and is_weak_secret(chosen)
        now = to_datetime(self._clock())

        def work(conn: Connection) -> None:
            self._touch(conn, client_id, now)
            current = conn.execute(
                sa.select(client_secrets.c.id)
                .where(
                    client_secrets.c.client_id == client_id, client_secrets.c.expires_at.is_(None)
                )
                .order_by(client_secrets.c.id.desc())
            ).scalars()
            keep = list(current)[:1] if grace > 0 else []
            # At most two live secrets: the new one and the one it replaces, for ``grace``.
            drop = sa.delete(client_secrets).where(client_secrets.c.client_id == client_id)
            if keep:
                drop = drop.where(client_secrets.c.id.not_in(keep))
                conn.execute(
                    sa.update(client_secrets)
                    .where(client_secrets.c.id.in_(keep))
                    .values(expires_at=now + timedelta(seconds=grace))
                )
            conn.execute(drop)
            self._insert_secret(conn, client_id, plain, weak=weak, now=now)

        await self._write(work)
        return plain

    async def add_key(self, client_id: str, key: PublicKey) -> ClientRecord:
        """Register another PoP public key for the client.

        Raises:
            NotFoundError: unknown client.
            ConfigurationError: the key is already registered for this client.
            UnavailableError: the database cannot be reached.
        """
        now = to_datetime(self._clock())
        duplicate = f"key {key.thumbprint} is already registered for this client"

        def work(conn: Connection) -> ClientRecord:
            self._touch(conn, client_id, now)
            exists = conn.execute(
                sa.select(client_keys.c.thumbprint).where(
                    client_keys.c.client_id == client_id,
                    client_keys.c.thumbprint == key.thumbprint,
                )
            ).first()
            if exists:
                raise ConfigurationError(duplicate)
            self._insert_key(conn, client_id, key, now)
            return self._load(conn, client_id, now)

        return await self._write(work, duplicate=duplicate)

    async def remove_key(self, client_id: str, thumbprint: str) -> ClientRecord:
        """Remove a PoP public key by RFC 7638 thumbprint.

        Raises:
            NotFoundError: unknown client or no key with that thumbprint.
            ConfigurationError: it is the client's last key.
            UnavailableError: the database cannot be reached.
        """
        now = to_datetime(self._clock())

        def work(conn: Connection) -> ClientRecord:
            self._touch(conn, client_id, now)
            prints = set(
                conn.execute(
                    sa.select(client_keys.c.thumbprint).where(client_keys.c.client_id == client_id)
                ).scalars()
            )
            if thumbprint not in prints:
                raise NotFoundError(f"client {client_id!r} has no key {thumbprint!r}")
            if len(prints) == 1:
                raise ConfigurationError(
                    "cannot remove the client's last key: add the new one first"
                )
            conn.execute(
                sa.delete(client_keys).where(
                    client_keys.c.client_id == client_id, client_keys.c.thumbprint == thumbprint
                )
            )
            return self._load(conn, client_id, now)

        return await self._write(work)

    async def subscribe(self, client_id: str, api_id: str) -> ClientRecord:
        """Subscribe the client to an API product (idempotent).

        Raises:
            NotFoundError: unknown client or API.
            UnavailableError: the database cannot be reached.
        """
        now = to_datetime(self._clock())

        def work(conn: Connection) -> ClientRecord:
            self._touch(conn, client_id, now)
            self._require_product(conn, api_id)
            found = conn.execute(
                sa.select(subscriptions.c.api_id).where(
                    subscriptions.c.client_id == client_id, subscriptions.c.api_id == api_id
                )
            ).first()
            if not found:
                conn.execute(
                    subscriptions.insert().values(
                        client_id=client_id, api_id=api_id, created_at=now
                    )
                )
            return self._load(conn, client_id, now)

        return await self._write(work)

    async def unsubscribe(self, client_id: str, api_id: str) -> ClientRecord:
        """Remove a subscription (idempotent).

        Raises:
            NotFoundError: unknown client or API.
            UnavailableError: the database cannot be reached.
        """
        now = to_datetime(self._clock())

        def work(conn: Connection) -> ClientRecord:
            self._touch(conn, client_id, now)
            self._require_product(conn, api_id)
            conn.execute(
                sa.delete(subscriptions).where(
                    subscriptions.c.client_id == client_id, subscriptions.c.api_id == api_id
                )
            )
            return self._load(conn, client_id, now)

        return await self._write(work)

    async def create_product(self, product: ApiProduct) -> ApiProduct:
        """Add a custom API product.

        Raises:
            ConfigurationError: invalid product or the id exists.
            UnavailableError: the database cannot be reached.
        """
        check_product(product)
        now = to_datetime(self._clock())
        duplicate = f"API {product.id!r} already exists"

        def work(conn: Connection) -> ApiProduct:
            if conn.execute(
                sa.select(api_products.c.id).where(api_products.c.id == product.id)
            ).first():
                raise ConfigurationError(duplicate)
            conn.execute(
                api_products.insert().values(
                    id=product.id,
                    name=product.name,
                    token_server=product.token_server,
                    base_path=product.base_path,
                    created_at=now,
                )
            )
            return product

        return await self._write(work, duplicate=duplicate)

    async def rotate_signing_key(self, *, bits: int = 2048) -> SigningKeyRecord:
        """Create the next signing key; the previous one stays published for its tokens' life.

        Raises:
            KeyFormatError: unsupported key size.
            UnavailableError: the database cannot be reached.
        """
        key = generate_private_key(bits)  # slow: outside the transaction
        now = to_datetime(self._clock())
        until = to_datetime(self._clock() + self._publish_seconds)

        def work(conn: Connection) -> SigningKeyRecord:
            conn.execute(_ACTIVE_KEY_UPDATE, {"until": until})
            return self._insert_signing_key(conn, key, now)

        return await self._write(work)

    async def retire_signing_key(self, kid: str) -> SigningKeyRecord:
        """Withdraw a rotated-out signing key from JWKS before its window ends.

        Raises:
            NotFoundError: unknown kid.
            ConfigurationError: it is the active signing key (rotate first).
            UnavailableError: the database cannot be reached.
        """

        def work(conn: Connection) -> SigningKeyRecord:
            row = conn.execute(sa.select(signing_keys).where(signing_keys.c.kid == kid)).first()
            if row is None:
                raise NotFoundError(f"no signing key {kid!r}")
            if row.publish_until is None and not row.retired:
                raise ConfigurationError("cannot retire the active signing key: rotate first")
            conn.execute(
                sa.update(signing_keys).where(signing_keys.c.kid == kid).values(retired=True)
            )
            row = conn.execute(sa.select(signing_keys).where(signing_keys.c.kid == kid)).one()
            return self._signing_record(row)

        return await self._write(work)

    async def encrypt_signing_keys(
        self, *, previous_password: bytes | None = None
    ) -> tuple[int, int]:
        """Store every signing key encrypted with this registry's key-encryption key.

        Keys stored in the clear, and with ``previous_password`` keys encrypted under that
        earlier key, are rewritten; keys already under the current key are left as they are.
        One transaction: every key is rewritten, or none is. Returns (rewritten, total).

        Raises:
            ConfigurationError: no key-encryption key is set, or a stored key opens with
                neither the current nor the previous key.
            UnavailableError: the database cannot be reached.
        """
        current = self._key_password
        if not current:
            raise ConfigurationError(
                "set TAAP_KEY_ENCRYPTION_KEY to the key the signing keys should be stored under"
            )

        def work(conn: Connection) -> tuple[int, int]:
            rows = conn.execute(sa.select(signing_keys.c.kid, signing_keys.c.pem)).all()
            rewritten = 0
            for kid, pem in rows:
                key = _key_to_rewrap(kid, pem, current, previous_password)
                if key is None:
                    continue  # already under the current key
                conn.execute(
                    sa.update(signing_keys)
                    .where(signing_keys.c.kid == kid)
                    .values(pem=key.to_pem(current).decode("ascii"))
                )
                rewritten += 1
            return rewritten, len(rows)

        done = await self._write(work)
        self._private_keys.clear()  # cached by stored PEM, which just changed
        return done

    async def close(self) -> None:
        """Release the connection pool."""
        await self._runner.dispose()

    # -- bootstrap ----------------------------------------------------------------------
    def bootstrap(self, conn: Connection) -> None:
        """Migrate to the newest schema and create a signing key if none is active
        (runs inside :func:`open_registry`'s locked transaction)."""
        _bootstrap(conn, now=to_datetime(self._clock()), key_password=self._key_password)

    # -- helpers (run inside a connection) ----------------------------------------------
    async def _write(self, work: Callable[[Connection], T], *, duplicate: str = "") -> T:
        try:
            return await self._runner.write(work)
        except sa_exc.IntegrityError as exc:
            # Only a concurrent writer gets here: the checks inside ``work`` come first.
            raise ConfigurationError(duplicate or "conflicting registry change") from exc

    def _touch(
        self, conn: Connection, client_id: str, now: datetime, *, status: str | None = None
    ) -> None:
        if is_decoy(client_id):
            raise NotFoundError(f"unknown client {client_id!r}")  # stored, but no client
        values: dict[str, Any] = {"updated_at": now}
        if status is not None:
            values["status"] = status
        done = conn.execute(sa.update(clients).where(clients.c.id == client_id).values(**values))
        if done.rowcount == 0:
            raise NotFoundError(f"unknown client {client_id!r}")

    @staticmethod
    def _require_product(conn: Connection, api_id: str) -> None:
        if not conn.execute(
            sa.select(api_products.c.id).where(api_products.c.id == api_id)
        ).first():
            raise NotFoundError(f"unknown API {api_id!r}")

    def _insert_secret(
        self, conn: Connection, client_id: str, plain: str, *, weak: bool, now: datetime
    ) -> None:
        conn.execute(
            client_secrets.insert().values(
                client_id=client_id,
                digest=hash_secret(self._pepper, plain).hex(),
                weak=weak,
                created_at=now,
                expires_at=None,
            )
        )

    def _insert_key(self, conn: Connection, client_id: str, key: PublicKey, now: datetime) -> None:
        pem = key.to_pem().decode("ascii")
        self._public_keys.setdefault(pem, key)
        conn.execute(
            client_keys.insert().values(
                client_id=client_id, thumbprint=key.thumbprint, pem=pem, created_at=now
            )
        )

    def _insert_signing_key(
        self, conn: Connection, key: PrivateKey, now: datetime
    ) -> SigningKeyRecord:
        self._private_keys[_store_signing_key(conn, key, now, self._key_password)] = key
        return SigningKeyRecord(kid=key.thumbprint, key=key, created_at=now)

    def _load(self, conn: Connection, client_id: str, now: datetime) -> ClientRecord:
        rows = conn.execute(_CLIENT_SQL, {"cid": client_id, "now": now}).all()
        record = self._record(client_id, rows)
        if record is None:
            raise NotFoundError(f"unknown client {client_id!r}")
        return record

    def _public_key(self, pem: str) -> PublicKey:
        key = self._public_keys.get(pem)
        if key is None:
            if len(self._public_keys) >= _MAX_PARSED_KEYS:
                self._public_keys.clear()
            key = self._public_keys[pem] = _load_public_key(pem)
        return key

    def _signing_record(self, row: Row[Any]) -> SigningKeyRecord:
        key = self._private_keys.get(row.pem)
        if key is None:
            try:
                key = load_private_key(row.pem, self._key_password)
            except KeyFormatError as exc:
                raise ConfigurationError(
                    f"signing key {row.kid} cannot be loaded: {exc.description} (is "
                    "TAAP_KEY_ENCRYPTION_KEY right? Keys stored before it was set are encrypted "
                    "with `taap keys encrypt`)"
                ) from exc
            self._private_keys[row.pem] = key
        return SigningKeyRecord(
            kid=row.kid,
            key=key,
            created_at=_utc(row.created_at),
            publish_until=_utc(row.publish_until) if row.publish_until is not None else None,
            retired=bool(row.retired),
        )

    def _record(self, client_id: str, rows: Sequence[Sequence[Any]]) -> ClientRecord | None:
        head = None
        found = True
        digests: list[bytes] = []
        weak = False
        keys: list[tuple[int, str]] = []
        apis: list[str] = []
        for row in rows:
            kind, a = row[0], row[1]
            if kind == "c":
                head = (a, row[2], row[3], row[4])
                found = row[5] is None or bool(row[5])  # NULL in listings; False: the decoy
            elif kind == "s":
                digests.append(bytes.fromhex(a))
                weak = weak or bool(row[5])
            elif kind == "k":
                keys.append((row[6], row[2]))  # (registration order, PEM)
            else:
                apis.append(a)
        if head is None:
            return None
        name, status, created, updated = head
        keys.sort()
        # Built in full even for the decoy, so an unknown id costs what a known one does.
        record = ClientRecord(
            client_id=client_id,
            name=name,
            status=status,
            secret_digests=tuple(digests),
            weak_secret=weak,
            keys=tuple(self._public_key(pem) for _, pem in keys),
            apis=tuple(sorted(apis)),
            created_at=_utc(created),
            updated_at=_utc(updated),
        )
        return record if found else None


def _key_to_rewrap(kid: str, pem: str, current: bytes, previous: bytes | None) -> PrivateKey | None:
    """The stored key, when it must be written again under ``current``; else ``None``."""
    if "ENCRYPTED" not in pem:
        return load_private_key(pem)
    for password, rewrap in ((current, False), (previous, True)):
        if password:
            try:
                key = load_private_key(pem, password)
            except KeyFormatError:
                continue
            return key if rewrap else None
    raise ConfigurationError(
        f"signing key {kid} is encrypted under another key-encryption key: name the variable "
        "that holds it with --previous-key-env"
    )


def _store_signing_key(
    conn: Connection, key: PrivateKey, now: datetime, password: bytes | None
) -> str:
    pem = key.to_pem(password).decode("ascii")
    conn.execute(
        signing_keys.insert().values(
            kid=key.thumbprint, pem=pem, created_at=now, publish_until=None, retired=False
        )
    )
    return pem


def _bootstrap(
    conn: Connection, *, now: datetime, key_password: bytes | None, revision: str = "head"
) -> None:
    migrations.upgrade(conn, revision)
    if migrations.current_revision(conn) != migrations.head_revision():
        return  # an explicit older target: its schema may not hold signing keys as we do
    active = conn.execute(
        sa.select(signing_keys.c.kid).where(
            signing_keys.c.retired.is_(False), signing_keys.c.publish_until.is_(None)
        )
    ).first()
    if active is None:
        _store_signing_key(conn, generate_private_key(2048), now, key_password)


async def upgrade_database(
    database_url: str | DatabaseUrl,
    *,
    revision: str = "head",
    clock: Callable[[], float] = time.time,
    key_password: bytes | None = None,
) -> str | None:
    """Run the migrations up to ``revision`` and create a signing key if none is active
    (``taap db upgrade``; no pepper needed). Returns the revision reached.

    Raises:
        ConfigurationError: bad URL or missing driver.
        UnavailableError: the database cannot be reached.
    """
    database = _parsed(database_url)
    runner = make_runner(database)
    try:
        await runner.bootstrap(
            lambda conn: _bootstrap(
                conn, now=to_datetime(clock()), key_password=key_password, revision=revision
            )
        )
        return await runner.read(migrations.current_revision)
    finally:
        await runner.dispose()


async def downgrade_database(database_url: str | DatabaseUrl, revision: str) -> str | None:
    """Take the schema back to ``revision`` (``base``: drop every registry table).

    Raises:
        ConfigurationError: bad URL or missing driver.
        UnavailableError: the database cannot be reached.
    """
    runner = make_runner(_parsed(database_url))
    try:
        await runner.bootstrap(lambda conn: migrations.downgrade(conn, revision))
        return await runner.read(migrations.current_revision)
    finally:
        await runner.dispose()


def _parsed(database_url: str | DatabaseUrl) -> DatabaseUrl:
    if isinstance(database_url, DatabaseUrl):
        return database_url
    return parse_database_url(database_url)


async def open_registry(
    database_url: str | DatabaseUrl,
    *,
    pepper: bytes,
    clock: Callable[[], float] = time.time,
    migrate: bool = True,
    client_id_prefix: str = DEFAULT_CLIENT_ID_PREFIX,
    key_publish_seconds: float = DEFAULT_KEY_PUBLISH_SECONDS,
    key_password: bytes | None = None,
    mode: str | None = None,
) -> SqlRegistry:
    """Connect, migrate to the newest schema, create a signing key if none; the registry.

    ``migrate=False`` only checks that the schema is current (for nodes that must not change
    it). ``mode`` overrides how statements run (``inline``/``thread``; default per backend).

    Raises:
        ConfigurationError: bad URL, missing driver, or (``migrate=False``) an old schema.
        UnavailableError: the database cannot be reached.
    """
    database = _parsed(database_url)
    if not pepper:
        raise ConfigurationError("the registry needs a non-empty pepper")
    check_prefix(client_id_prefix)  # before any engine exists
    runner = make_runner(database, mode=mode)
    registry = SqlRegistry(
        runner,
        pepper=pepper,
        database=database,
        clock=clock,
        client_id_prefix=client_id_prefix,
        key_publish_seconds=key_publish_seconds,
        key_password=key_password,
    )
    try:
        if migrate:
            await runner.bootstrap(registry.bootstrap)
        else:
            current = await runner.read(migrations.current_revision)
            if current != migrations.head_revision():
                raise ConfigurationError(
                    f"the registry schema is at {current or 'nothing'}, this taap needs "
                    f"{migrations.head_revision()}: run `taap db upgrade`"
                )
    except BaseException:
        await runner.dispose()
        raise
    return registry
