"""Client credentials: the id, the secret and the PoP key, none of which a repr reveals.

The secret and the private key are the two things a leak would hand an attacker (SECURITY.md
E4), so they live in wrappers whose ``repr``/``str`` never show them; only code that must put
them on the wire (the Basic header, the v6 body) reads them through :meth:`Secret.reveal`.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

from taap.core.keys import PrivateKey, load_private_key
from taap.errors import KeyFormatError

__all__ = ["KEY_FILE_CAP", "ClientCredentials", "Secret", "basic_authorization"]

#: A key file is a few KiB; reading stops past this, so ``key=/dev/zero`` cannot fill memory.
KEY_FILE_CAP = 1024 * 1024


class Secret:
    """A string that shows as ``'***'`` in reprs, f-strings and logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself; call it only where the value goes on the wire."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling would write the secret somewhere we do not control.
        raise TypeError("a Secret cannot be pickled")


def basic_authorization(client_id: str, client_secret: Secret) -> str:
    """``Basic base64(client_id:client_secret)``: standard alphabet with padding (step 2 of
    docs/protocol.md#the-four-steps)."""
    raw = f"{client_id}:{client_secret.reveal()}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class ClientCredentials:
    """What a client proves itself with: ``client_id``, its secret and its PoP private key."""

    client_id: str
    client_secret: Secret
    key: PrivateKey

    def __post_init__(self) -> None:
        secret: object = self.client_secret  # guards callers without a type checker
        if not isinstance(secret, Secret):
            raise TypeError("client_secret must be a taap.client.Secret")
        if not self.client_id or ":" in self.client_id:
            # RFC 7617: the user-id of Basic auth cannot contain ':'.
            raise ValueError("client_id must be non-empty and contain no ':'")

    @classmethod
    def from_key_file(
        cls,
        *,
        client_id: str,
        client_secret: str | Secret,
        key_path: str | Path,
        password: str | bytes | None = None,
    ) -> ClientCredentials:
        """Load the private key once from ``key_path`` (PEM or JWK, optionally encrypted).

        Raises:
            KeyFormatError: unreadable key, wrong password, not RSA or under 2048 bits, or
                a file over :data:`KEY_FILE_CAP` bytes (no more than that is read).
            OSError: the file cannot be read.
        """
        with Path(key_path).open("rb") as handle:
            data = handle.read(KEY_FILE_CAP + 1)
        if len(data) > KEY_FILE_CAP:
            raise KeyFormatError("key file too large (> 1 MiB)")
        key = load_private_key(data, password)
        secret = client_secret if isinstance(client_secret, Secret) else Secret(client_secret)
        return cls(client_id=client_id, client_secret=secret, key=key)

    @property
    def authorization(self) -> str:
        """The ``Authorization: Basic …`` value of the token request."""
        return basic_authorization(self.client_id, self.client_secret)

    def __repr__(self) -> str:
        return (
            f"ClientCredentials(client_id={self.client_id!r}, client_secret=***, key={self.key!r})"
        )
