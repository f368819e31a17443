"""Hostile PoPs (SECURITY.md 1.A-1.D): each gets the error code of the first A3 step it fails.

Tokens are signed with the real demo key, so a fault in a later step is really reached only
after the earlier steps passed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from pop_forge import IAT, NOW, REQUEST, Forge, good_claims

from taap.core import PopPolicy, PrivateKey, SignedValues, verify_pop_token
from taap.core._b64 import b64url_decode, b64url_encode
from taap.errors import PopError

H = {"alg": "RS256", "typ": "JWT"}
MALFORMED = "pop_malformed"
SIGNATURE = "pop_signature_invalid"
EXPIRED = "pop_expired"
COVERAGE = "pop_ehts_insufficient"
DIGEST = "pop_edts_mismatch"


def code_of(
    token: str,
    key: PrivateKey,
    *,
    request: list[tuple[str, str]] | None = None,
    now: float = NOW,
    policy: str = "strict",
) -> str:
    """The error code verification raises; fails the test on acceptance or another exception."""
    try:
        verify_pop_token(
            token,
            keys=[key.public],
            request=SignedValues(REQUEST if request is None else request),
            now=now,
            policy=PopPolicy.named(policy),
        )
    except PopError as exc:
        return exc.error_code
    return "accepted"


def test_the_baseline_token_is_accepted(forge: Forge, demo_key: PrivateKey) -> None:
    # Every case below differs from this token by one fault, so this must pass.
    assert code_of(forge(H, good_claims()), demo_key) == "accepted"


# --- A3 step 1: structure -------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE", "", "RS384", "PS256", "rs256"])
def test_alg_other_than_rs256(forge: Forge, demo_key: PrivateKey, alg: str) -> None:
    header = {"alg": alg, "typ": "JWT"}
    assert code_of(forge(header, good_claims()), demo_key) == MALFORMED
    unsigned = forge(header, good_claims(), signature="")
    assert code_of(unsigned, demo_key) == MALFORMED


def test_alg_missing(forge: Forge, demo_key: PrivateKey) -> None:
    assert code_of(forge({"typ": "JWT"}, good_claims()), demo_key) == MALFORMED


def test_hs256_with_the_public_key_as_secret(forge: Forge, demo_key: PrivateKey) -> None:
    header = {"alg": "HS256", "typ": "JWT"}
    unsigned = forge(header, good_claims(), signature="x")
    signing_input = unsigned.rsplit(".", 1)[0].encode()
    for secret in (demo_key.public.to_pem(), demo_key.public.to_pem().strip()):
        mac = hmac.new(secret, signing_input, hashlib.sha256).digest()
        token = f"{signing_input.decode()}.{b64url_encode(mac)}"
        assert code_of(token, demo_key) == MALFORMED


def test_rs256_token_with_an_hmac_signature_fails_the_signature(
    forge: Forge, demo_key: PrivateKey
) -> None:
    unsigned = forge(H, good_claims(), signature="x")
    signing_input = unsigned.rsplit(".", 1)[0].encode()
    mac = hmac.new(demo_key.public.to_pem(), signing_input, hashlib.sha256).digest()
    assert code_of(f"{signing_input.decode()}.{b64url_encode(mac)}", demo_key) == SIGNATURE


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("crit", ["exp"]),
        ("jku", "https://evil.example/jwks.json"),
        ("x5u", "https://evil.example/cert.pem"),
        ("jwk", {"kty": "RSA", "n": "AQAB", "e": "AQAB"}),
        ("x5c", ["MIIB"]),
        ("b64", False),
        ("zip", "DEF"),
        ("enc", "A128GCM"),
        ("cty", "JWT"),
    ],
)
def test_key_naming_and_extension_headers(
    forge: Forge, demo_key: PrivateKey, member: str, value: Any
) -> None:
    assert code_of(forge({**H, member: value}, good_claims()), demo_key) == MALFORMED


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt", "JOSE", "", 1, None])
def test_typ_other_than_jwt(forge: Forge, demo_key: PrivateKey, typ: Any) -> None:
    assert code_of(forge({**H, "typ": typ}, good_claims()), demo_key) == MALFORMED


@pytest.mark.parametrize(
    "header",
    [{"alg": "RS256"}, {"typ": "JWT", "alg": "RS256"}, {**H, "typ": "jwt"}, {**H, "kid": "k1"}],
)
def test_header_variants_builders_emit_are_accepted(
    forge: Forge, demo_key: PrivateKey, header: dict[str, Any]
) -> None:
    assert code_of(forge(header, good_claims()), demo_key) == "accepted"


def test_access_token_claims_do_not_make_a_pop(forge: Forge, demo_key: PrivateKey) -> None:
    # An access token typed at+jwt is refused even when its claims would pass as a PoP.
    token = forge({"alg": "RS256", "typ": "at+jwt", "kid": "k"}, good_claims())
    assert code_of(token, demo_key) == MALFORMED


@pytest.mark.parametrize("count", [1, 2, 4, 5])
def test_segment_count(forge: Forge, demo_key: PrivateKey, count: int) -> None:
    parts = forge(H, good_claims()).split(".")
    token = ".".join((parts * 2)[:count])
    assert code_of(token, demo_key) == MALFORMED


@pytest.mark.parametrize("which", [0, 1, 2])
def test_empty_segment(forge: Forge, demo_key: PrivateKey, which: int) -> None:
    parts = forge(H, good_claims()).split(".")
    parts[which] = ""
    assert code_of(".".join(parts), demo_key) == MALFORMED


@pytest.mark.parametrize("which", [0, 1, 2])
@pytest.mark.parametrize("change", ["pad", "plus", "space", "newline", "junk", "percent"])
def test_non_canonical_base64url(
    forge: Forge, demo_key: PrivateKey, which: int, change: str
) -> None:
    parts = forge(H, good_claims()).split(".")
    seg = parts[which]
    if change == "pad":
        seg += "=" * (-len(seg) % 4 or 4)
    elif change == "plus":
        seg = (
            seg.replace("-", "+").replace("_", "/") if ("-" in seg or "_" in seg) else "+" + seg[1:]
        )
    elif change == "space":
        seg = seg[:4] + " " + seg[4:]
    elif change == "newline":
        seg = seg + "\n"
    elif change == "junk":
        seg = seg[:4] + "!" + seg[4:]
    else:
        seg = seg[:4] + "%2" + seg[4:]
    parts[which] = seg
    assert code_of(".".join(parts), demo_key) == MALFORMED


def test_non_canonical_trailing_bits_of_the_signature(forge: Forge, demo_key: PrivateKey) -> None:
    # A 256-byte signature ends with 2 symbols + 4 unused bits; setting one of those bits keeps
    # the decoded bytes but changes the spelling, which must be refused (SECURITY.md S6).
    token = forge(H, good_claims())
    head, body, sig = token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(sig[-1])
    twin = sig[:-1] + alphabet[last | 1]
    assert twin != sig
    assert base64.urlsafe_b64decode(twin + "==") == base64.urlsafe_b64decode(sig + "==")
    assert code_of(f"{head}.{body}.{twin}", demo_key) == MALFORMED
    with pytest.raises(ValueError, match="non-canonical"):
        b64url_decode(twin)


@pytest.mark.parametrize(
    "payload",
    [
        b'{"exp":1,"exp":2}',
        b"[]",
        b'"claims"',
        b"17",
        b"null",
        b"{",
        b"\xef\xbb\xbf{}",
        b'{"ehts":"\xff"}',
        '{"a":1}'.encode("utf-16"),
    ],
)
def test_payload_not_a_strict_json_object(
    forge: Forge, demo_key: PrivateKey, payload: bytes
) -> None:
    assert code_of(forge(H, payload), demo_key) == MALFORMED


def _raw_claims(**overrides: str) -> bytes:
    """Good claims with some members replaced by raw JSON text (NaN, 1e400, ...)."""
    claims = good_claims()
    text = json.dumps(claims, separators=(",", ":"))
    for name, raw in overrides.items():
        text = text.replace(f'"{name}":{json.dumps(claims[name])}', f'"{name}":{raw}')
    return text.encode()


@pytest.mark.parametrize(
    ("member", "raw"),
    [
        ("exp", "NaN"),
        ("exp", "Infinity"),
        ("iat", "-Infinity"),
        ("exp", "1e400"),
        ("exp", "1" * 41),
        ("iat", "-" + "9" * 45),
        ("jti", '"\\ud800"'),
        ("ehts", '"uri;\\udfff"'),
    ],
)
def test_numbers_and_strings_json_refuses(
    forge: Forge, demo_key: PrivateKey, member: str, raw: str
) -> None:
    payload = _raw_claims(**{member: raw})
    assert raw.encode() in payload
    assert code_of(forge(H, payload), demo_key) == MALFORMED


def test_duplicate_member_in_header(forge: Forge, demo_key: PrivateKey) -> None:
    header = b'{"alg":"HS256","alg":"RS256","typ":"JWT"}'
    assert code_of(forge(header, good_claims()), demo_key) == MALFORMED


def test_deep_nesting(forge: Forge, demo_key: PrivateKey) -> None:
    nested: Any = "x"
    for _ in range(9):
        nested = [nested]
    assert code_of(forge(H, good_claims(extra=nested)), demo_key) == MALFORMED
    # Brackets inside strings do not count as nesting.
    assert code_of(forge(H, good_claims(extra="[[[[[[[[[[{{{{{{{{{")), demo_key) == "accepted"
    assert code_of(forge(H, good_claims(extra=[[["ok"]]])), demo_key) == "accepted"


def test_oversized_token_and_header(forge: Forge, demo_key: PrivateKey) -> None:
    big = forge(H, good_claims(extra="x" * 6000))
    assert len(big) > 8192
    assert code_of(big, demo_key) == MALFORMED
    fits = forge(H, good_claims(extra="x" * 5000))
    assert len(fits) <= 8192
    assert code_of(fits, demo_key) == "accepted"
    big_header = forge({**H, "x": "y" * 800}, good_claims())
    assert len(big_header.split(".")[0]) > 1024
    assert code_of(big_header, demo_key) == MALFORMED


def test_oversized_garbage_is_refused_before_decoding(demo_key: PrivateKey) -> None:
    assert code_of("a" * 10_000_000, demo_key) == MALFORMED
    assert code_of("." * 100_000, demo_key) == MALFORMED


# --- A3 step 2: claim syntax ----------------------------------------------------------------


@pytest.mark.parametrize("claim", ["iat", "exp", "nbf"])
@pytest.mark.parametrize(
    "value", [True, False, "1700000000", 1700000000.0, 1700000000.5, None, [1], {}]
)
def test_time_claims_must_be_integers(
    forge: Forge, demo_key: PrivateKey, claim: str, value: Any
) -> None:
    assert code_of(forge(H, good_claims(**{claim: value})), demo_key) == MALFORMED


@pytest.mark.parametrize("claim", ["iat", "exp", "jti", "ehts", "edts", "v"])
def test_required_claims(forge: Forge, demo_key: PrivateKey, claim: str) -> None:
    assert code_of(forge(H, good_claims(**{claim: ...})), demo_key) == MALFORMED


@pytest.mark.parametrize("claim", ["jti", "ehts", "edts"])
@pytest.mark.parametrize("value", ["", 1, None, ["a"], True])
def test_string_claims(forge: Forge, demo_key: PrivateKey, claim: str, value: Any) -> None:
    assert code_of(forge(H, good_claims(**{claim: value})), demo_key) == MALFORMED


def test_jti_length_cap(forge: Forge, demo_key: PrivateKey) -> None:
    assert code_of(forge(H, good_claims(jti="j" * 128)), demo_key) == "accepted"
    assert code_of(forge(H, good_claims(jti="j" * 129)), demo_key) == MALFORMED


@pytest.mark.parametrize(
    ("v", "expected"),
    [
        ("1", "accepted"),
        (1, "accepted"),
        ("v1", MALFORMED),
        (True, MALFORMED),
        (1.0, MALFORMED),
        (2, MALFORMED),
        ("2", MALFORMED),
    ],
)
def test_v_values(forge: Forge, demo_key: PrivateKey, v: Any, expected: str) -> None:
    assert code_of(forge(H, good_claims(v=v)), demo_key) == expected


@pytest.mark.parametrize("exp", [IAT, IAT - 1])
def test_exp_must_follow_iat(forge: Forge, demo_key: PrivateKey, exp: int) -> None:
    assert code_of(forge(H, good_claims(exp=exp)), demo_key) == MALFORMED


@pytest.mark.parametrize(
    "ehts",
    [
        "Content-Type;Authorization;uri;http-method;body;uri",
        "Content-Type;Authorization;authorization;uri;http-method;body",
        "Content-Type;Authorization;uri;;http-method;body",
        ";Content-Type;Authorization;uri;http-method;body",
        "Content-Type;Authorization;uri;http-method;body;",
        "Content-Type; Authorization;uri;http-method;body",
        "Content-Type;Authorization ;uri;http-method;body",
        "Content-Type;Authorization;uri;\thttp-method;body",
        ";",
        ";".join(["Authorization", "uri", "http-method", "body"] + [f"X-H{i}" for i in range(97)]),
    ],
)
def test_ehts_syntax(forge: Forge, demo_key: PrivateKey, ehts: str) -> None:
    assert code_of(forge(H, good_claims(ehts=ehts)), demo_key) == MALFORMED


def test_one_hundred_names_are_allowed(forge: Forge, demo_key: PrivateKey) -> None:
    extra = [(f"X-H{i}", f"v{i}") for i in range(95)]
    pairs = REQUEST + extra
    assert len(pairs) == 100
    assert code_of(forge(H, good_claims(pairs)), demo_key, request=pairs) == "accepted"


# --- A3 step 3: signature -------------------------------------------------------------------


def test_signature_of_another_key(
    forge: Forge, demo_key: PrivateKey, other_key: PrivateKey
) -> None:
    assert code_of(forge(H, good_claims(), key=other_key), demo_key) == SIGNATURE


def test_payload_changed_after_signing(forge: Forge, demo_key: PrivateKey) -> None:
    head, _, sig = forge(H, good_claims()).split(".")
    body = b64url_encode(json.dumps(good_claims(exp=IAT + 61), separators=(",", ":")).encode())
    assert code_of(f"{head}.{body}.{sig}", demo_key) == SIGNATURE


def test_truncated_signature(forge: Forge, demo_key: PrivateKey) -> None:
    head, body, sig = forge(H, good_claims()).split(".")
    assert code_of(f"{head}.{body}.{sig[:-3]}", demo_key) == SIGNATURE


# --- A3 step 4: time ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("iat", "exp", "now", "expected"),
    [
        (IAT, IAT + 120, IAT + 1, "accepted"),
        (IAT, IAT + 121, IAT + 1, EXPIRED),  # lifetime over the cap
        (IAT, IAT + 3600, IAT + 1, EXPIRED),
        (IAT, IAT + 120, IAT + 70, "accepted"),  # age 60 + leeway 10
        (IAT, IAT + 120, IAT + 71, EXPIRED),  # too old
        (IAT, IAT + 30, IAT + 40, "accepted"),  # exp + leeway
        (IAT, IAT + 30, IAT + 41, EXPIRED),  # expired
        (IAT, IAT + 60, IAT - 10, "accepted"),  # iat within leeway in the future
        (IAT, IAT + 60, IAT - 11, EXPIRED),  # iat in the future
    ],
)
def test_time_windows(
    forge: Forge, demo_key: PrivateKey, iat: int, exp: int, now: int, expected: str
) -> None:
    token = forge(H, good_claims(iat=iat, exp=exp))
    assert code_of(token, demo_key, now=now) == expected


def test_nbf_in_the_future(forge: Forge, demo_key: PrivateKey) -> None:
    assert code_of(forge(H, good_claims(nbf=NOW + 10)), demo_key) == "accepted"
    assert code_of(forge(H, good_claims(nbf=NOW + 11)), demo_key) == EXPIRED


def test_huge_times_are_expired_not_crashes(forge: Forge, demo_key: PrivateKey) -> None:
    big = 10**39
    assert code_of(forge(H, good_claims(iat=big, exp=big + 60)), demo_key) == EXPIRED
    small = -(10**38)  # 40 characters with the sign: the longest number JSON accepts
    assert code_of(forge(H, good_claims(iat=small, exp=small + 60)), demo_key) == EXPIRED


# --- A3 step 5: coverage --------------------------------------------------------------------


def _without(name: str) -> list[tuple[str, str]]:
    return [(n, v) for n, v in REQUEST if n != name]


@pytest.mark.parametrize("name", ["Authorization", "uri", "http-method", "body"])
def test_required_names(forge: Forge, demo_key: PrivateKey, name: str) -> None:
    signed = _without(name)
    assert code_of(forge(H, good_claims(signed)), demo_key) == COVERAGE
    # lenient requires no particular name
    assert code_of(forge(H, good_claims(signed)), demo_key, policy="lenient") == "accepted"


def test_content_type_is_not_required(forge: Forge, demo_key: PrivateKey) -> None:
    assert code_of(forge(H, good_claims(_without("Content-Type"))), demo_key) == "accepted"


def test_body_may_be_unsigned_when_the_request_has_none(forge: Forge, demo_key: PrivateKey) -> None:
    signed = _without("body")
    assert code_of(forge(H, good_claims(signed)), demo_key, request=signed) == "accepted"
    empty = [*signed, ("body", "")]
    assert code_of(forge(H, good_claims(empty)), demo_key, request=empty) == "accepted"


def test_signed_header_absent_or_blank(forge: Forge, demo_key: PrivateKey) -> None:
    signed = [*REQUEST, ("X-Request-Id", "42")]
    token = forge(H, good_claims(signed))
    assert code_of(token, demo_key, request=signed) == "accepted"
    assert code_of(token, demo_key) == COVERAGE
    blank = [*REQUEST, ("X-Request-Id", " \t")]
    assert code_of(forge(H, good_claims(blank)), demo_key, request=blank) == COVERAGE


@pytest.mark.parametrize(
    ("standin", "reserved"), [("URI", "uri"), ("Body", "body"), ("HTTP-Method", "http-method")]
)
def test_a_header_cannot_stand_in_for_a_reserved_name(
    forge: Forge, demo_key: PrivateKey, standin: str, reserved: str
) -> None:
    signed = [(standin if n == reserved else n, v) for n, v in REQUEST]
    request = [*REQUEST, (standin, dict(REQUEST)[reserved])]
    assert code_of(forge(H, good_claims(signed)), demo_key, request=request) == COVERAGE


# --- A3 step 6: digest ----------------------------------------------------------------------


def test_edts_case_flipped_or_padded(forge: Forge, demo_key: PrivateKey) -> None:
    edts = good_claims()["edts"]
    for bad in (
        edts.swapcase(),
        edts + "=",
        edts[:-1],
        edts.replace("-", "+").replace("_", "/") + "x",
    ):
        assert code_of(forge(H, good_claims(edts=bad)), demo_key) == DIGEST
    # java-compat reproduces the Java validator's case-insensitive compare
    flipped = forge(H, good_claims(edts=edts.swapcase()))
    assert code_of(flipped, demo_key, policy="java-compat") == "accepted"


def test_any_changed_value_breaks_the_digest(forge: Forge, demo_key: PrivateKey) -> None:
    token = forge(H, good_claims())
    for index, (name, value) in enumerate(REQUEST):
        changed = list(REQUEST)
        changed[index] = (name, value + "x")
        assert code_of(token, demo_key, request=changed) == DIGEST


# --- A3 order: the first failing step decides -----------------------------------------------


def test_first_failing_step_decides(
    forge: Forge, demo_key: PrivateKey, other_key: PrivateKey
) -> None:
    uncovered = good_claims(_without("Authorization"))
    cases = [
        # (token, now, expected)
        (forge({**H, "jku": "x"}, good_claims(v="v1"), key=other_key), NOW, MALFORMED),
        (forge(H, good_claims(v="v1", exp=IAT + 3600), key=other_key), NOW, MALFORMED),
        (forge(H, good_claims(exp=IAT + 3600), key=other_key), NOW, SIGNATURE),
        (forge(H, {**uncovered, "exp": IAT + 3600}), NOW, EXPIRED),
        (forge(H, {**uncovered, "edts": "x" * 43}), NOW, COVERAGE),
        (forge(H, {**good_claims(), "edts": "x" * 43}), NOW, DIGEST),
        (forge(H, {**uncovered, "edts": "x" * 43}, key=other_key), IAT + 1000, SIGNATURE),
    ]
    for token, now, expected in cases:
        assert code_of(token, demo_key, now=now) == expected


def test_several_candidate_keys_report_the_match(
    forge: Forge, demo_key: PrivateKey, other_key: PrivateKey, rsa_key: PrivateKey
) -> None:
    token = forge(H, good_claims(), key=other_key)
    verified = verify_pop_token(
        token,
        keys=[demo_key.public, rsa_key.public, other_key.public],
        request=SignedValues(REQUEST),
        now=NOW,
    )
    assert verified.key == other_key.public
    assert verified.key_thumbprint == other_key.thumbprint
    assert verified.jti == good_claims()["jti"]
    assert verified.replay_until == IAT + 60 + 10
    assert verified.names == tuple(n for n, _ in REQUEST)
    with pytest.raises(PopError) as info:
        verify_pop_token(token, keys=[], request=SignedValues(REQUEST), now=NOW)
    assert info.value.error_code == SIGNATURE


# --- policy configuration -------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"leeway": -1},
        {"max_ttl": 0},
        {"max_age": 0},
        {"leeway": float("nan")},
        {"max_ttl": float("inf")},
        {"leeway": True},
        {"max_token_bytes": 0},
        {"max_age": "60"},
    ],
)
def test_nonsense_policies_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="PoP policy"):
        PopPolicy.named("strict", **overrides)


def test_policy_names() -> None:
    with pytest.raises(ValueError, match="unknown"):
        PopPolicy.named("relaxed")
    assert PopPolicy.named("java-compat", leeway=0).leeway == 0
    assert PopPolicy.named("lenient").name == "lenient"


def test_leeway_and_caps_are_applied(forge: Forge, demo_key: PrivateKey) -> None:
    token = forge(H, good_claims(exp=IAT + 30))
    late = IAT + 35
    assert code_of(token, demo_key, now=late) == "accepted"
    tight = PopPolicy.named("strict", leeway=0)
    with pytest.raises(PopError) as info:
        verify_pop_token(
            token, keys=[demo_key.public], request=SignedValues(REQUEST), now=late, policy=tight
        )
    assert info.value.error_code == EXPIRED
    long_lived = forge(H, good_claims(exp=IAT + 300))
    assert code_of(long_lived, demo_key) == EXPIRED
    roomy = PopPolicy.named("strict", max_ttl=300, max_age=200)
    verified = verify_pop_token(
        long_lived,
        keys=[demo_key.public],
        request=SignedValues(REQUEST),
        now=IAT + 150,
        policy=roomy,
    )
    # kept until the age cap ends acceptance (iat + max_age), not until the later exp
    assert verified.replay_until == IAT + 200 + 10


def test_replay_window_ends_with_the_age_cap(forge: Forge, demo_key: PrivateKey) -> None:
    # npm tokens live 120 s, but strict refuses them 70 s after iat: keep the jti 70 s only.
    token = forge(H, good_claims(exp=IAT + 120))
    verified = verify_pop_token(
        token, keys=[demo_key.public], request=SignedValues(REQUEST), now=IAT + 5
    )
    assert verified.replay_until == IAT + 60 + 10
    java = verify_pop_token(
        token,
        keys=[demo_key.public],
        request=SignedValues(REQUEST),
        now=IAT + 5,
        policy=PopPolicy.named("java-compat"),
    )
    assert java.replay_until == IAT + 120 + 10  # no age cap there: exp + leeway
    with pytest.raises(ValueError, match="finite"):
        verify_pop_token(
            token, keys=[demo_key.public], request=SignedValues(REQUEST), now=float("nan")
        )


def test_json_scan_is_linear_on_unterminated_escaped_strings() -> None:
    # The old depth pre-scan backtracked quadratically here (6 KB: 110 ms; this input: minutes).
    # Now it is linear: this finishes in milliseconds, with the right error.
    from taap.core.strict_json import JsonError, loads_strict

    hostile = '{"a":"' + '\\"' * 200_000
    with pytest.raises(JsonError):
        loads_strict(hostile, max_depth=32)
    with pytest.raises(JsonError, match="deep"):
        loads_strict("[" * 100_000 + "]" * 100_000, max_depth=32, require_object=False)
    assert loads_strict('{"a":"' + "[" * 1000 + '"}', max_depth=1) == {"a": "[" * 1000}
