"""Access and ID tokens of the token server (docs/server.md) and their verification
(docs/protocol.md#the-guard).

Both are compact RS256 JWS with a ``kid``. The access token is typed ``at+jwt`` and binds the
client's PoP key in ``cnf.jwk`` (RFC 7800); the ID token is typed ``JWT`` and carries no
``apis``/``cnf``, so a resource server can never mistake one for the other (SECURITY.md S9).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NotRequired, TypedDict, Unpack

from taap.core.jws import JwsError, encode_segment, parse_compact, sign_input, signing_input
from taap.core.keys import PrivateKey, PublicKey, public_key_from_jwk
from taap.errors import KeyFormatError, TokenInvalidError, UnknownKeyIdError

__all__ = [
    "ACCESS_TOKEN_TYP",
    "AccessToken",
    "AccessTokenClaims",
    "IdTokenClaims",
    "access_token_input",
    "id_token_input",
    "issue_access_token",
    "issue_id_token",
    "verify_access_token",
]

ACCESS_TOKEN_TYP = "at+jwt"
MAX_TOKEN_BYTES = 8192


@lru_cache(maxsize=256)
def _header_segment(kid: str, typ: str) -> str:
    # Member order follows the seed's tokens: kid, typ, alg.
    return encode_segment({"kid": kid, "typ": typ, "alg": "RS256"})


class IdTokenClaims(TypedDict):
    """What an ID token states: the keywords of :func:`issue_id_token` and :func:`id_token_input`.

    ``ttl`` is in seconds (3600 when absent); ``jti`` is a fresh UUID when absent or None.
    """

    kid: str
    issuer: str
    client_id: str
    now: float
    ttl: NotRequired[int]
    jti: NotRequired[str | None]


class AccessTokenClaims(IdTokenClaims):
    """An ID token's claims plus the APIs, the PoP key and the v6 extras (``storeId``...): the
    keywords of :func:`issue_access_token` and :func:`access_token_input`."""

    apis: Sequence[str]
    cnf_jwk: Mapping[str, str]
    extra: NotRequired[Mapping[str, str] | None]


_ID_TOKEN_FIELDS = IdTokenClaims.__required_keys__ | IdTokenClaims.__optional_keys__
_ACCESS_TOKEN_FIELDS = AccessTokenClaims.__required_keys__ | AccessTokenClaims.__optional_keys__


def _common_claims(claims: IdTokenClaims, fields: frozenset[str]) -> dict[str, Any]:
    # The keywords arrive as a dict: a misspelt one (``tll=60``) must fail as an unknown keyword
    # argument does, not vanish and leave the default lifetime.
    if not claims.keys() <= fields:
        unknown = ", ".join(sorted(claims.keys() - fields))
        raise TypeError(f"unexpected keyword arguments: {unknown}")
    iat = int(claims["now"])
    return {
        "sub": claims["client_id"],
        "aud": claims["client_id"],
        "iss": claims["issuer"],
        "exp": iat + claims.get("ttl", 3600),
        "iat": iat,
        "jti": claims.get("jti") or str(uuid.uuid4()),
    }


def issue_access_token(*, key: PrivateKey, **claims: Unpack[AccessTokenClaims]) -> str:
    """Sign an access token (``typ`` ``at+jwt``) bound to the client's PoP key."""
    return sign_input(access_token_input(**claims), key)


def access_token_input(**claims: Unpack[AccessTokenClaims]) -> bytes:
    """The signing input of :func:`issue_access_token`, to be signed elsewhere (a thread)."""
    body = _common_claims(claims, _ACCESS_TOKEN_FIELDS)
    body["client_id"] = claims["client_id"]
    body["apis"] = list(claims["apis"])
    body["cnf"] = {"jwk": dict(claims["cnf_jwk"])}
    extra = claims.get("extra")
    if extra:
        body.update(extra)
    return signing_input(_header_segment(claims["kid"], ACCESS_TOKEN_TYP), body)


