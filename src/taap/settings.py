"""The ``TAAP_*`` settings model (docs/server.md) that the token server, the guard and the CLI
share.

:class:`TaapSettings` is how every settings class here is read: :meth:`TaapSettings.load` takes
the variables from a mapping (``os.environ`` unless given) with explicit values on top, and
turns a bad value into one :class:`~taap.errors.ConfigurationError` naming the variable.
Constructing a class with keywords reads no environment at all: the environment is read once,
at the edge (``taap`` commands, or whoever calls ``load``), and the result is passed down.

:class:`SharedSettings` holds the settings (docs/protocol.md#settings) both roles read, with one
default and one range each: ``taap.server.settings.ServerSettings`` extends it, and
``taap.resource.GuardSettings.from_settings`` takes the guard's values from any instance.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from typing import Any, Literal, Self

from pydantic import Field, ValidationError, field_validator
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from taap.core.pop import PolicyName, PopPolicy
from taap.errors import ConfigurationError

__all__ = ["ENV_PREFIX", "Networks", "SharedSettings", "TaapSettings", "trusted_networks"]

ENV_PREFIX = "TAAP_"

#: the proxies whose forwarding headers are believed: networks, or every peer
Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] | Literal["*"]


def trusted_networks(text: str) -> Networks:
    """Parse ``TAAP_FORWARDED_ALLOW_IPS``: comma-separated addresses or CIDRs, or ``*``.

    Raises:
        ValueError: an entry is neither an address nor a network.
    """
    entries = [part.strip() for part in text.split(",") if part.strip()]
    if "*" in entries:
        return "*"
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


class _MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source, over a given mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # The names are matched without regard to case, as pydantic-settings does by default.
        return {name.lower(): value for name, value in self._environ.items()}


def _problem(error: ErrorDetails) -> str:
    loc = error["loc"]
    message = str(error["msg"]).removeprefix("Value error, ")
    if not loc:  # a check across several settings
        return f"settings: {message}"
    field = ".".join(str(part) for part in loc)
    return f"{field} ({ENV_PREFIX}{str(loc[0]).upper()}): {message}"


class TaapSettings(BaseSettings):
    """``TAAP_<NAME>`` variables read by :meth:`load`; keyword construction reads none."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only what the caller passes: load() is the one place that reads variables.
        return (init_settings,)

    @classmethod
    def load(
        cls,
        *,
        environ: Mapping[str, str] | None = None,
        file_values: Mapping[str, Any] | None = None,
        **overrides: Any,
    ) -> Self:
        """The ``TAAP_*`` variables of ``environ`` (default ``os.environ``) with ``overrides``
        on top (command-line flags; ``None`` values are ignored). ``file_values`` (a
        configuration file's, by field name) sit below both.

        Raises:
            ConfigurationError: a setting is invalid; the message names it and its variable.
        """
        given = {name: value for name, value in overrides.items() if value is not None}
        variables = _MappingEnvSource(cls, os.environ if environ is None else environ)()
        try:
            return cls(**(dict(file_values or {}) | variables | given))
        except ValidationError as exc:
            problems = "; ".join(_problem(error) for error in exc.errors())
            raise ConfigurationError(f"invalid settings: {problems}") from None


class SharedSettings(TaapSettings):
    """The settings (docs/protocol.md#settings) of the token server and the guard alike: how a
    request is judged (PoP policy, leeway, caps), how the JWKS is cached, the Redis that holds the
    replay store, and how every taap listener treats slow or surplus connections."""

    redis_url: str | None = None
    pop_policy: PolicyName = "strict"
    #: leeway (s) for the PoP's and the access token's times
    leeway: int = Field(default=10, ge=0, le=300)
    pop_max_ttl: int = Field(default=120, ge=1, le=3600)
    pop_max_age: int = Field(default=60, ge=1, le=3600)
    max_body: int = Field(default=1024 * 1024, ge=1024)
    max_headers: int = Field(default=16 * 1024, ge=1024)
    jwks_ttl: float = Field(default=300.0, gt=0)
    jwks_min_refresh: float = Field(default=30.0, ge=0)
    # Not in the docs/protocol.md#settings: verified access tokens a guard remembers (0: verify
    # every token in full).
    guard_token_cache: int = Field(default=4096, ge=0)
    #: seconds a request head may take in all, from accept or from the end of the last response
    header_timeout: float = Field(default=10.0, gt=0, le=300)
    #: bytes/s a request body must average once its 5 s grace is over
    body_min_rate: int = Field(default=1024, ge=1, le=1024 * 1024 * 1024)
    #: open connections one worker process keeps; more are refused at once
    max_connections: int = Field(default=1000, ge=1, le=1_000_000)
    #: the longest delay (s) before every guard, and introspection, sees a revocation, a
    #: disabled client or an unsubscription; a guard whose revocation state is older refuses
    revocation_max_age: float = Field(default=5.0, ge=1, le=60)

    @field_validator("redis_url")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @property
    def policy(self) -> PopPolicy:
        """The PoP policy with the configured leeway and caps."""
        return PopPolicy.named(
            self.pop_policy,
            leeway=self.leeway,
            max_ttl=self.pop_max_ttl,
            max_age=self.pop_max_age,
        )
