"""Profiles and ``TAAP_*`` variables: where the CLI finds credentials when flags are absent.

Precedence, highest first: command-line flags, ``TAAP_*`` environment variables, the profile in
``$XDG_CONFIG_HOME/taap/config.toml`` (default ``~/.config/taap/config.toml``). The profile is
``--profile``, else ``$TAAP_PROFILE``, else ``default``. A profile may hold the secret itself
(the file is written 0600) or, better, the name of an environment variable that holds it.

======================  ===========================================
Variable                Meaning
======================  ===========================================
``TAAP_PROFILE``        profile name
``TAAP_CONFIG``         config file path (instead of the XDG default)
``TAAP_TOKEN_URL``      token endpoint URL (``…/oauth2/v2/tokens``)
``TAAP_CLIENT_ID``      client id
``TAAP_CLIENT_SECRET``  client secret (the value)
``TAAP_KEY_FILE``       PoP private key file
``TAAP_KEY_PASSWORD``   password of an encrypted key (the value)
``TAAP_TOKEN_VERSION``  ``v2`` or ``v6`` (overrides the URL path)
``TAAP_STORE_ID``       v6 ``storeId``
``TAAP_DEALER_CODE``    v6 ``dealerCode``
======================  ===========================================
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from taap.client.credentials import ClientCredentials, Secret
from taap.client.token_request_builder import TokenEndpoint, TokenVersion
from taap.errors import ConfigurationError

__all__ = [
    "CONFIG_FILE_CAP",
    "ENV_VARS",
    "ClientSettings",
    "Profile",
    "config_path",
    "load_profile",
    "profile_name",
    "resolve_settings",
    "save_profile",
]

#: Profile field → the environment variable that overrides it.
ENV_VARS: Mapping[str, str] = {
    "token_url": "TAAP_TOKEN_URL",
    "client_id": "TAAP_CLIENT_ID",
    "client_secret": "TAAP_CLIENT_SECRET",
    "key": "TAAP_KEY_FILE",
    "version": "TAAP_TOKEN_VERSION",
    "store_id": "TAAP_STORE_ID",
    "dealer_code": "TAAP_DEALER_CODE",
}
#: A config file holds a few profiles of a few hundred bytes each; reading stops past this,
#: so ``TAAP_CONFIG=/dev/zero`` cannot fill memory.
CONFIG_FILE_CAP = 1024 * 1024
_PASSWORD_VAR = "TAAP_KEY_PASSWORD"
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class Profile:
    """One profile's fields as stored (all optional). ``client_secret`` is the plain value."""

    token_url: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    client_secret_env: str | None = None
    key: str | None = None
    password_env: str | None = None
    version: str | None = None
    store_id: str | None = None
    dealer_code: str | None = None

    def items(self) -> list[tuple[str, str]]:
        """The fields that are set, in declaration order."""
        pairs = [(f.name, getattr(self, f.name)) for f in fields(self)]
        return [(name, value) for name, value in pairs if value is not None]

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={'***' if name == 'client_secret' else value!r}"
            for name, value in self.items()
        )
        return f"Profile({shown})"


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class ClientSettings:
    """Everything needed to run the four steps, resolved from flags, env and profile."""

    token_url: str
    client_id: str
    client_secret: Secret
    key_path: Path
    password: Secret | None
    version: TokenVersion | None
    store_id: str | None
    dealer_code: str | None

    def endpoint(self) -> TokenEndpoint:
        """The token endpoint these settings name.

        Raises:
            ConfigurationError: bad URL, version, or v6 fields for a v2 endpoint.
        """
        try:
            return TokenEndpoint(
                url=self.token_url,
                version=self.version,
                store_id=self.store_id,
                dealer_code=self.dealer_code,
            )
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from exc

    def credentials(self) -> ClientCredentials:
        """Load the key (once) and bundle the credentials.

        Raises:
            KeyFormatError: unreadable key or wrong password.
            OSError: the key file cannot be read.
        """
        password = self.password.reveal() if self.password is not None else None
        return ClientCredentials.from_key_file(
            client_id=self.client_id,
            client_secret=self.client_secret,
            key_path=self.key_path,
            password=password,
        )

    def __repr__(self) -> str:
        return (
            f"ClientSettings(token_url={self.token_url!r}, client_id={self.client_id!r}, "
            f"client_secret=***, key_path={str(self.key_path)!r})"
        )


def config_path(environ: Mapping[str, str]) -> Path:
    """``$TAAP_CONFIG``, else ``$XDG_CONFIG_HOME/taap/config.toml``, else ``~/.config/…``
    (variables of ``environ``, the caller's environment)."""
    if environ.get("TAAP_CONFIG"):
        return Path(environ["TAAP_CONFIG"])
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "taap" / "config.toml"


def profile_name(flag: str | None, environ: Mapping[str, str]) -> str:
    """The profile to use: the flag, else ``$TAAP_PROFILE`` of ``environ``, else ``default``.

    Raises:
        ConfigurationError: a name other than letters, digits, ``_`` and ``-``.
    """
    name = flag or environ.get("TAAP_PROFILE") or "default"
    if not _NAME.match(name):
        raise ConfigurationError("profile names use letters, digits, '_' and '-' only")
    return name


