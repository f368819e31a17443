"""Token-server settings (docs/server.md): ``TAAP_*`` environment variables, CLI flags on top.

Build one :class:`ServerSettings` at the edge (``ServerSettings.load()`` in ``taap serve`` or
in the caller of ``create_app``) and pass it down; nothing below reads the environment. The
settings the guard reads too come from :class:`taap.settings.SharedSettings`; the registry's
own (database, pepper, key-encryption key) from :class:`RegistrySettings`, which the registry
commands can load on their own.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from taap.settings import SharedSettings, TaapSettings, trusted_networks
from taap.stores.ratelimit import Rate

__all__ = [
    "Rate",
    "RegistrySettings",
    "ServerSettings",
    "parse_openapi_sources",
    "parse_rate",
    "trusted_networks",
]

TokenMode = Literal["separate", "single"]
LogFormat = Literal["json", "text"]
# More signing threads than this buys nothing for one event loop feeding them (docs/server.md).
_AUTO_SIGN_THREADS_MAX = 4


def parse_rate(text: str) -> Rate:
    """Parse ``BURST/PERIOD`` (``10/6`` = burst 10, one token back every 6 s).

    Raises:
        ValueError: not two positive numbers separated by ``/``.
    """
    burst, sep, per = text.partition("/")
    try:
        rate = Rate(int(burst.strip()), float(per.strip()))
    except ValueError:
        rate = Rate(0, 0.0)
    if not sep or rate.burst < 1 or not rate.per > 0:
        raise ValueError(f"rate {text!r} must be BURST/PERIOD, e.g. 10/6")
    return rate


_PRODUCT_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


def parse_openapi_sources(text: str) -> dict[str, str]:
    """``PRODUCT=SOURCE,…`` (``TAAP_PORTAL_OPENAPI``): SOURCE is a JSON file or an http(s) URL.

    Raises:
        ValueError: an item without ``=``, a product id that is not lower-case letters, digits
            and ``-``, an empty source, or a product named twice.
    """
    found: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        product, sep, source = (piece.strip() for piece in item.partition("="))
        if not sep or not _PRODUCT_ID.fullmatch(product) or not source:
            raise ValueError(
                f"TAAP_PORTAL_OPENAPI items are PRODUCT=FILE-OR-URL, not {item[:60]!r}"
            )
        if product in found:
            raise ValueError(f"TAAP_PORTAL_OPENAPI names {product!r} twice")
        found[product] = source
    return found


class RegistrySettings(TaapSettings):
    """What opens the client registry: the database, the pepper
    (docs/protocol.md#the-client-registry) and the key-encryption key of the private signing keys.
    ``taap serve`` and the registry commands read the same."""

    database_url: str = "sqlite:///./taap.db"
    pepper: SecretStr | None = None
    # Operations (issue 7), not in the settings table (docs/protocol.md#settings).
    key_encryption_key: SecretStr | None = None

    @field_validator("key_encryption_key")
    @classmethod
    def _check_kek(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (a passphrase for PKCS#8 PEM)")
        return value

    def key_password(self) -> bytes | None:
        """The key-encryption key for private signing keys at rest, or None (stored plain)."""
        if self.key_encryption_key is None:
            return None
        return self.key_encryption_key.get_secret_value().encode("utf-8") or None

    def pepper_text(self) -> str | None:
        """``TAAP_PEPPER`` as given, or None (then the registry's rules
        (docs/protocol.md#the-client-registry) decide)."""
        return self.pepper.get_secret_value() if self.pepper else None

    def pepper_bytes(self) -> bytes | None:
        """The pepper from ``TAAP_PEPPER`` as bytes, or None (then the registry decides)."""
        text = self.pepper_text()
        return text.encode("utf-8") if text is not None else None


class ServerSettings(SharedSettings, RegistrySettings):
    """Every setting (docs/protocol.md#settings) of the token server with its default. Environment:
    ``TAAP_<NAME>``."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    issuer: str | None = None
    public_url: str | None = None
    token_mode: TokenMode = "separate"
    token_ttl: int = Field(default=3600, ge=60, le=86400)
    rate_client: str = "10/6"
    rate_address: str = "30/2"
    forwarded_allow_ips: str = ""
    key_refresh: float = Field(default=30.0, ge=0)
    registry_cache: float = Field(default=0.0, ge=0)
    # Not in the docs/protocol.md#settings: bound of the in-process replay store (step 7 of
    # docs/protocol.md#verifying-a-pop names 500,000).
    replay_capacity: int = Field(default=500_000, ge=1)
    with_sample_apis: bool = False
    # The developer portal (docs/portal.md), not in the settings table (docs/protocol.md#settings).
    with_portal: bool = False
    smtp_url: SecretStr = SecretStr("console")
    mail_from: str = "taap@localhost"
    portal_admins: str = ""
    # PRODUCT=FILE-OR-URL pairs: the OpenAPI document the portal's API reference shows.
    portal_openapi: str = ""
    # Operations (issue 7), not in the settings table (docs/protocol.md#settings).
    shutdown_drain: float = Field(default=2.0, ge=0, le=300)
    shutdown_timeout: float = Field(default=20.0, ge=0, le=3600)
    metrics: bool = True
    log_format: LogFormat = "json"
    otel: bool = False
    # Threads that sign tokens off the event loop (cryptography releases the GIL while it signs,
    # as node's libuv pool does for oidc-provider). 0 = sign inline: one worker uses one core.
    # "auto" (see signing_threads): a pool only where a core would otherwise sit idle.
    sign_threads: Annotated[int, Field(ge=0, le=64)] | Literal["auto"] = "auto"

    @field_validator("rate_client", "rate_address")
    @classmethod
    def _check_rate(cls, value: str) -> str:
        parse_rate(value)
        return value

    @field_validator("portal_openapi")
    @classmethod
    def _check_openapi(cls, value: str) -> str:
        parse_openapi_sources(value)
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _check_networks(cls, value: str) -> str:
        trusted_networks(value)
        return value

    @field_validator("public_url", "issuer")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an absolute http(s) URL")
        return value

    @model_validator(mode="after")
    def _check_workers(self) -> ServerSettings:
        if self.workers > 1 and not self.redis_url:
            raise ValueError(
                f"--workers {self.workers} needs --redis-url (TAAP_REDIS_URL): the replay store "
                "and rate limits must be shared by every worker process (docs/server.md)"
            )
        return self

    def signing_threads(self, cpus: int) -> int:
        """How many threads sign tokens on a machine with ``cpus`` usable cores (0 = inline).

        ``auto``: with one worker and two or more cores, ``min(cpus - 1, 4)`` threads, so the
        signatures of one request run beside the event loop's work on the next while the loop
        keeps a core of its own (a thread more only fights the loop for the GIL); with several
        workers the cores are already theirs and the hand-offs would only cost CPU.
        """
        if self.sign_threads != "auto":
            return self.sign_threads
        if self.workers > 1 or cpus < 2:
            return 0
        return min(cpus - 1, _AUTO_SIGN_THREADS_MAX)

    def portal_openapi_sources(self) -> dict[str, str]:
        """``TAAP_PORTAL_OPENAPI``: product id → OpenAPI file path or http(s) URL."""
        return parse_openapi_sources(self.portal_openapi)

    def portal_admin_emails(self) -> tuple[str, ...]:
        """``TAAP_PORTAL_ADMINS``: comma-separated e-mail addresses, lower-cased."""
        return tuple(p.strip().lower() for p in self.portal_admins.split(",") if p.strip())

    # -- derived values -------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """The public base URL (default ``http://127.0.0.1:<port>``)."""
        return self.public_url or f"http://127.0.0.1:{self.port}"

    @property
    def issuer_url(self) -> str:
        """``iss`` of every token: ``--issuer`` or ``<public base URL>/oauth2/v1``."""
        return self.issuer or f"{self.base_url}/oauth2/v1"

    @property
    def client_rate(self) -> Rate:
        return parse_rate(self.rate_client)

    @property
    def address_rate(self) -> Rate:
        return parse_rate(self.rate_address)
