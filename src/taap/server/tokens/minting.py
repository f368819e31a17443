"""The last step of docs/protocol.md#the-token-endpoints: the access token (and the ID token) for a
request that passed every check, and the JSON body of the answer.

Claims and encoding stay on the event loop; only the RSA work may move to a signing thread
(``TAAP_SIGN_THREADS``), where cryptography runs it without the GIL. A thread that also ran the
Python parts fought the loop for the GIL on every step (measured: 35-55 % more CPU per request
and no throughput gained).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from taap.core.jws import join_compact
from taap.core.tokens import access_token_input, id_token_input
from taap.server.registry.port import SigningKeyRecord
from taap.server.tokens.signing import SigningThreads

__all__ = ["Minted", "TokenMinter", "id_token_jti", "token_response_body"]

# Fixed for good: changing it would unlink the ID tokens already issued from their access tokens.
_ID_TOKEN_NAMESPACE = uuid.UUID("79ecbddd-dde9-4797-bde5-9f1c4a6ee0ff")


def id_token_jti(access_jti: str) -> str:
    """The ``jti`` of the ID token issued with the access token ``access_jti``.

    Derived rather than random, so that revoking an access token can revoke the ID token of
    the same answer without the server remembering either (docs/server.md, "Revocation").
    One-way: an ID token does not tell its access token's ``jti``.
    """
    return str(uuid.uuid5(_ID_TOKEN_NAMESPACE, access_jti))


def token_response_body(*, id_token: str, access_token: str, expires_in: int) -> bytes:
    """The answer of docs/protocol.md#the-token-endpoints: ``{id_token, access_token, expires_in,
    scope: "", status: "approved"}``.

    ``expires_in`` is a string on the wire, as T-Mobile's servers send it.
    """
    return b"".join(
        (
            b'{"id_token":"',
            id_token.encode("ascii"),
            b'","access_token":"',
            access_token.encode("ascii"),
            b'","expires_in":"',
            str(expires_in).encode("ascii"),
            b'","scope":"","status":"approved"}',
        )
    )


@dataclass(frozen=True, slots=True)
class Minted:
    """The answer's body and what the audit line records of it."""

    body: bytes
    token_jti: str
    exp: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenMinter:
    """Builds and signs the tokens of one answer (``single`` mode: the access token twice)."""

    signer: SigningThreads
    issuer: str
    ttl: int
    single: bool

    async def mint(
        self,
        signing: SigningKeyRecord,
        *,
        client_id: str,
        apis: Sequence[str],
        cnf_jwk: Mapping[str, str],
        claims: Mapping[str, str],
        now: float,
        not_before: int = 0,
    ) -> Minted:
        """Sign the tokens for ``client_id``, bound to the PoP key ``cnf_jwk``.

        ``iat`` is ``max(int(now), not_before)``: ``not_before`` is the client's newest
        revocation cutoff (``ClientRecord.tokens_not_before``), which catches every token with
        a smaller ``iat``. A cutoff rounds up to the next whole second, so a token issued in
        the second after it is stamped with the cutoff itself and stays live (at most a
        second ahead of the clock, well inside every verifier's leeway).

        Raises:
            RuntimeError: the signing threads were closed (the server is shutting down).
        """
        iat = max(int(now), not_before)
        token_jti = str(uuid.uuid4())
        inputs = [
            access_token_input(
                kid=signing.kid,
                issuer=self.issuer,
                client_id=client_id,
                apis=apis,
                cnf_jwk=cnf_jwk,
                now=iat,
                ttl=self.ttl,
                jti=token_jti,
                extra=claims or None,
            )
        ]
        if not self.single:
            inputs.append(
                id_token_input(
                    kid=signing.kid,
                    issuer=self.issuer,
                    client_id=client_id,
                    now=iat,
                    ttl=self.ttl,
                    jti=id_token_jti(token_jti),
                )
            )
        signatures = await self.signer.sign(signing.key, inputs)
        access = join_compact(inputs[0], signatures[0])
        id_token = access if self.single else join_compact(inputs[1], signatures[1])
        body = token_response_body(id_token=id_token, access_token=access, expires_in=self.ttl - 1)
        return Minted(body=body, token_jti=token_jti, exp=iat + self.ttl)
