"""Why a request does not match its PoP: the analysis behind ``taap pop explain``.

A PoP signs only a digest (``edts``) of its values, so the values the client signed cannot be
read back. What can be done honestly is to recompute the digest from the request as it
arrived and, when it differs, to recompute it again over *plausible variants* of that request
(the uri without its query or percent-encoded, the method in another case, the body with or
without a trailing newline or with other line endings, the JSON body in another serialisation,
a header value with the spaces a server strips, a charset added to Content-Type; see
:mod:`taap.core._explain_variants`), and over pairs of them. A variant whose digest equals
the claim names what the client signed; when none does, the finding says so rather than
guessing.

Pure: no I/O, the clock is a parameter, so the portal and the CLI share it.
"""

from __future__ import annotations

import hmac
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from taap.core import _pop_reasons as reasons
from taap.core._explain_variants import Variant, variants
from taap.core.keys import PublicKey
from taap.core.pop import STRICT, PopPolicy, _claims_syntax, _parse, compute_edts
from taap.core.request import RESERVED_NAMES, RequestParts, request_parts, split_target
from taap.errors import PopCoverageError

__all__ = ["Explanation", "Finding", "Lifetime", "SignedItem", "explain_pop"]

# Pairs of variants are tried too (a dropped query *and* a re-serialised body). Each try hashes
# every signed value again, so pairs stop after this many bytes hashed (100 headers or a large
# body would otherwise cost seconds): about 0.1 s of SHA-256.
_PAIR_BUDGET = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing that explains (or would explain) a refusal.

    ``kind`` is one of ``expired``, ``not_yet_valid``, ``lifetime``, ``too_old``, ``absent``,
    ``blank``, ``coverage``, ``signature`` (problems found directly); ``query``,
    ``uri_encoding``, ``uri_slash``, ``method_case``, ``method``, ``body_newline``,
    ``body_line_endings``, ``json``, ``json_escaping``, ``header_spaces``, ``header_value`` (a
    variant of the request whose digest is the claimed one); ``value_changed`` (no variant
    matched).
    """

    kind: str
    message: str


@dataclass(frozen=True, slots=True)
class Lifetime:
    """The time claims judged at ``now`` (seconds; ``None`` when the claim is absent)."""

    now: float
    iat: int | None
    exp: int | None
    age: float | None  # now - iat
    lifetime: int | None  # exp - iat
    expires_in: float | None  # exp - now
    leeway: int
    max_age: int
    max_ttl: int
    ok: bool


@dataclass(frozen=True, slots=True)
class SignedItem:
    """One name of ``ehts`` and the value the request gives it (``None``: the request lacks it)."""

    name: str
    value: str | None


# The code a server answers comes from the first verification step that fails
# (docs/protocol.md#verifying-a-pop): signature, then time, then coverage, then the digest.
_STEP_CODES: tuple[tuple[str, frozenset[str]], ...] = (
    ("pop_signature_invalid", frozenset({"signature"})),
    ("pop_expired", frozenset({"expired", "not_yet_valid", "lifetime", "too_old"})),
    ("pop_ehts_insufficient", frozenset({"absent", "blank", "coverage"})),
)


@dataclass(frozen=True, slots=True)
class Explanation:
    """Everything :func:`explain_pop` found. ``matches`` is true when the request would pass
    steps 1-6 of docs/protocol.md#verifying-a-pop (the signature only when a public key was
    given)."""

    header: Mapping[str, Any]
    claims: Mapping[str, Any]
    lifetime: Lifetime
    items: tuple[SignedItem, ...]
    claimed_edts: str
    expected_edts: str | None
    digest_matches: bool
    signature_valid: bool | None
    matches: bool
    findings: tuple[Finding, ...]

    @property
    def error_code(self) -> str | None:
        """The ``error_code`` a token server or guard would answer (``None``: it matches).

        Only steps 1-6 are judged: whether the jti was already used (``pop_replayed``) is known
        to the server's replay store alone.
        """
        if self.matches:
            return None
        kinds = {finding.kind for finding in self.findings}
        for code, step in _STEP_CODES:
            if kinds & step:
                return code
        return "pop_edts_mismatch"


def _time_findings(claims: Mapping[str, Any], policy: PopPolicy, now: float) -> list[Finding]:
    leeway, java = policy.leeway, policy.name == "java-compat"
    iat, exp, nbf = claims.get("iat"), claims.get("exp"), claims.get("nbf")
    found: list[Finding] = []
    if exp is not None and now > exp + leeway:
        found.append(Finding("expired", reasons.expired(exp, now, leeway).description))
    for claim, value in (("iat", iat), ("nbf", nbf)):
        if value is not None and value > now + leeway:
            text = reasons.not_yet_valid(claim, value, now, leeway).description
            found.append(Finding("not_yet_valid", text))
    if not java and iat is not None and exp is not None:
        if exp - iat > policy.max_ttl:
            text = reasons.lifetime_over_cap(iat, exp, policy.max_ttl).description
            found.append(Finding("lifetime", text))
        if now - iat > policy.max_age + leeway:
            text = reasons.too_old(iat, now, policy.max_age, leeway).description
            found.append(Finding("too_old", text))
    return found


def _lifetime(claims: Mapping[str, Any], policy: PopPolicy, now: float, ok: bool) -> Lifetime:
    iat, exp = claims.get("iat"), claims.get("exp")
    return Lifetime(
        now=now,
        iat=iat,
        exp=exp,
        age=None if iat is None else now - iat,
        lifetime=None if iat is None or exp is None else exp - iat,
        expires_in=None if exp is None else exp - now,
        leeway=policy.leeway,
        max_age=policy.max_age,
        max_ttl=policy.max_ttl,
        ok=ok,
    )


def _coverage_findings(
    names: tuple[str, ...], parts: RequestParts, policy: PopPolicy
) -> list[Finding]:
    """Step 5 of docs/protocol.md#verifying-a-pop, every problem at once instead of the first."""
    found: list[Finding] = []
    java = policy.name == "java-compat"
    for name in names:
        value = parts.value(name)
        if value is None:
            found.append(Finding("absent", reasons.absent(name).description))
        elif (java or name != "body") and not value.strip():
            found.append(Finding("blank", reasons.blank(name).description))
    if policy.name == "strict":
        required = ["uri", "http-method"] + (["body"] if parts.has_body else [])
        missing = [n for n in required if n not in names]
        if not any(n.lower() == "authorization" for n in names):
            missing.insert(0, "Authorization")
        if missing:
            error: PopCoverageError = reasons.not_covered(missing)
            found.append(Finding("coverage", error.description))
    return found


