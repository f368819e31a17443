"""The gateway's settings (docs/gateway.md): the shared ones (docs/protocol.md#settings), plus
where each product's calls go and how long an upstream may take.

Read once at the edge: ``taap gateway`` calls :meth:`GatewaySettings.load` with its flags, the
``TAAP_*`` variables and, with ``--config``, a TOML file (:func:`read_config_file`); flags win
over variables, variables over the file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from taap.errors import ConfigurationError
from taap.resource.products import DEFAULT_PRODUCT_PATHS
from taap.settings import Networks, SharedSettings, trusted_networks

__all__ = [
    "CONFIG_FILE_CAP",
    "GatewaySettings",
    "load_settings",
    "read_config_file",
    "trusted_networks",
    "upstream_origin",
]

#: bytes a ``--config`` file may have
CONFIG_FILE_CAP = 64 * 1024


def _pairs(value: Any, what: str) -> Any:
    """``a=x,b=y`` (a variable's text) as a dict; other values unchanged."""
    if not isinstance(value, str):
        return value
    found: dict[str, str] = {}
    for part in value.split(","):
        if not part.strip():
            continue
        name, sep, item = part.partition("=")
        if not sep or not name.strip() or not item.strip():
            raise ValueError(f"{what} entries are PRODUCT=VALUE, got {part.strip()!r}")
        found[name.strip()] = item.strip()
    return found


def upstream_origin(url: str) -> str:
    """``url`` as ``scheme://host[:port]``.

    Raises:
        ValueError: not http(s), no host, or a path, query, fragment or user part: calls go to
            the upstream with their own path and query, unchanged.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"upstream {url!r} must be an http:// or https:// URL")
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(
            f"upstream {url!r} must be scheme://host[:port] only: calls keep their own path"
        )
    try:
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError as exc:
        raise ValueError(f"upstream {url!r}: {exc}") from None
    return f"{parts.scheme}://{parts.netloc}"


class GatewaySettings(SharedSettings):
    """``taap gateway``'s settings: the shared settings plus the gateway's own."""

    token_server: str
    #: product id -> upstream origin (``TAAP_UPSTREAMS=connectivity=http://10.0.0.5:8080,...``)
    upstreams: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    #: product id -> base path, for products outside the default base paths or moved from them
    base_paths: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    #: serve ``GET /auth`` for nginx's ``auth_request``
    auth_request: bool = False
    #: seconds an upstream may take to answer (and to hand over each further piece)
    upstream_timeout: float = Field(default=30.0, gt=0, le=3600)
    #: connections kept open to each upstream, per worker process
    upstream_connections: int = Field(default=100, ge=1, le=10_000)
    strip_authorization: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    forwarded_allow_ips: str = ""
    #: seconds in-flight calls may take to finish after SIGTERM
    shutdown_timeout: float = Field(default=30.0, ge=0, le=3600)

    @field_validator("upstreams", mode="before")
    @classmethod
    def _parse_upstreams(cls, value: Any) -> Any:
        return _pairs(value, "upstream")

    @field_validator("base_paths", mode="before")
    @classmethod
    def _parse_base_paths(cls, value: Any) -> Any:
        return _pairs(value, "base path")

    @field_validator("upstreams")
    @classmethod
    def _check_upstreams(cls, value: dict[str, str]) -> dict[str, str]:
        return {product: upstream_origin(url) for product, url in value.items()}

    @field_validator("base_paths")
    @classmethod
    def _check_base_paths(cls, value: dict[str, str]) -> dict[str, str]:
        for product, path in value.items():
            if not path.startswith("/") or "?" in path or "%" in path or "/." in path:
                raise ValueError(
                    f"base path of {product!r} must be a plain path such as /orders/v1"
                )
        return {product: path.rstrip("/") or "/" for product, path in value.items()}

    @field_validator("token_server")
    @classmethod
    def _check_token_server(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an absolute http(s) URL")
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _check_networks(cls, value: str) -> str:
        trusted_networks(value)
        return value

    @model_validator(mode="after")
    def _check_whole(self) -> GatewaySettings:
        if not self.upstreams and not self.auth_request:
            raise ValueError("nothing to serve: give --upstream PRODUCT=URL or --auth-request")
        known = set(DEFAULT_PRODUCT_PATHS.values()) | set(self.base_paths)
        missing = sorted(set(self.upstreams) - known)
        if missing:
            raise ValueError(
                f"no base path for product {', '.join(missing)}: give --base-path PRODUCT=/path"
            )
        if self.workers > 1 and not self.redis_url:
            raise ValueError(
                f"--workers {self.workers} needs --redis-url (TAAP_REDIS_URL): every worker "
                "must see the PoPs the others accepted (docs/gateway.md)"
            )
        return self

    def product_paths(self, products: set[str] | None = None) -> dict[str, str]:
        """Base path -> product id of ``products`` (default: every product with a base path)."""
        paths = {product: base for base, product in DEFAULT_PRODUCT_PATHS.items()}
        paths.update(self.base_paths)
        return {
            base: product
            for product, base in paths.items()
            if products is None or product in products
        }

    @property
    def networks(self) -> Networks:
        """The proxies whose ``X-Forwarded-*`` and ``X-Request-Id`` are believed."""
        return trusted_networks(self.forwarded_allow_ips)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The settings of a TOML file, by field name (``[upstreams]`` and ``[base_paths]`` are
    tables of product = value).

    Raises:
        ConfigurationError: unreadable, too large, not TOML, or a name that is no setting.
    """
    where = Path(path)
    try:
        with where.open("rb") as handle:
            data = handle.read(CONFIG_FILE_CAP + 1)
    except OSError as exc:
        raise ConfigurationError(f"cannot read {where}: {exc.strerror or exc}") from None
    if len(data) > CONFIG_FILE_CAP:
        raise ConfigurationError(f"{where} is larger than {CONFIG_FILE_CAP} bytes")
    try:
        values = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"{where} is not valid TOML: {exc}") from None
    names = {name.replace("-", "_"): value for name, value in values.items()}
    unknown = sorted(set(names) - set(GatewaySettings.model_fields))
    if unknown:
        raise ConfigurationError(f"{where}: unknown setting {', '.join(unknown)}")
    return names


def load_settings(
    *,
    config: str | None = None,
    environ: Mapping[str, str] | None = None,
    **flags: Any,
) -> GatewaySettings:
    """Flags over ``TAAP_*`` variables over the ``config`` file.

    Raises:
        ConfigurationError: a setting is invalid; the message names it.
    """
    file_values = read_config_file(config) if config else None
    return GatewaySettings.load(environ=environ, file_values=file_values, **flags)
