"""The client's flows as plain generators, free of I/O (httpx's auth-flow pattern).

A flow yields what it needs next and is sent the answer:

=====================  ==================================================================
yielded                sent back
=====================  ==================================================================
a request              its response; for a token request, the ``httpx.HTTPError`` instead
                       when it was never answered
:class:`Wait`          ``None``, once that many seconds have passed
:class:`NeedToken`     a token: the usable one, or one other than ``stale``
=====================  ==================================================================

:func:`send_flow` is one request to the token server (a token, a revocation, an introspection)
with its retries; ``TokenClient.fetch_flow`` is steps 1-2 built on it; :func:`call_flow` is
steps 3-4 of one API call. The rules live in the flows, once. What drives them (:func:`drive`,
:func:`adrive`, :func:`run_sync`, ``PopAuth.async_auth_flow``, ``PopRequestsAuth``'s response
hook) only sends, sleeps and answers :class:`NeedToken` under the single-flight lock.

The rules of an API call (the same for httpx and ``requests``):

* 401 with ``error`` ``invalid_token`` (``token_invalid``, and ``token_revoked``: the token
  was revoked or its client disabled) → a new token, retried once;
* 403 ``not_subscribed`` with a token that may predate a subscription change (``outdated``;
  the SDK's rule is docs/client.md "Revocation and changed subscriptions") → a new token,
  retried once;
* at most one new token per call, whatever the reason: the fresh token's answer is final;
* 429 / 503 → retried with a fresh PoP after ``Retry-After`` or the backoff (bounded);
* anything else → the answer is the caller's; other 4xx are never retried.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import httpx

from taap.client.retry import RETRY_STATUSES, RetryPolicy, retry_reason
from taap.client.token_request_builder import PreparedRequest
from taap.client.token_response import Token
from taap.client.wire import (
    error_from_response,
    failure_cause,
    parse_retry_after,
    transport_error,
)

__all__ = [
    "RETRYABLE_EXCEPTIONS",
    "Answer",
    "Finished",
    "NeedToken",
    "TokenSource",
    "Wait",
    "adrive",
    "advance",
    "ask_for_token",
    "call_flow",
    "drive",
    "is_invalid_token",
    "is_not_subscribed",
    "run_sync",
    "send_flow",
    "to_httpx",
]

#: Failures that leave a request to the token server unanswered; asking again with a fresh
#: PoP is safe (a token, a revocation and an introspection can each be asked twice).
RETRYABLE_EXCEPTIONS: tuple[type[httpx.HTTPError], ...] = (
    httpx.NetworkError,
    httpx.TimeoutException,
    httpx.RemoteProtocolError,
)

S = TypeVar("S")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Wait:
    """Resume the flow after ``seconds`` (a 429/503 backoff or ``Retry-After``)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class NeedToken:
    """Send back a token: the usable one, or, when ``stale`` was refused, one other than it."""

    stale: Token | None


@dataclass(frozen=True, slots=True)
class Finished(Generic[T]):
    """What a flow returned (see :func:`advance`)."""

    value: T


class Answer(Protocol):
    """What :func:`call_flow` reads of an answer; ``httpx.Response`` and ``requests.Response``."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...


#: Where :func:`call_flow` gets a token from: a flow returning one other than its argument.
TokenSource = Callable[[Token | None], Generator[Any, Any, Token]]


def ask_for_token(stale: Token | None) -> Generator[NeedToken, Token, Token]:
    """Leave the token to the driver, which fetches it under the single-flight lock."""
    token = yield NeedToken(stale)
    return token


def _error_body(answer: Answer, read_json: Callable[[Any], object]) -> dict[str, Any]:
    try:
        data = read_json(answer)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def is_invalid_token(answer: Answer, read_json: Callable[[Any], object]) -> bool:
    """True when a 401 ``answer``'s body blames the Bearer token (``token_invalid``, or
    ``token_revoked``, whose ``error`` is ``invalid_token`` too)."""
    if answer.status_code != 401:
        return False
    data = _error_body(answer, read_json)
    return data.get("error") == "invalid_token" or data.get("error_code") in (
        "token_invalid",
        "token_revoked",
    )


def is_not_subscribed(answer: Answer, read_json: Callable[[Any], object]) -> bool:
    """True when a 403 ``answer`` says the token does not carry the API's product."""
    if answer.status_code != 403:
        return False
    return _error_body(answer, read_json).get("error_code") == "not_subscribed"


def _always(token: Token) -> bool:
    return True


