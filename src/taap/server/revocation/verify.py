"""What a token presented for revocation or introspection is, if it is one of this server's.

:func:`inspect_token` accepts the server's own access tokens (``typ`` ``at+jwt``) and ID tokens
(``typ`` ``JWT``), signed by a published key and naming this issuer, not expired beyond the
leeway. It runs exactly one RS256 verification whatever it is given, garbage included, so
the time it takes does not depend on how far a token got.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from taap.core.jws import JwsError, ParsedJws, parse_compact
from taap.core.keys import PublicKey, jwk_thumbprint
from taap.core.tokens import ACCESS_TOKEN_TYP, MAX_TOKEN_BYTES
from taap.errors import UnavailableError
from taap.server.registry.port import SigningKeyRecord

__all__ = ["TokenFacts", "TokenKind", "inspect_token", "published_keys"]

TokenKind = Literal["access", "id"]
_ID_TOKEN_TYP = "JWT"
# Verified when there is nothing to verify, so every call pays one RSA operation.
_NO_INPUT = b"taap: nothing to verify"


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenFacts:
    """A verified token of this server, and the claims each endpoint reads."""

    kind: TokenKind
    client_id: str
    jti: str
    iat: int
    exp: int
    claims: Mapping[str, Any]

    @property
    def apis(self) -> tuple[str, ...]:
        """An access token's products (an ID token has none)."""
        return tuple(self.claims.get("apis", ())) if self.kind == "access" else ()

    @property
    def jkt(self) -> str | None:
        """The RFC 7638 thumbprint of an access token's ``cnf.jwk``."""
        if self.kind != "access":
            return None
        return jwk_thumbprint(self.claims["cnf"]["jwk"])


def published_keys(records: Sequence[SigningKeyRecord]) -> dict[str, PublicKey]:
    """The public keys of the JWKS, by ``kid``.

    Raises:
        UnavailableError: the registry holds no signing key.
    """
    if not records:
        raise UnavailableError(log_detail="the registry holds no signing key")
    return {record.kid: record.key.public for record in records}


def _parse(token: str) -> ParsedJws | None:
    try:
        return parse_compact(token, max_bytes=MAX_TOKEN_BYTES, max_header_bytes=1024)
    except JwsError:
        return None


def _signature_holds(parsed: ParsedJws | None, keys: Mapping[str, PublicKey]) -> bool:
    kid = parsed.header.get("kid") if parsed is not None else None
    key = keys.get(kid) if isinstance(kid, str) else None
    if parsed is None or key is None:
        # Same work, no answer: any published key, over an input no signature matches.
        next(iter(keys.values())).verify_rs256(_NO_INPUT, _NO_INPUT)
        return False
    return key.verify_rs256(parsed.signature, parsed.signing_input)


def _string(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    return value if isinstance(value, str) and value else None


def _access_claims_hold(claims: Mapping[str, Any], client_id: str) -> bool:
    apis, cnf = claims.get("apis"), claims.get("cnf")
    jwk = cnf.get("jwk") if isinstance(cnf, dict) else None
    return (
        claims.get("client_id") == client_id
        and isinstance(apis, list)
        and all(isinstance(api, str) for api in apis)
        and isinstance(jwk, dict)
        and jwk.get("kty") == "RSA"
        and isinstance(jwk.get("n"), str)
        and isinstance(jwk.get("e"), str)
    )


def _facts(parsed: ParsedJws, *, issuer: str, now: float, leeway: int) -> TokenFacts | None:
    header, claims = parsed.header, parsed.payload
    typ = header.get("typ")
    kind: TokenKind | None = (
        "access" if typ == ACCESS_TOKEN_TYP else "id" if typ == _ID_TOKEN_TYP else None
    )
    exp, iat = claims.get("exp"), claims.get("iat")
    client_id, jti = _string(claims, "sub"), _string(claims, "jti")
    if (
        kind is None
        or claims.get("iss") != issuer
        or type(exp) is not int
        or type(iat) is not int
        or now > exp + leeway
        or iat > now + leeway
        or client_id is None
        or jti is None
        or claims.get("aud") != client_id
    ):
        return None
    if kind == "access" and not _access_claims_hold(claims, client_id):
        return None
    return TokenFacts(kind=kind, client_id=client_id, jti=jti, iat=iat, exp=exp, claims=claims)


def inspect_token(
    token: str, *, keys: Mapping[str, PublicKey], issuer: str, now: float, leeway: int
) -> TokenFacts | None:
    """The facts of ``token`` when it is a live token of this server, else ``None``.

    ``keys`` (non-empty) are the published keys by ``kid`` (:func:`published_keys`); a token
    ``leeway`` seconds past its ``exp`` is still live, as every guard still accepts it.
    """
    parsed = _parse(token)
    if not _signature_holds(parsed, keys) or parsed is None:
        return None
    return _facts(parsed, issuer=issuer, now=now, leeway=leeway)