def issue_id_token(*, key: PrivateKey, **claims: Unpack[IdTokenClaims]) -> str:
    """Sign an ID token (``typ`` ``JWT``) with the seed's claims: sub, aud, iss, exp, iat, jti."""
    return sign_input(id_token_input(**claims), key)


def id_token_input(**claims: Unpack[IdTokenClaims]) -> bytes:
    """The signing input of :func:`issue_id_token`, to be signed elsewhere (a thread)."""
    body = _common_claims(claims, _ID_TOKEN_FIELDS)
    return signing_input(_header_segment(claims["kid"], "JWT"), body)


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A verified access token."""

    client_id: str
    apis: tuple[str, ...]
    cnf_key: PublicKey
    kid: str
    jti: str
    exp: int
    #: when it was issued (POSIX seconds): revocation cutoffs compare against it
    iat: int
    claims: Mapping[str, Any]


@lru_cache(maxsize=4096)
def _cnf_key(n: str, e: str) -> PublicKey:
    # Parsing a JWK into a key object costs more than an RSA verify; tokens repeat, keys too.
    return public_key_from_jwk({"kty": "RSA", "n": n, "e": e})


def _invalid(why: str) -> TokenInvalidError:
    return TokenInvalidError(log_detail=why)


def verify_access_token(
    token: str,
    *,
    keys: Mapping[str, PublicKey],
    issuer: str,
    now: float,
    leeway: int = 10,
) -> AccessToken:
    """Verify a Bearer access token: structure, ``kid``, signature, ``typ``, ``iss``, time, claims.

    Raises:
        UnknownKeyIdError: the ``kid`` is not among ``keys`` (the caller may refresh its JWKS).
        TokenInvalidError: anything else wrong; details in ``log_detail`` only.
    """
    try:
        parsed = parse_compact(token, max_bytes=MAX_TOKEN_BYTES, max_header_bytes=1024)
    except JwsError as exc:
        raise _invalid(str(exc)) from exc
    header, claims = parsed.header, parsed.payload
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > 128:
        raise _invalid("kid missing")
    key = keys.get(kid)
    if key is None:
        raise UnknownKeyIdError(log_detail="unknown kid")
    if not key.verify_rs256(parsed.signature, parsed.signing_input):
        raise _invalid("bad signature")
    if header.get("typ") != ACCESS_TOKEN_TYP:
        raise _invalid("typ is not at+jwt")
    if claims.get("iss") != issuer:
        raise _invalid("wrong issuer")
    exp, iat = claims.get("exp"), claims.get("iat")
    if type(exp) is not int or type(iat) is not int:
        raise _invalid("exp/iat must be integers")
    if now > exp + leeway:
        raise _invalid("expired")
    if iat > now + leeway:
        raise _invalid("issued in the future")
    client_id, jti, apis = claims.get("client_id"), claims.get("jti"), claims.get("apis")
    if not isinstance(client_id, str) or not client_id or claims.get("sub") != client_id:
        raise _invalid("client_id/sub missing or different")
    if not isinstance(jti, str) or not jti:
        raise _invalid("jti missing")
    if not isinstance(apis, list) or not all(isinstance(a, str) for a in apis):
        raise _invalid("apis must be a list of strings")
    cnf = claims.get("cnf")
    jwk = cnf.get("jwk") if isinstance(cnf, dict) else None
    if not isinstance(jwk, dict) or jwk.get("kty") != "RSA":
        raise _invalid("cnf.jwk missing")
    n, e = jwk.get("n"), jwk.get("e")
    if not isinstance(n, str) or not isinstance(e, str):
        raise _invalid("cnf.jwk malformed")
    try:
        cnf_key = _cnf_key(n, e)
    except KeyFormatError as exc:
        raise _invalid("cnf.jwk is not a usable RSA key") from exc
    return AccessToken(
        client_id=client_id,
        apis=tuple(apis),
        cnf_key=cnf_key,
        kid=kid,
        jti=jti,
        exp=exp,
        iat=iat,
        claims=claims,
    )
