"""The wording of time and coverage failures (A3 steps 4-5): the description says which check
failed, with the numbers or the name the integrator needs; the error codes stay the same."""

from __future__ import annotations

from typing import Any

import pytest
from pop_forge import IAT, REQUEST, Forge, good_claims

from taap.core import PopPolicy, PrivateKey, SignedValues, verify_pop_token
from taap.errors import PopError

H = {"alg": "RS256", "typ": "JWT"}


def refusal(
    token: str,
    key: PrivateKey,
    *,
    request: list[tuple[str, str]] = REQUEST,
    now: float,
    policy: PopPolicy | None = None,
) -> PopError:
    with pytest.raises(PopError) as info:
        verify_pop_token(
            token,
            keys=[key.public],
            request=SignedValues(request),
            now=now,
            policy=policy or PopPolicy.named("strict"),
        )
    return info.value


@pytest.mark.parametrize(
    ("claims", "now", "description"),
    [
        (
            {"exp": IAT + 30},
            IAT + 41,
            "PoP token expired 11 s ago (exp 1700000030, leeway 10 s)",
        ),
        (
            {"exp": IAT + 30},
            IAT + 40.5,  # a fraction of a second over exp + leeway still counts as a second
            "PoP token expired 11 s ago (exp 1700000030, leeway 10 s)",
        ),
        (
            {},
            IAT - 11,
            "PoP token not yet valid: iat 1700000000 is 11 s ahead of the server clock "
            "(leeway 10 s; check the client's clock)",
        ),
        (
            {"nbf": IAT + 20},
            IAT + 1,
            "PoP token not yet valid: nbf 1700000020 is 19 s ahead of the server clock "
            "(leeway 10 s; check the client's clock)",
        ),
        (
            {"exp": IAT + 121},
            IAT + 1,
            "PoP token lifetime too long: exp - iat = 121 s, over the cap of 120 s",
        ),
        (
            {"exp": IAT + 120},
            IAT + 71,
            "PoP token too old: issued 71 s ago (iat 1700000000), over the maximum age of 60 s "
            "+ leeway 10 s",
        ),
    ],
)
def test_time_failures_say_which_check_failed(
    forge: Forge, demo_key: PrivateKey, claims: dict[str, Any], now: float, description: str
) -> None:
    error = refusal(forge(H, good_claims(**claims)), demo_key, now=now)
    assert error.error_code == "pop_expired"
    assert error.description == description
    assert error.to_dict()["error_description"] == description


def test_time_failures_use_the_configured_leeway_and_caps(
    forge: Forge, demo_key: PrivateKey
) -> None:
    policy = PopPolicy.named("strict", leeway=5, max_ttl=90, max_age=30)
    token = forge(H, good_claims(exp=IAT + 90))
    assert refusal(token, demo_key, now=IAT + 36, policy=policy).description == (
        "PoP token too old: issued 36 s ago (iat 1700000000), over the maximum age of 30 s "
        "+ leeway 5 s"
    )
    long_lived = forge(H, good_claims(exp=IAT + 91))
    assert (
        "over the cap of 90 s" in refusal(long_lived, demo_key, now=IAT, policy=policy).description
    )


COVERED = [("X-Trace", "t-1"), *REQUEST]


@pytest.mark.parametrize(
    ("signed", "sent", "description"),
    [
        (
            COVERED,
            REQUEST,
            "PoP token signs header 'X-Trace', which the request does not have",
        ),
        (
            COVERED,
            [("X-Trace", " \t"), *REQUEST],
            "PoP token signs header 'X-Trace', whose value in the request is blank",
        ),
        (
            [p for p in REQUEST if p[0] != "Authorization"],
            REQUEST,
            "PoP token does not sign the required Authorization (ehts must name it)",
        ),
        (
            [p for p in REQUEST if p[0] not in ("uri", "body")],
            REQUEST,
            "PoP token does not sign the required uri, body (ehts must name them)",
        ),
        (
            [p for p in REQUEST if p[0] != "http-method"],
            REQUEST,
            "PoP token does not sign the required http-method (ehts must name it)",
        ),
        (
            [p for p in REQUEST if p[0] != "body"],
            REQUEST,
            "PoP token does not sign the required body (ehts must name it)",
        ),
        (
            [*REQUEST[:-1], ("X-Line\r\nBreak" + "x" * 80, "v")],
            [*REQUEST[:-1], ("X-Other", "v")],
            "PoP token signs header 'X-Line\\r\\nBreak"
            + "x" * 51
            + "…', which the request does not have",
        ),
    ],
)
def test_coverage_failures_name_the_missing_part(
    forge: Forge,
    demo_key: PrivateKey,
    signed: list[tuple[str, str]],
    sent: list[tuple[str, str]],
    description: str,
) -> None:
    error = refusal(forge(H, good_claims(signed)), demo_key, request=sent, now=IAT + 1)
    assert error.error_code == "pop_ehts_insufficient"
    assert error.description == description


def test_a_blank_body_under_java_compat_is_named(forge: Forge, demo_key: PrivateKey) -> None:
    token = forge(H, good_claims())
    request = [*REQUEST[:-1], ("body", "")]
    error = refusal(
        token, demo_key, request=request, now=IAT + 1, policy=PopPolicy.named("java-compat")
    )
    assert error.description == "PoP token signs 'body', whose value in the request is blank"
