"""The token kept between runs (``taap.client.shell.token_file``): where it goes, what it holds,
what is refused, and that a token near expiry is neither written nor read back."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from taap.client import ClientCredentials, Secret, Token, TokenEndpoint
from taap.client.shell.token_file import (
    TOKEN_FILE_CAP,
    FileTokenCache,
    cache_dir,
    read_token_file,
    token_file_path,
    write_token_file,
)
from taap.core import PrivateKey
from taap.errors import ConfigurationError

NOW = 1_800_000_000.0


def _token(access: str = "eyJ.access.token", expires_in: int = 3600, at: float = NOW) -> Token:
    body = json.dumps({"access_token": access, "expires_in": str(expires_in)}).encode()
    return Token(
        access_token=access, id_token=None, expires_in=expires_in, obtained_at=at, body=body
    )


def _credentials(
    key: PrivateKey, client_id: str = "client-1", secret: str = "s"
) -> ClientCredentials:
    return ClientCredentials(client_id=client_id, client_secret=Secret(secret), key=key)


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_cache_dir_follows_xdg_then_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "taap"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir({}) == tmp_path / "home" / ".cache" / "taap"


def test_the_file_is_keyed_by_url_client_and_key(
    tmp_path: Path, rsa_key: PrivateKey, other_key: PrivateKey
) -> None:
    v2 = TokenEndpoint(url="https://auth.example/oauth2/v2/tokens")
    one = token_file_path(tmp_path, v2, _credentials(rsa_key))
    assert one == token_file_path(tmp_path, v2, _credentials(rsa_key))
    others = {
        token_file_path(tmp_path, TokenEndpoint(url="https://other.example/oauth2/v2/tokens"),
                        _credentials(rsa_key)),
        token_file_path(tmp_path, v2, _credentials(rsa_key, "client-2")),
        token_file_path(tmp_path, v2, _credentials(other_key)),
        token_file_path(tmp_path, TokenEndpoint(url=v2.url, version="v6"), _credentials(rsa_key)),
        token_file_path(tmp_path, v2, _credentials(rsa_key, secret="a wrong secret")),
    }  # fmt: skip
    assert one not in others
    assert len(others) == 5
    assert one.parent == tmp_path / "tokens"
    assert "client-1" not in one.name  # nothing of the identity shows in the name


def test_written_0600_in_a_0700_folder_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "taap" / "tokens" / "t.json"
    write_token_file(path, _token())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["t.json"]  # no temporary left behind
    back = read_token_file(path)
    assert back is not None
    assert (back.access_token, back.expires_in, back.obtained_at) == ("eyJ.access.token", 3600, NOW)


def test_a_folder_others_may_enter_is_closed(tmp_path: Path) -> None:
    folder = tmp_path / "tokens"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    write_token_file(folder / "t.json", _token())
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_a_file_others_may_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "t.json"
    write_token_file(path, _token())
    path.chmod(mode)
    with pytest.raises(ConfigurationError, match=f"may be read by others \\(mode {mode:o}\\)"):
        read_token_file(path)


def test_another_users_file_is_refused(tmp_path: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("only root can give a file to another user")  # these machines run as root
    path = tmp_path / "t.json"
    write_token_file(path, _token())
    os.chown(path, 65534, 65534)
    with pytest.raises(ConfigurationError, match="belongs to another user"):
        read_token_file(path)


def test_a_symlink_is_not_followed(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    write_token_file(real, _token())
    link = tmp_path / "t.json"
    link.symlink_to(real)
    with pytest.raises(ConfigurationError, match="cannot be opened"):
        read_token_file(link)


@pytest.mark.parametrize(
    "content",
    [b"", b"not json", b'{"format": 2}', b'{"format": 1, "body": "!!", "obtained_at": 1}',
     b"x" * (TOKEN_FILE_CAP + 1)],
)  # fmt: skip
def test_a_damaged_file_is_no_token(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "t.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    assert read_token_file(path) is None


def test_a_missing_file_is_no_token(tmp_path: Path) -> None:
    assert read_token_file(tmp_path / "none.json") is None


def test_the_next_process_reuses_the_token(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    clock = Clock()
    first = FileTokenCache(path, clock=clock)
    fetched = []

    def fetch() -> Token:
        fetched.append(1)
        return _token(at=clock())

    first.get(fetch)
    clock.now += 600
    second = FileTokenCache(path, clock=clock)  # a new run: nothing in memory
    assert second.get(fetch).access_token == "eyJ.access.token"
    assert len(fetched) == 1


def test_a_token_near_expiry_is_not_read_back(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    write_token_file(path, _token(at=NOW - 3600 + 30))  # 30 s left; the margin is 60 s
    assert FileTokenCache(path, clock=Clock()).current() is None


def test_a_token_near_expiry_is_not_written(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    cache = FileTokenCache(path, clock=Clock())
    cache.store(_token(at=NOW - 3600 + 30))
    assert not path.exists()
    cache.store(_token())
    assert path.exists()


def test_a_refused_token_is_deleted_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    cache = FileTokenCache(path, clock=Clock())
    stale = _token()
    cache.store(stale)
    cache.invalidate(_token("another"))  # not the held one: kept
    assert path.exists()
    cache.invalidate(stale)
    assert not path.exists()
    assert cache.current() is None


def test_repr_shows_no_token(tmp_path: Path) -> None:
    cache = FileTokenCache(tmp_path / "t.json", clock=Clock())
    cache.store(_token())
    assert "eyJ" not in repr(cache)