def _read(path: Path) -> dict[str, dict[str, object]]:
    if not path.exists():
        return {}
    with path.open("rb") as handle:
        raw = handle.read(CONFIG_FILE_CAP + 1)
    if len(raw) > CONFIG_FILE_CAP:
        raise ConfigurationError(f"{path} is too large for a config file (> 1 MiB)")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{path} is not valid TOML: {exc}") from exc
    return {k: v for k, v in data.items() if isinstance(v, dict)}


def load_profile(name: str, path: Path, *, required: bool = False) -> Profile:
    """The profile ``name`` of the file at ``path`` (empty when absent and not ``required``).

    Raises:
        ConfigurationError: unreadable file, a non-string value, or a required profile missing.
    """
    table = _read(path).get(name)
    if table is None:
        if required:
            raise ConfigurationError(f"no profile {name!r} in {path}")
        return Profile()
    known = {f.name for f in fields(Profile)}
    values: dict[str, str] = {}
    for key, value in table.items():
        if key not in known:
            continue  # written by a newer version: ignore rather than fail
        if not isinstance(value, str):
            raise ConfigurationError(f"{path}: [{name}] {key} must be a string")
        values[key] = value
    return Profile(**values)


def _toml_string(value: str) -> str:
    if _CONTROL.search(value):
        raise ConfigurationError("profile values cannot contain control characters")
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string


def save_profile(name: str, profile: Profile, path: Path) -> Path:
    """Write ``profile`` as ``[name]`` into ``path`` (other profiles kept), mode 0600.

    Raises:
        ConfigurationError: bad profile name or value, or an unreadable existing file.
        OSError: the file cannot be written.
    """
    profile_name(name, {})
    tables = _read(path)
    tables[name] = dict(profile.items())
    lines = ["# taap client profiles (taap configure). Keep this file private (0600).", ""]
    for table, values in tables.items():
        lines.append(f"[{table}]")
        for key, value in values.items():
            if isinstance(value, str):
                lines.append(f"{key} = {_toml_string(value)}")
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)
    return path


def _pick(
    flag: str | None, env_name: str, stored: str | None, env: Mapping[str, str]
) -> str | None:
    return flag or env.get(env_name) or stored


def _env_secret(var: str, env: Mapping[str, str], what: str) -> Secret:
    value = env.get(var)
    if not value:
        raise ConfigurationError(f"{what}: environment variable {var} is not set")
    return Secret(value)


def resolve_settings(
    flags: Profile,
    *,
    profile: Profile,
    environ: Mapping[str, str],
    require_url: bool = True,
) -> ClientSettings:
    """Merge flags over the ``TAAP_*`` variables of ``environ`` (the caller's environment) over
    the profile, and read referenced secrets from ``environ``.

    Raises:
        ConfigurationError: a required value is missing, or a referenced variable is unset.
    """
    merged = {
        name: _pick(getattr(flags, name), var, getattr(profile, name), environ)
        for name, var in ENV_VARS.items()
        if name != "client_secret"
    }
    missing = [
        option
        for option, name in (("--url/--token-url", "token_url"), ("--client-id", "client_id"))
        if not merged[name] and (require_url or name != "token_url")
    ]
    if not merged["key"]:
        missing.append("--key")
    # The secret: a flag (value or variable name), then TAAP_CLIENT_SECRET, then the profile.
    if flags.client_secret:
        secret: Secret | None = Secret(flags.client_secret)
    elif flags.client_secret_env:
        secret = _env_secret(flags.client_secret_env, environ, "--client-secret-env")
    elif environ.get(ENV_VARS["client_secret"]):
        secret = Secret(environ[ENV_VARS["client_secret"]])
    elif profile.client_secret_env:
        secret = _env_secret(profile.client_secret_env, environ, "profile client_secret_env")
    elif profile.client_secret:
        secret = Secret(profile.client_secret)
    else:
        secret = None
        missing.append("--client-secret-env/--client-secret")
    if missing:
        raise ConfigurationError(
            "missing " + ", ".join(missing) + " (flags, TAAP_* variables or a profile)"
        )
    client_id, key = merged["client_id"], merged["key"]
    if secret is None or not client_id or not key:  # reported above; narrows the types
        raise ConfigurationError("missing credentials")
    password_var = flags.password_env or profile.password_env
    if flags.password_env:
        password: Secret | None = _env_secret(flags.password_env, environ, "--password-env")
    elif environ.get(_PASSWORD_VAR):
        password = Secret(environ[_PASSWORD_VAR])
    elif password_var:
        password = _env_secret(password_var, environ, "profile password_env")
    else:
        password = None
    version: TokenVersion | None = None
    if merged["version"] == "v2":
        version = "v2"
    elif merged["version"] == "v6":
        version = "v6"
    elif merged["version"]:
        raise ConfigurationError("token version must be v2 or v6")
    return ClientSettings(
        token_url=merged["token_url"] or "",
        client_id=client_id,
        client_secret=secret,
        key_path=Path(key).expanduser(),
        password=password,
        version=version,
        store_id=merged["store_id"],
        dealer_code=merged["dealer_code"],
    )
