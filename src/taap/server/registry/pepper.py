"""Where the secret-hashing pepper comes from (docs/registry.md).

1. ``TAAP_PEPPER`` when set (its UTF-8 bytes; at least 16 characters);
2. otherwise, with a SQLite file, a file ``pepper`` beside the database file, created 0600 with
   256 random bits on first use, so the CLI and the server (any process on that file) agree;
3. otherwise (PostgreSQL, in-memory SQLite) refuse to start.

:func:`pepper_source` decides without touching anything; :func:`load_pepper` does the file I/O.
The file holds the same text one would put in ``TAAP_PEPPER``, so moving from the file to the
variable keeps every stored secret valid.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from taap.errors import ConfigurationError
from taap.server.registry.database import DatabaseUrl

__all__ = [
    "MIN_PEPPER_LENGTH",
    "PEPPER_ENV",
    "PEPPER_FILE_CAP",
    "PEPPER_FILE_NAME",
    "PepperFile",
    "PepperValue",
    "load_pepper",
    "pepper_source",
    "read_or_create_pepper_file",
]

PEPPER_ENV = "TAAP_PEPPER"
PEPPER_FILE_NAME = "pepper"
MIN_PEPPER_LENGTH = 16
#: The file holds 43 characters when taap makes it; reading stops past this cap.
PEPPER_FILE_CAP = 64 * 1024


@dataclass(frozen=True, slots=True, repr=False)
class PepperValue:
    """The pepper itself (from the environment)."""

    value: bytes

    def __repr__(self) -> str:
        return "PepperValue(<hidden>)"


@dataclass(frozen=True, slots=True)
class PepperFile:
    """The pepper lives in (or will be created at) ``path``."""

    path: Path


def pepper_source(env_value: str | None, database: DatabaseUrl) -> PepperValue | PepperFile:
    """Decide where the pepper comes from, without I/O.

    Raises:
        ConfigurationError: ``TAAP_PEPPER`` is set but shorter than 16 characters, or it is
            unset and the database is not a SQLite file.
    """
    if env_value is not None and env_value.strip():
        value = env_value.strip()
        if len(value) < MIN_PEPPER_LENGTH:
            raise ConfigurationError(
                f"{PEPPER_ENV} is too short: use at least {MIN_PEPPER_LENGTH} random characters "
                "(for example: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return PepperValue(value.encode("utf-8"))
    if database.sqlite_path is not None:
        return PepperFile(database.sqlite_path.parent / PEPPER_FILE_NAME)
    where = "PostgreSQL" if database.backend == "postgresql" else "an in-memory database"
    raise ConfigurationError(
        f"{PEPPER_ENV} is required with {where}: set it to the same secret value "
        "(at least 16 random characters) on every node and for the CLI"
    )


def read_or_create_pepper_file(path: Path) -> bytes:
    """The pepper in ``path``; creates it (0600, 256 random bits) when it does not exist.

    Raises:
        ConfigurationError: the file exists but is empty, too short, too large or not UTF-8.
        OSError: the directory is missing or not writable.
    """
    try:
        with path.open("rb") as handle:
            raw = handle.read(PEPPER_FILE_CAP + 1)
    except FileNotFoundError:
        text = _create(path)
    else:
        if len(raw) > PEPPER_FILE_CAP:
            raise ConfigurationError(f"pepper file {path} is larger than {PEPPER_FILE_CAP} bytes")
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise ConfigurationError(f"pepper file {path} is not UTF-8 text") from None
    if len(text) < MIN_PEPPER_LENGTH:
        raise ConfigurationError(f"pepper file {path} is empty or shorter than 16 characters")
    return text.encode("utf-8")


def _create(path: Path) -> str:
    value = secrets.token_urlsafe(32)
    # Written to a private temporary file, then hard-linked into place: the link fails if
    # another process (CLI and server starting together) won, and nobody reads a half file.
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(value + "\n")
        try:
            os.link(temp, path)
        except FileExistsError:
            return path.read_text(encoding="utf-8").strip()
    finally:
        temp.unlink(missing_ok=True)
    return value


def load_pepper(database: DatabaseUrl, configured: str | None = None) -> bytes:
    """The pepper for ``database`` per docs/protocol.md#the-client-registry; ``configured`` is
    ``TAAP_PEPPER`` as read at the edge.

    Raises:
        ConfigurationError: see :func:`pepper_source` and :func:`read_or_create_pepper_file`.
        OSError: the pepper file cannot be created or read.
    """
    source = pepper_source(configured, database)
    if isinstance(source, PepperValue):
        return source.value
    return read_or_create_pepper_file(source.path)
