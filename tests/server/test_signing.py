"""Signing threads (TAAP_SIGN_THREADS): the hand-off between the event loop and the threads."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence

import pytest

from taap.core.keys import PrivateKey
from taap.server.tokens.signing import SigningThreads, sign_all


class _RecordingKey:
    """Stands in for a PrivateKey where a test must see which thread signed, or fail a sign."""

    def __init__(self, *, fail_on: bytes | None = None, gate: threading.Event | None = None):
        self.threads: list[str] = []
        self._fail_on = fail_on
        self._gate = gate

    def sign_rs256(self, data: bytes) -> bytes:
        if self._gate is not None:
            assert self._gate.wait(5)
        self.threads.append(threading.current_thread().name)
        if data == self._fail_on:
            raise ValueError("refused")
        return b"sig:" + data


def _as_key(fake: _RecordingKey) -> PrivateKey:
    return fake  # type: ignore[return-value]  # duck-typed: only sign_rs256 is used


@pytest.fixture
def signer() -> Iterator[SigningThreads]:
    """One signing thread, closed after the test (closing twice is allowed)."""
    threads = SigningThreads(1, name="signer-under-test")
    yield threads
    threads.close()


async def test_signatures_match_inline_signing(signing_key: PrivateKey) -> None:
    signer = SigningThreads(2)
    try:
        inputs: Sequence[bytes] = [b"header.payload-1", b"header.payload-2"]
        threaded = await signer.sign_on_thread(signing_key, inputs)
        assert threaded == sign_all(signing_key, inputs)  # RS256 (PKCS#1 v1.5) is deterministic
        assert all(
            signing_key.public.verify_rs256(s, m) for s, m in zip(threaded, inputs, strict=True)
        )
    finally:
        signer.close()


async def test_jobs_run_off_the_loop_thread_and_keep_their_order(signer: SigningThreads) -> None:
    key = _RecordingKey()
    results = await asyncio.gather(
        *(signer.sign_on_thread(_as_key(key), [b"%d" % i]) for i in range(20))
    )
    assert results == [[b"sig:%d" % i] for i in range(20)]
    assert set(key.threads) == {"signer-under-test_0"}
    assert threading.current_thread().name not in key.threads


async def test_a_failed_signature_reaches_its_caller_and_the_thread_goes_on(
    signer: SigningThreads,
) -> None:
    key = _RecordingKey(fail_on=b"bad")
    with pytest.raises(ValueError, match="refused"):
        await signer.sign_on_thread(_as_key(key), [b"ok", b"bad"])
    assert await signer.sign_on_thread(_as_key(key), [b"next"]) == [b"sig:next"]


async def test_a_cancelled_caller_gets_no_late_answer(signer: SigningThreads) -> None:
    loop = asyncio.get_running_loop()
    errors: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    gate = threading.Event()
    key = _RecordingKey(gate=gate)
    waiting = asyncio.ensure_future(signer.sign_on_thread(_as_key(key), [b"gone"]))
    await asyncio.sleep(0.01)
    waiting.cancel()  # the client went away while its token was being signed
    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert await signer.sign_on_thread(_as_key(key), [b"after"]) == [b"sig:after"]
    # The late signature is dropped, not set on the cancelled future (InvalidStateError).
    assert errors == []


async def test_close_finishes_queued_jobs_then_refuses_new_ones(signer: SigningThreads) -> None:
    gate = threading.Event()
    key = _RecordingKey(gate=gate)
    jobs = [
        asyncio.ensure_future(signer.sign_on_thread(_as_key(key), [b"%d" % i])) for i in range(3)
    ]
    await asyncio.sleep(0.01)
    assert len(signer.threads) == 1
    loop = asyncio.get_running_loop()
    closing = loop.run_in_executor(None, signer.close)  # blocks until the queue is drained
    await asyncio.sleep(0.01)
    gate.set()
    await closing
    assert [await job for job in jobs] == [[b"sig:0"], [b"sig:1"], [b"sig:2"]]
    assert signer.threads == ()
    with pytest.raises(RuntimeError, match="closed"):
        await signer.sign_on_thread(_as_key(key), [b"late"])
    signer.close()  # idempotent


def test_zero_or_more_threads() -> None:
    with pytest.raises(ValueError, match="zero or more threads"):
        SigningThreads(-1)
    assert repr(SigningThreads(3)) == "SigningThreads(3, running=0)"


async def test_a_lone_request_signs_inline_and_a_crowd_on_the_threads(
    signer: SigningThreads,
) -> None:
    key = _RecordingKey()
    await signer.arrive()
    assert await signer.sign(_as_key(key), [b"alone"]) == [b"sig:alone"]
    assert signer.offloaded == 0
    assert signer.threads == ()
    assert key.threads == [threading.current_thread().name]
    await signer.arrive()  # a second request is under way: the loop has other work
    assert await signer.sign(_as_key(key), [b"crowd"]) == [b"sig:crowd"]
    assert signer.offloaded == 1
    assert key.threads[-1] == "signer-under-test_0"
    signer.depart()
    assert await signer.sign(_as_key(key), [b"alone again"]) == [b"sig:alone again"]
    assert signer.offloaded == 1
    signer.depart()


async def test_without_threads_everything_signs_inline() -> None:
    signer = SigningThreads(0)
    key = _RecordingKey()
    for _ in range(3):
        await signer.arrive()
    assert await signer.sign(_as_key(key), [b"x"]) == [b"sig:x"]
    assert signer.offloaded == 0
    assert signer.threads == ()
    with pytest.raises(RuntimeError):
        await signer.sign_on_thread(_as_key(key), [b"x"])
