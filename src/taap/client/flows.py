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

``TokenClient.fetch_flow`` is steps 1-2 with their retries; :func:`call_flow` is steps 3-4 of
one API call. The rules live in the flows, once. What drives them (:func:`run_sync`,
``TokenClient.fetch``/``afetch``, ``PopAuth.async_auth_flow``, ``PopRequestsAuth``'s response
hook) only sends, sleeps and answers :class:`NeedToken` under the single-flight lock.

The rules of an API call (the same for httpx and ``requests``):

* 401 with ``error`` ``invalid_token`` (A6 ``token_invalid``) → a new token, retried once;
* 429 / 503 → retried with a fresh PoP after ``Retry-After`` or the backoff (bounded);
* anything else → the answer is the caller's; other 4xx are never retried.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from taap.client.retry import RETRY_STATUSES, RetryPolicy
from taap.client.token_response import Token
from taap.client.wire import parse_retry_after

__all__ = [
    "Answer",
    "Finished",
    "NeedToken",
    "TokenSource",
    "Wait",
    "advance",
    "ask_for_token",
    "call_flow",
    "is_invalid_token",
    "run_sync",
]

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


def is_invalid_token(answer: Answer, read_json: Callable[[Any], object]) -> bool:
    """True when a 401 ``answer``'s body blames the Bearer token (A6 ``token_invalid``)."""
    if answer.status_code != 401:
        return False
    try:
        data = read_json(answer)
    except ValueError:
        return False
    if not isinstance(data, dict):
        return False
    return data.get("error") == "invalid_token" or data.get("error_code") == "token_invalid"


def call_flow(
    sign: Callable[[Token], S],
    read_json: Callable[[Any], object],
    policy: RetryPolicy,
    get_token: TokenSource = ask_for_token,
) -> Generator[S | Wait | NeedToken, Any, None]:
    """Steps 3-4 of one API call: sign, send, then re-token once or wait and resend.

    ``sign(token)`` returns the request to send with a fresh PoP; ``read_json(answer)`` reads a
    401 body (only a 401's is read, so other answers can still be streamed).
    """
    token: Token = yield from get_token(None)
    refreshed = False
    retries = 0
    while True:
        answer: Answer = yield sign(token)
        if not refreshed and is_invalid_token(answer, read_json):
            refreshed = True
            token = yield from get_token(token)
            continue
        if answer.status_code not in RETRY_STATUSES:
            return
        delay = policy.delay(retries, parse_retry_after(answer.headers.get("retry-after")))
        if delay is None:
            return
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
