"""The guard's revocation state (taap.core.revocation): merge rules, freshness, the wire form."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taap.core.revocation import (
    RevocationEntry,
    RevocationState,
    entries_from_wire,
    entries_to_wire,
)
from taap.errors import NotSubscribedError, TokenRevokedError, UnavailableError

NOW = 1_800_000_000


def _token(seq: int, jti: str, client: str = "c1", exp: int = NOW + 3600) -> RevocationEntry:
    return RevocationEntry(seq=seq, kind="token", client_id=client, jti=jti, expires_at=exp)


def _client(seq: int, not_before: int, client: str = "c1") -> RevocationEntry:
    return RevocationEntry(
        seq=seq, kind="client", client_id=client, not_before=not_before, expires_at=NOW + 90000
    )


def _product(seq: int, api: str, not_before: int, client: str = "c1") -> RevocationEntry:
    return RevocationEntry(
        seq=seq,
        kind="product",
        client_id=client,
        api_id=api,
        not_before=not_before,
        expires_at=NOW + 90000,
    )


def _fresh(entries: list[RevocationEntry]) -> RevocationState:
    state = RevocationState(max_age=5)
    state.apply(entries, fetched_at=NOW)
    return state


def test_a_new_state_is_stale_and_fails_closed() -> None:
    state = RevocationState(max_age=5)
    with pytest.raises(UnavailableError) as caught:
        state.check_token(client_id="c1", jti="j", iat=NOW, now=NOW)
    assert caught.value.retry_after == 1


def test_freshness_lasts_max_age_from_the_start_of_the_fetch() -> None:
    state = _fresh([])
    state.check_token(client_id="c1", jti="j", iat=NOW, now=NOW + 5)
    with pytest.raises(UnavailableError):
        state.check_token(client_id="c1", jti="j", iat=NOW, now=NOW + 5.001)


def test_revoked_jti_is_refused_and_others_pass() -> None:
    state = _fresh([_token(1, "gone")])
    with pytest.raises(TokenRevokedError) as caught:
        state.check_token(client_id="c1", jti="gone", iat=NOW - 10, now=NOW)
    assert caught.value.status_code == 401
    assert caught.value.error_code == "token_revoked"
    state.check_token(client_id="c1", jti="other", iat=NOW - 10, now=NOW)
    assert state.seq == 1


def test_client_cutoff_revokes_tokens_issued_before_it_only() -> None:
    state = _fresh([_client(3, NOW)])
    with pytest.raises(TokenRevokedError):
        state.check_token(client_id="c1", jti="a", iat=NOW - 1, now=NOW)
    state.check_token(client_id="c1", jti="b", iat=NOW, now=NOW)
    state.check_token(client_id="c2", jti="c", iat=NOW - 1, now=NOW)


def test_product_cutoff_takes_one_product_away() -> None:
    state = _fresh([_product(4, "sms-notification", NOW)])
    with pytest.raises(NotSubscribedError):
        state.check_product(client_id="c1", product="sms-notification", iat=NOW - 1)
    state.check_product(client_id="c1", product="connectivity", iat=NOW - 1)
    state.check_product(client_id="c1", product="sms-notification", iat=NOW)


def test_cutoffs_only_grow() -> None:
    state = _fresh([_client(5, NOW), _client(2, NOW - 100)])
    with pytest.raises(TokenRevokedError):
        state.check_token(client_id="c1", jti="a", iat=NOW - 50, now=NOW)
    assert state.seq == 5


def test_prune_forgets_expired_jtis() -> None:
    state = _fresh([_token(1, "old", exp=NOW - 1), _token(2, "live", exp=NOW + 10)])
    state.prune(NOW)
    assert set(state.revoked_jtis()) == {"live"}


_entries = st.lists(
    st.one_of(
        st.builds(_token, st.integers(1, 50), st.sampled_from(["j1", "j2", "j3"])),
        st.builds(_client, st.integers(1, 50), st.integers(NOW - 5, NOW + 5)),
        st.builds(
            _product,
            st.integers(1, 50),
            st.sampled_from(["sms-notification", "location"]),
            st.integers(NOW - 5, NOW + 5),
        ),
    ),
    max_size=12,
)


def _decisions(state: RevocationState) -> list[tuple[str, ...]]:
    out = []
    for jti, iat, api in itertools.product(
        ["j1", "j2", "j3", "j4"], range(NOW - 6, NOW + 7), ["sms-notification", "location"]
    ):
        verdict = "ok"
        try:
            state.check_token(client_id="c1", jti=jti, iat=iat, now=NOW)
            state.check_product(client_id="c1", product=api, iat=iat)
        except TokenRevokedError:
            verdict = "revoked"
        except NotSubscribedError:
            verdict = "unsubscribed"
        out.append((jti, str(iat), api, verdict))
    return out


@given(_entries, st.randoms())
def test_order_and_repetition_do_not_matter(entries: list[RevocationEntry], rnd: object) -> None:
    shuffled = list(entries) * 2
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert _decisions(_fresh(entries)) == _decisions(_fresh(shuffled))


@given(_entries)
def test_wire_form_round_trips(entries: list[RevocationEntry]) -> None:
    assert entries_from_wire(entries_to_wire(entries)) == entries


@pytest.mark.parametrize(
    "rows",
    [
        {"seq": 1},
        [[1, "token", "c1", None, None, None, NOW]],  # a token row without jti
        [[1, "client", "c1", None, None, None, NOW]],  # a cutoff without not_before
        [[1, "product", "c1", None, None, NOW, NOW]],  # a product cutoff without api
        [[1, "other", "c1", "j", None, None, NOW]],
        [[True, "token", "c1", "j", None, None, NOW]],
        [[1, "token", "", "j", None, None, NOW]],
        [[1, "token", "c1", "j", None, None, "soon"]],
        [[1, "token", "c1", "j", None, None]],
    ],
)
def test_malformed_feed_rows_are_refused(rows: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the reason varies by row
        entries_from_wire(rows)
