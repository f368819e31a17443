"""The token server passes the core's wording of time and coverage failures to the caller:
``error_description`` says which check failed (A3 steps 4-5); the codes are unchanged."""

from __future__ import annotations

from server_kit import NOW, Harness


async def test_time_failures_are_worded_by_the_check_that_failed(harness: Harness) -> None:
    expired = await harness.post("v2", pop_now=NOW - 300)  # exp = NOW - 240
    assert expired.status_code == 401
    assert expired.json()["error_code"] == "pop_expired"
    assert expired.json()["error_description"].startswith("PoP token expired 240 s ago (exp ")
    ahead = await harness.post("v2", pop_now=NOW + 300)
    assert ahead.json()["error_code"] == "pop_expired"
    assert ahead.json()["error_description"].startswith(
        "PoP token not yet valid: iat 1800000300 is 300 s ahead of the server clock"
    )


async def test_coverage_failures_name_the_missing_part(harness: Harness) -> None:
    unsigned_auth = await harness.post("v2", names=["Content-Type", "uri", "http-method"])
    assert unsigned_auth.json()["error_code"] == "pop_ehts_insufficient"
    assert unsigned_auth.json()["error_description"] == (
        "PoP token does not sign the required Authorization (ehts must name it)"
    )
    absent = await harness.post(
        "v2",
        names=["Authorization", "uri", "http-method", "X-Trace"],
        extra={"X-Trace": "t-1"},
    )
    assert absent.json()["error_code"] == "pop_ehts_insufficient"
    assert absent.json()["error_description"] == (
        "PoP token signs header 'X-Trace', which the request does not have"
    )
