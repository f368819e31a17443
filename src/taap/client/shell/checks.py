"""Checks of what ``taap configure`` stores, one value at a time (so a prompt can ask again)
and for a whole profile (so flags are refused before anything is written)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from taap.client.credentials import KEY_FILE_CAP
from taap.client.profiles import Profile
from taap.client.token_request_builder import TokenEndpoint
from taap.core import load_private_key
from taap.errors import ConfigurationError, KeyFormatError

__all__ = [
    "check_client_id",
    "check_env_name",
    "check_key_file",
    "check_profile",
    "check_token_url",
]

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def check_token_url(value: str) -> str:
    """``value`` when it is an absolute http(s) URL with a host.

    Raises:
        ConfigurationError: anything else.
    """
    try:
        parts = urlsplit(value.strip())
        host = parts.hostname
    except ValueError:
        host = None
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not host:
        raise ConfigurationError(f"token URL {value!r} is not an absolute http(s) URL")
    return value.strip()


def check_client_id(value: str) -> str:
    """``value`` when it can be a client id (non-empty, no ``:``, no control character).

    Raises:
        ConfigurationError: anything else.
    """
    text = value.strip()
    if not text or ":" in text or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise ConfigurationError("a client id is non-empty and has no ':' or control characters")
    return text


def check_env_name(value: str) -> str:
    """``value`` when it is a valid environment variable name (``MY_SECRET``).

    Raises:
        ConfigurationError: anything else (``$MY_SECRET``, ``my-secret``, ``1SECRET``).
    """
    text = value.strip()
    if not _ENV_NAME.fullmatch(text):
        raise ConfigurationError(
            f"{value!r} is not an environment variable name "
            "(letters, digits and '_', not starting with a digit; no '$')"
        )
    return text


def check_key_file(value: str, password: str | None = None) -> Path:
    """The absolute path of a readable private key file that loads (with ``password``).

    Raises:
        ConfigurationError: missing, unreadable, not a key, or encrypted without a password.
    """
    path = Path(value.strip()).expanduser().resolve()
    try:
        with path.open("rb") as handle:
            data = handle.read(KEY_FILE_CAP + 1)
    except OSError as exc:
        raise ConfigurationError(f"key file {path}: {exc.strerror or exc}") from None
    try:
        load_private_key(data, password)
    except KeyFormatError as exc:
        hint = "" if password else " (an encrypted key needs --password-env set)"
        raise ConfigurationError(f"key file {path}: {exc.description}{hint}") from None
    return path


def check_profile(profile: Profile, environ: Mapping[str, str]) -> Profile:
    """``profile`` with its values checked and the key path made absolute.

    The key's password is read from ``environ`` through ``password_env`` when that variable
    is set; a key that needs one that is not set yet is refused (set it, then configure).

    Raises:
        ConfigurationError: the first value refused, named.
    """
    if profile.token_url is not None:
        check_token_url(profile.token_url)
    if profile.client_id is not None:
        check_client_id(profile.client_id)
    for name in (profile.client_secret_env, profile.password_env):
        if name is not None:
            check_env_name(name)
    key = profile.key
    if key is not None:
        password = environ.get(profile.password_env) if profile.password_env else None
        key = str(check_key_file(key, password or None))
    if profile.token_url is not None:
        try:
            TokenEndpoint(
                url=profile.token_url,
                version="v6" if profile.version == "v6" else None,
                store_id=profile.store_id,
                dealer_code=profile.dealer_code,
            )
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
    fields = {name: value for name, value in profile.items() if name != "key"}
    return Profile(**fields, key=key)
