"""Properties of the query rule of ``canonical_uri`` (TAAP.md A2; docs/pop.md "Canonicalisation").

The signed ``uri`` is the percent-decoded query with ``+`` kept. The rule refuses exactly the
queries where that decoding could let two queries that mean different things share one
signature. "Meaning" is how a server reads a query, and servers read it in three ways, all
checked here:

* the form view (``application/x-www-form-urlencoded``, Python's ``parse_qsl``, WHATWG
  ``URLSearchParams``, Starlette's ``request.query_params``): split on ``&``, then on the first
  ``=``, then ``+`` becomes a space and escapes are decoded;
* the plain view (RFC 3986): the same split, escapes decoded, ``+`` stays ``+``;
* a reader that decodes twice (a proxy that decodes, then an application that decodes again).

Each view is taken on the full split (empty parts kept, and a part without ``=`` told apart from
one with an empty value), which is finer than ``parse_qsl``'s result; ``parse_qsl`` is checked
too. Queries are drawn from small alphabets of characters and escapes so that different
spellings of one signed value occur often; every run draws the same examples (derandomized).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, unquote_plus

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taap.core import canonical_uri
from taap.errors import RequestMalformedError

PATH = "/p"
CHECK = settings(
    max_examples=1500,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)

# Pieces of raw queries: literal characters (structure, '+', space, '%', non-ASCII) and escapes
# (of structure, of '+', of '%', of a hex digit, of UTF-8 and broken UTF-8, malformed ones).
RAW_PIECES = [
    "a", "b", "A", "4", "1", "-", "~", "=", "&", "+", " ", "?", "/", ";", "%", "#", "é",
    "%20", "%2B", "%2b", "%3D", "%3d", "%26", "%25", "%23", "%3F", "%2F", "%41", "%61", "%34",
    "%31", "%C3%A9", "%c3%a9", "%C3", "%A9", "%FF", "%0A", "%00", "%2", "%zz", "%3B",
]  # fmt: skip
raw_queries = st.lists(st.sampled_from(RAW_PIECES), max_size=8).map("".join)
# Fewer pieces, shorter queries: two independent draws often decode alike.
COLLIDING_PIECES = ["a", "A", "%41", "=", "%3D", "&", "%26", "+", "%2B", " ", "%20", "%25", "#"]
colliding_queries = st.lists(st.sampled_from(COLLIDING_PIECES), max_size=4).map("".join)

# Characters of a signed (decoded) query; each is then spelled literally or as %XX escapes.
DECODED_CHARS = "ab4A=&+ %#?/;é\n"


def _spelled(char: str, how: int) -> str:
    """``char`` as it might be sent: literally, or escaped in upper- or lower-case hex."""
    if how == 0 and char != "%":  # a literal '%' would start an escape, not spell '%'
        return char
    escaped = "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))
    return escaped.lower() if how == 2 else escaped


@st.composite
def two_spellings(draw: st.DrawFn) -> tuple[str, str]:
    """Two raw queries that both decode to one drawn query (when the rule accepts them)."""
    decoded = draw(st.lists(st.sampled_from(DECODED_CHARS), min_size=1, max_size=10))
    hows = st.lists(st.integers(0, 2), min_size=len(decoded), max_size=len(decoded))
    first, second = draw(hows), draw(hows)
    spell = lambda hows: "".join(_spelled(c, h) for c, h in zip(decoded, hows, strict=True))  # noqa: E731
    return spell(first), spell(second)


def _signed(query: str) -> str | None:
    """The signed uri, or None when the rule refuses the query."""
    try:
        return canonical_uri(PATH, query)
    except RequestMalformedError:
        return None


def _split(query: str, decode: object) -> list[tuple[str, str | None]]:
    assert callable(decode)
    pairs: list[tuple[str, str | None]] = []
    for part in query.split("&"):
        name, sep, value = part.partition("=")
        pairs.append((decode(name), decode(value) if sep else None))
    return pairs


def _strict(decode: object) -> object:
    assert callable(decode)
    return lambda text: decode(text, errors="strict")


def meanings(query: str) -> tuple[object, ...]:
    """What the query means to each kind of reader (see the module docstring)."""
    plain = _strict(unquote)
    return (
        _split(query, _strict(unquote_plus)),
        _split(query, plain),
        _split(query, lambda text: plain(plain(text))),  # type: ignore[operator]
        parse_qsl(query, keep_blank_values=True, errors="strict"),
    )


def oracle_accepts(query: str) -> bool:
    """A2's four conditions, written out again independently of the implementation, plus the
    two decisions docs/pop.md records (a '%' must start an escape; decoded text is UTF-8)."""
    if re.search(r"%(?![0-9A-Fa-f]{2})", query):
        return False
    try:
        decoded = unquote(query, errors="strict")
    except UnicodeDecodeError:
        return False
    return not (
        _split(decoded, str) != _split(query, _strict(unquote))  # (a)
        or "#" in decoded  # (b)
        or re.search(r"%[0-9A-Fa-f]{2}", decoded)  # (c)
        or "%2b" in query.lower()  # (d)
    )


@CHECK
@given(raw_queries)
def test_the_rule_is_a2s_four_conditions(query: str) -> None:
    signed = _signed(query)
    assert (signed is not None) == oracle_accepts(query), query
    if signed is not None and query:
        assert signed == f"{PATH}?{unquote(query)}"


@CHECK
@given(colliding_queries, colliding_queries)
def test_queries_that_sign_alike_mean_the_same(first: str, second: str) -> None:
    signed = _signed(first)
    if signed is not None and signed == _signed(second):
        assert meanings(first) == meanings(second), (first, second)


@CHECK
@given(two_spellings())
def test_spellings_of_one_signed_query_mean_the_same(spellings: tuple[str, str]) -> None:
    first, second = spellings
    signed = _signed(first)
    if signed is not None and signed == _signed(second):
        assert meanings(first) == meanings(second), (first, second)


def _reread(signed: str) -> str:
    """The query of a signed uri read back as a request target (RFC 3986: a fragment starts
    at the first '#', the query at the first '?'; urlsplit would also drop tabs and newlines)."""
    path, _, query = signed.partition("#")[0].partition("?")
    assert path == PATH
    return query


@CHECK
@given(raw_queries)
def test_a_signed_uri_read_back_means_what_the_request_meant(query: str) -> None:
    """The signed uri is itself a faithful target: read again (split off a fragment, decoded
    again), its query means what the raw query meant to every reader."""
    signed = _signed(query)
    if signed is not None and query:
        assert meanings(_reread(signed)) == meanings(query), query


@pytest.mark.parametrize(
    ("refused", "alike", "condition"),
    [
        ("q=a%2Bb", "q=a+b", "d"),  # form readers: 'a+b' against 'a b'
        ("a=b%26c=d", "a=b&c=d", "a"),  # one pair against two
        ("a%3Db=c", "a=b=c", "a"),  # name 'a=b' against name 'a'
        ("a=%23b", None, "b"),  # read back, '#b' is a fragment: the value is lost
        ("a=%2541", None, "c"),  # read back, '%41' is 'A': the value changes
    ],
)
def test_each_condition_stops_a_real_ambiguity(
    refused: str, alike: str | None, condition: str
) -> None:
    """Without its condition, each refused query would sign like an accepted query that means
    something else, or would sign a uri that reads back as something else."""
    assert _signed(refused) is None, condition
    unguarded = f"{PATH}?{unquote(refused)}"
    assert meanings(_reread(unguarded)) != meanings(refused)
    if alike is not None:
        assert _signed(alike) == unguarded
        assert meanings(alike) != meanings(refused)


def test_space_spellings_sign_alike_and_mean_alike() -> None:
    assert _signed("q=a%20b") == _signed("q=a b") == f"{PATH}?q=a b"
    assert meanings("q=a%20b") == meanings("q=a b")
    # '+' is a space only to form readers: it signs as '+', never like '%20'.
    assert _signed("q=a+b") == f"{PATH}?q=a+b" != _signed("q=a%20b")
