"""The guard's settings (docs/server.md), built once at the edge and passed down."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from taap.core.pop import PopPolicy
from taap.errors import ConfigurationError

if TYPE_CHECKING:
    from taap.settings import SharedSettings

__all__ = ["GuardSettings"]


@dataclass(frozen=True, slots=True, kw_only=True)
class GuardSettings:
    """How the guard judges requests. Defaults as in docs/protocol.md#settings
    (:class:`taap.settings.SharedSettings` holds them, with the range of each)."""

    policy: PopPolicy = field(default_factory=PopPolicy)
    #: leeway (s) for the access token's ``exp``/``iat``; the PoP's is ``policy.leeway``
    leeway: int = 10
    max_body: int = 1024 * 1024
    max_headers: int = 16 * 1024
    jwks_ttl: float = 300
    jwks_min_refresh: float = 30
    redis_url: str | None = None
    #: ``TAAP_REVOCATION_MAX_AGE``: the oldest revocation state (s) a request is judged by
    revocation_max_age: float = 5
    #: verified access tokens remembered (0: verify every token in full); not in the settings table
    #: (docs/protocol.md#settings)
    token_cache: int = 4096
    #: worker processes serving the guarded app; more than one needs a shared replay store
    #: (:meth:`from_env` reads ``WEB_CONCURRENCY``, uvicorn's and gunicorn's worker count)
    workers: int = 1

    @classmethod
    def from_settings(cls, settings: SharedSettings) -> GuardSettings:
        """The guard's part of ``settings``: the same values the token server (a
        ``ServerSettings``) or the guard's own environment (:meth:`from_env`) hold."""
        return cls(
            policy=settings.policy,
            leeway=settings.leeway,
            max_body=settings.max_body,
            max_headers=settings.max_headers,
            jwks_ttl=settings.jwks_ttl,
            jwks_min_refresh=settings.jwks_min_refresh,
            redis_url=settings.redis_url,
            revocation_max_age=settings.revocation_max_age,
            token_cache=settings.guard_token_cache,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GuardSettings:
        """Read the ``TAAP_*`` variables of docs/protocol.md#settings that concern the guard, and
        ``WEB_CONCURRENCY`` (the worker count uvicorn and gunicorn default to) as ``workers``
        (``environ`` defaults to ``os.environ``). Needs pydantic-settings (the ``server`` extra).

        Raises:
            ConfigurationError: a variable is not a valid value; the message names it.
        """
        # Imported here: the guard itself runs on the base install, without pydantic.
        from taap.settings import SharedSettings

        environ = os.environ if environ is None else environ
        workers = environ.get("WEB_CONCURRENCY", "").strip() or "1"
        if not workers.isdigit() or int(workers) < 1:
            raise ConfigurationError("WEB_CONCURRENCY must be a positive whole number")
        guard = cls.from_settings(SharedSettings.load(environ=environ))
        return replace(guard, workers=int(workers))