def call_flow(
    sign: Callable[[Token], S],
    read_json: Callable[[Any], object],
    policy: RetryPolicy,
    get_token: TokenSource = ask_for_token,
    *,
    outdated: Callable[[Token], bool] = _always,
) -> Generator[S | Wait | NeedToken, Any, None]:
    """Steps 3-4 of one API call: sign, send, then re-token once or wait and resend.

    ``sign(token)`` returns the request to send with a fresh PoP; ``read_json(answer)`` reads a
    401 or 403 body (only theirs are read, so other answers can still be streamed);
    ``outdated(token)`` says whether a token refused 403 ``not_subscribed`` may predate a
    subscription change, so that a new one could carry the product (default: always).
    """
    token: Token = yield from get_token(None)
    refreshed = False
    retries = 0
    while True:
        answer: Answer = yield sign(token)
        if not refreshed and (
            is_invalid_token(answer, read_json)
            or (outdated(token) and is_not_subscribed(answer, read_json))
        ):
            refreshed = True
            token = yield from get_token(token)
            continue
        if answer.status_code not in RETRY_STATUSES:
            return
        delay = policy.delay(retries, parse_retry_after(answer.headers.get("retry-after")))
        if delay is None:
            return
        policy.announce(retry_reason(answer.status_code), delay, retries)
        retries += 1
        yield Wait(delay)


def advance(flow: Generator[S, Any, T], reply: object) -> S | Finished[T]:
    """Send ``reply`` into ``flow``: its next step, or :class:`Finished` with its result."""
    try:
        return flow.send(reply)
    except StopIteration as stop:
        return Finished(stop.value)


def run_sync(
    flow: Generator[S | Wait | NeedToken, Any, T],
    *,
    sleep: Callable[[float], object],
    token_for: Callable[[Token | None], Token],
) -> Generator[S, Any, T]:
    """Drive ``flow`` in this thread and pass its requests on to whoever sends them.

    Waits happen in ``sleep``; :class:`NeedToken` is answered by ``token_for``, which holds the
    single-flight lock while it fetches.
    """
    reply: Any = None
    while not isinstance(step := advance(flow, reply), Finished):
        if isinstance(step, Wait):
            sleep(step.seconds)
            reply = None
        elif isinstance(step, NeedToken):
            reply = token_for(step.stale)
        else:
            reply = yield step
    return step.value


# -- one request to the token server, retried ------------------------------------------------
def to_httpx(prepared: PreparedRequest) -> httpx.Request:
    """``prepared`` as an ``httpx.Request``: the same headers in order, the same body bytes."""
    return httpx.Request(
        prepared.method, prepared.url, headers=list(prepared.headers), content=prepared.body
    )


def _delay_or_raise(
    policy: RetryPolicy, retry: int, outcome: httpx.Response | httpx.HTTPError, target: str
) -> float:
    # Wait (returns seconds) or give up (raises).
    if isinstance(outcome, httpx.HTTPError):
        delay = policy.delay(retry, None)
        if delay is None:
            raise transport_error(target, outcome, attempts=retry + 1) from outcome
        policy.announce(failure_cause(outcome), delay, retry)
        return delay
    error = error_from_response(outcome.status_code, outcome.headers, outcome.content)
    delay = policy.delay(retry, error.retry_after)
    if delay is None:
        raise error
    policy.announce(retry_reason(outcome.status_code), delay, retry)
    return delay


def send_flow(
    next_request: Callable[[], httpx.Request], policy: RetryPolicy, target: str
) -> Generator[httpx.Request | Wait, Any, httpx.Response]:
    """One request to the token server, retried on 429/503 and on connection failures.

    ``next_request()`` builds each attempt anew (a fresh PoP every time); send back its
    response, or the ``httpx.HTTPError`` that kept it from being answered. Returns the first
    answer that is not 429/503, read in full, whatever its status; ``target`` names the server
    in a :class:`~taap.errors.TransportError` (``the token server <url>``).

    Raises:
        TaapError: the 429/503 (typed) or a ``TransportError`` once retries ran out.
    """
    retry = 0
    while True:
        outcome: httpx.Response | httpx.HTTPError = yield next_request()
        if isinstance(outcome, httpx.Response):
            outcome.read()  # a flow driven by hand may be handed a streamed response
            if outcome.status_code not in RETRY_STATUSES:
                return outcome
        elif not isinstance(outcome, RETRYABLE_EXCEPTIONS):
            raise transport_error(target, outcome) from outcome
        yield Wait(_delay_or_raise(policy, retry, outcome, target))
        retry += 1


def drive(
    flow: Generator[httpx.Request | Wait, Any, T],
    send: Callable[[httpx.Request], httpx.Response | httpx.HTTPError],
    sleep: Callable[[float], object],
) -> T:
    """Run a :func:`send_flow`-style flow in this thread: ``send`` each request (it returns
    the exception instead of raising it), ``sleep`` through each :class:`Wait`."""
    reply: httpx.Response | httpx.HTTPError | None = None
    while not isinstance(step := advance(flow, reply), Finished):
        if isinstance(step, Wait):
            sleep(step.seconds)
            reply = None
        else:
            reply = send(step)
    return step.value


async def adrive(
    flow: Generator[httpx.Request | Wait, Any, T],
    send: Callable[[httpx.Request], Awaitable[httpx.Response | httpx.HTTPError]],
    sleep: Callable[[float], Awaitable[Any]],
) -> T:
    """:func:`drive` for asyncio: ``send`` and ``sleep`` are awaited."""
    reply: httpx.Response | httpx.HTTPError | None = None
    while not isinstance(step := advance(flow, reply), Finished):
        if isinstance(step, Wait):
            await sleep(step.seconds)
            reply = None
        else:
            reply = await send(step)
    return step.value
