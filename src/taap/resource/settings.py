"""The guard's settings (TAAP.md A8), built once at the edge and passed down."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from taap.core.pop import PopPolicy
from taap.errors import ConfigurationError

__all__ = ["GuardSettings"]

_MIB = 1024 * 1024


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be an integer, got {raw!r}") from exc
    if value < minimum:
        raise ConfigurationError(f"{name} must be >= {minimum}")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class GuardSettings:
    """How the guard judges requests. Defaults are A8's."""

    policy: PopPolicy = field(default_factory=PopPolicy)
    #: leeway (s) for the access token's ``exp``/``iat``; the PoP's is ``policy.leeway``
    leeway: int = 10
    max_body: int = _MIB
    max_headers: int = 16 * 1024
    jwks_ttl: int = 300
    jwks_min_refresh: int = 30
    redis_url: str | None = None
    #: verified access tokens remembered (0: verify every token in full); not an A8 setting
    token_cache: int = 4096

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GuardSettings:
        """Read the ``TAAP_*`` variables of A8 that concern the guard.

        Raises:
            ConfigurationError: a variable is not a valid value.
        """
        env = os.environ if environ is None else environ
        leeway = _int(env, "TAAP_LEEWAY", 10)
        try:
            policy = PopPolicy.named(
                env.get("TAAP_POP_POLICY") or "strict",
                leeway=leeway,
                max_ttl=_int(env, "TAAP_POP_MAX_TTL", 120, 1),
                max_age=_int(env, "TAAP_POP_MAX_AGE", 60, 1),
            )
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from exc
        return cls(
            policy=policy,
            leeway=leeway,
            max_body=_int(env, "TAAP_MAX_BODY", _MIB, 0),
            max_headers=_int(env, "TAAP_MAX_HEADERS", 16 * 1024, 1024),
            jwks_ttl=_int(env, "TAAP_JWKS_TTL", 300, 1),
            jwks_min_refresh=_int(env, "TAAP_JWKS_MIN_REFRESH", 30, 0),
            redis_url=env.get("TAAP_REDIS_URL") or None,
            token_cache=_int(env, "TAAP_GUARD_TOKEN_CACHE", 4096, 0),
        )