def _shown(value: str | bytes | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.decode("utf-8", errors="replace")


def _digest_of(
    names: tuple[str, ...], parts: RequestParts, changes: Mapping[str, str | bytes]
) -> str | None:
    values = [changes.get(n, parts.value(n)) for n in names]
    if any(v is None for v in values):
        return None
    return compute_edts(v for v in values if v is not None)


def _search(
    names: tuple[str, ...],
    parts: RequestParts,
    tries: list[Variant],
    same: Callable[[str], bool],
) -> list[Finding]:
    """The single variant, else the pair of variants, whose digest equals the claim."""
    for kind, text, name, value in tries:
        digest = _digest_of(names, parts, {name: value})
        if digest is not None and same(digest):
            return [Finding(kind, f"the PoP was signed over {text}")]
    size = sum(len(v) for v in (parts.value(n) for n in names) if v is not None) + 64
    pairs = itertools.combinations(tries, 2)
    for first, second in itertools.islice(pairs, _PAIR_BUDGET // size):
        if first.name == second.name:
            continue
        digest = _digest_of(names, parts, {first.name: first.value, second.name: second.value})
        if digest is not None and same(digest):
            return [
                Finding(first.kind, f"the PoP was signed over {first.text} (one of two changes)"),
                Finding(second.kind, f"the PoP was signed over {second.text} (the other change)"),
            ]
    return []


def _listed(names: Sequence[str], most: int = 8) -> str:
    shown = ", ".join(repr(n[:64]) for n in names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _unexplained(names: tuple[str, ...]) -> Finding:
    headers = [n for n in names if n not in RESERVED_NAMES]
    hint = (
        f"most often a header value changed after signing (one of {_listed(headers)})"
        if headers
        else "most often a different body or uri"
    )
    return Finding(
        "value_changed",
        "at least one signed value differs from what the client signed, and no common "
        f"variant of the request gives the claimed edts: {hint}",
    )


def _edts_equal(policy: PopPolicy, claimed: str) -> Callable[[str], bool]:
    if policy.name == "java-compat":
        folded = claimed.lower().encode("utf-8")
        return lambda digest: hmac.compare_digest(digest.lower().encode("ascii"), folded)
    raw = claimed.encode("utf-8")
    return lambda digest: hmac.compare_digest(digest.encode("ascii"), raw)


def explain_pop(
    token: str,
    *,
    method: str,
    uri: str,
    headers: Sequence[tuple[str, str]],
    body: str | bytes = b"",
    public_key: PublicKey | None = None,
    now: float,
    policy: PopPolicy = STRICT,
) -> Explanation:
    """Explain whether ``token`` matches the request, and if not, why.

    ``uri`` is the request target as sent (path and query, not yet decoded); ``headers`` as
    sent (the values are trimmed as a server trims them).

    Raises:
        PopMalformedError: the token is not a structurally valid PoP (steps 1-2 of
        docs/protocol.md#verifying-a-pop). RequestMalformedError: the request itself is one a server
        refuses (ambiguous uri,
            a repeated singleton header, text that is not UTF-8).
        ValueError: ``now`` is not a finite number.
    """
    if not math.isfinite(now):
        raise ValueError("now must be a finite number of seconds")
    header, claims, signing_input, signature = _parse(token, policy)
    names = _claims_syntax(claims, policy.name == "java-compat")
    path, query = split_target(uri)
    payload = body.encode("utf-8") if isinstance(body, str) else body
    parts = request_parts(method, path, query, headers, payload)
    findings = _time_findings(claims, policy, now)
    lifetime = _lifetime(claims, policy, now, not findings)
    signature_valid = None
    if public_key is not None:
        signature_valid = public_key.verify_rs256(signature, signing_input)
        if not signature_valid:
            text = (
                "the signature does not verify with the given public key (another key signed "
                "the PoP, or the token was altered)"
            )
            findings.insert(0, Finding("signature", text))
    findings.extend(_coverage_findings(names, parts, policy))
    expected = _digest_of(names, parts, {})
    same = _edts_equal(policy, claims["edts"])
    digest_matches = expected is not None and same(expected)
    if expected is not None and not digest_matches:
        found = _search(names, parts, variants(names, parts, method, uri), same)
        findings.extend(found or [_unexplained(names)])
    return Explanation(
        header=header,
        claims=claims,
        lifetime=lifetime,
        items=tuple(SignedItem(n, _shown(parts.value(n))) for n in names),
        claimed_edts=claims["edts"],
        expected_edts=expected,
        digest_matches=digest_matches,
        signature_valid=signature_valid,
        matches=not findings and digest_matches,
        findings=tuple(findings),
    )
