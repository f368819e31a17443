"""A token kept in a file between runs, so ``taap token`` and ``taap call`` ask once an hour.

The file holds the token server's answer: a Bearer access token, usable by anyone who reads
it until it expires (an hour by default). So it is written mode 0600 in a 0700 folder of the
user's cache directory (``$XDG_CACHE_HOME/taap/tokens``, else ``~/.cache/taap/tokens``), by
an atomic rename, and a file that another user owns or that others may read is refused rather
than trusted. One file per token server URL (and v6 fields), client id, key thumbprint and
secret, so a changed key, secret or client never picks up another's token. A token is written only
while more than the cache margin of its life remains, and read back only while it still has
that margin: it is never handed out near expiry. docs/cli.md, "Token cache", tells the user.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import stat
import time
from collections.abc import Mapping
from pathlib import Path

from taap.client.cached_token import Clock, TokenCache
from taap.client.credentials import ClientCredentials
from taap.client.token_request_builder import TokenEndpoint
from taap.client.token_response import Token, token_from_response
from taap.errors import ConfigurationError, TaapError

__all__ = ["TOKEN_FILE_CAP", "FileTokenCache", "cache_dir", "forget_token", "token_file_path"]

#: A token response is a few KiB; a larger file is not ours and is not read.
TOKEN_FILE_CAP = 64 * 1024
_FORMAT = 1


def cache_dir(environ: Mapping[str, str]) -> Path:
    """``$XDG_CACHE_HOME/taap``, else ``~/.cache/taap`` (variables of ``environ``)."""
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "taap"


def token_file_path(folder: Path, endpoint: TokenEndpoint, credentials: ClientCredentials) -> Path:
    """The file holding the token of this client, key and token server, under ``folder``."""
    identity = [
        endpoint.url,
        endpoint.effective_version,
        endpoint.store_id,
        endpoint.dealer_code,
        credentials.client_id,
        credentials.key.thumbprint,
        # The secret too: a run with a wrong (or revoked-and-rotated) secret must ask the
        # token server and hear its refusal, not be handed the token an earlier run got.
        # Secrets are random and long, so the file name tells nothing about it.
        credentials.client_secret.reveal(),
    ]
    digest = hashlib.sha256(json.dumps(identity).encode("utf-8")).hexdigest()
    return folder / "tokens" / f"{digest[:32]}.json"


def _check_private(path: Path, info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise ConfigurationError(f"token cache {path} is not a regular file; remove it")
    if info.st_uid != os.getuid():
        raise ConfigurationError(f"token cache {path} belongs to another user; remove it")
    if info.st_mode & 0o077:
        raise ConfigurationError(
            f"token cache {path} may be read by others (mode {stat.S_IMODE(info.st_mode):o}); "
            "it holds a Bearer token: remove it (taap token --forget) or chmod 600 it"
        )


def read_token_file(path: Path) -> Token | None:
    """The token stored at ``path``; ``None`` when there is none or it cannot be parsed.

    Raises:
        ConfigurationError: the file is not the user's own, or others may read it.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigurationError(f"token cache {path} cannot be opened: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        _check_private(path, os.fstat(handle.fileno()))
        raw = handle.read(TOKEN_FILE_CAP + 1)
    if len(raw) > TOKEN_FILE_CAP:
        return None
    try:
        data = json.loads(raw)
        if data.get("format") != _FORMAT:
            return None
        body = base64.b64decode(data["body"], validate=True)
        return token_from_response(200, {}, body, obtained_at=float(data["obtained_at"]))
    except (ValueError, TypeError, KeyError, AttributeError, TaapError):
        return None  # damaged or from another version: fetch a new token instead


def write_token_file(path: Path, token: Token) -> None:
    """Store ``token`` at ``path`` (mode 0600, folder 0700), replacing the file atomically.

    Raises:
        OSError: the folder or file cannot be written.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if stat.S_IMODE(path.parent.stat().st_mode) & 0o077:
        path.parent.chmod(0o700)  # made by an older tool or by hand: the folder is ours alone
    data = {
        "format": _FORMAT,
        "obtained_at": token.obtained_at,
        "body": base64.b64encode(token.body).decode("ascii"),
    }
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def forget_token(path: Path) -> bool:
    """Delete the stored token at ``path``; ``False`` when there was none."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


class FileTokenCache(TokenCache):
    """A :class:`TokenCache` that also keeps its token in ``path`` for the next process.

    The file is read on first use; a fetched token is written when more than the margin of
    its lifetime remains; a token refused by an API (``invalidate``) is deleted from disk too.
    Give it to a :class:`~taap.client.token_client.TokenClient` as ``cache=``.
    """

    def __init__(self, path: Path, *, margin: float = 60.0, clock: Clock = time.time) -> None:
        super().__init__(margin=margin, clock=clock)
        self.path = path
        self._loaded = False

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            stored = read_token_file(self.path)
            if stored is not None:
                super().store(stored)

    def current(self) -> Token | None:
        """The usable token, from memory or (the first time) from the file.

        Raises:
            ConfigurationError: the file is not the user's own, or others may read it.
        """
        self._load()
        return super().current()

    def held(self) -> Token | None:
        """The cached token, usable or not, from memory or the file (what a revocation of
        this client's token compares with, to drop it from the file too)."""
        self._load()
        return super().held()

    def store(self, token: Token) -> None:
        """Make ``token`` the cached one, and write it unless it is already near expiry."""
        super().store(token)
        self._loaded = True
        if super().current() is token and token.body:
            write_token_file(self.path, token)

    def invalidate(self, stale: Token) -> None:
        """Drop ``stale`` from memory and from the file (unless already replaced)."""
        if self.held() is stale:
            forget_token(self.path)
        super().invalidate(stale)

    def __repr__(self) -> str:
        return f"FileTokenCache(path={str(self.path)!r}, margin={self.margin})"
