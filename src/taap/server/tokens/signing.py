"""Signing threads (``TAAP_SIGN_THREADS``): RS256 signatures off the event loop when it pays.

cryptography runs an RSA signature without the GIL, so a thread that does nothing but sign lets
the loop serve the next request meanwhile. A lone request signs inline: a hand-off to a thread
and back only adds its wake-ups (measured: p50 at half load 1.8 ms inline against 7 ms always
handed off). So :class:`SigningThreads` counts the token requests under way on its loop and hands
a job to a thread only while another request waits. The hand-off is a bare queue rather than
``loop.run_in_executor``: the executor's futures, locks and callback chain cost ~0.14 ms of CPU
per job here against ~0.06 ms for a queue put and one ``call_soon_threadsafe`` back, and with one
signature per request that difference is a tenth of the request's whole CPU time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
from collections.abc import Sequence

from taap.core.keys import PrivateKey

__all__ = ["SigningThreads", "sign_all", "usable_cpus"]

_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[list[bytes]]", PrivateKey, Sequence[bytes]]


def usable_cpus() -> int:
    """Cores this process may run on (its affinity mask where the OS has one, as on Linux)."""
    affinity = getattr(os, "sched_getaffinity", None)  # absent on macOS and Windows
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


def sign_all(key: PrivateKey, inputs: Sequence[bytes]) -> list[bytes]:
    """RS256 signatures of ``inputs``: nothing but the RSA calls.

    Raises:
        ValueError: from the key, for input it cannot sign (never for a built signing input).
    """
    return [key.sign_rs256(signed) for signed in inputs]


def _deliver(
    future: asyncio.Future[list[bytes]],
    signatures: list[bytes] | None,
    error: BaseException | None,
) -> None:
    # Runs on the loop. The waiting request may have been cancelled (client gone) meanwhile.
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(signatures)  # type: ignore[arg-type]  # set when error is None


class SigningThreads:
    """Sign inline, or on ``threads`` daemon threads fed from one queue (started on first use).

    ``threads=0`` always signs inline. A token request calls :meth:`arrive` when it starts and
    :meth:`depart` when it is answered; :meth:`sign` uses a thread only while more than one
    request is under way.
    """

    def __init__(self, threads: int, *, name: str = "taap-sign") -> None:
        if threads < 0:
            raise ValueError("SigningThreads needs zero or more threads")
        self._count = threads
        self._name = name
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._lock = threading.Lock()
        self._in_flight = 0  # token requests between arrival and answer, on the loop
        #: jobs handed to a thread so far (the rest were signed inline)
        self.offloaded = 0

    def __repr__(self) -> str:
        return f"SigningThreads({self._count}, running={len(self._threads)})"

    @property
    def threads(self) -> Sequence[threading.Thread]:
        """The threads started so far (none before the first job, none after :meth:`close`)."""
        return tuple(self._threads)

    async def arrive(self) -> None:
        """Count a token request as under way."""
        self._in_flight += 1
        if self._count:
            # One turn of the loop first: requests that arrived together all count
            # themselves before any of them decides where to sign.
            await asyncio.sleep(0)

    def depart(self) -> None:
        """The request counted by :meth:`arrive` has been answered."""
        self._in_flight -= 1

    async def sign(self, key: PrivateKey, inputs: Sequence[bytes]) -> list[bytes]:
        """Sign ``inputs`` with ``key``: inline when alone, else on a signing thread.

        Raises:
            RuntimeError: the threads were closed.
            ValueError: from :func:`sign_all`.
        """
        if self._closed:
            raise RuntimeError("the signing threads are closed")
        if not self._count or self._in_flight <= 1:
            return sign_all(key, inputs)
        return await self.sign_on_thread(key, inputs)

    async def sign_on_thread(self, key: PrivateKey, inputs: Sequence[bytes]) -> list[bytes]:
        """Sign ``inputs`` with ``key`` on a signing thread; the caller's loop waits.

        Raises:
            RuntimeError: the threads were closed, or there are none.
            ValueError: from :func:`sign_all`.
        """
        if self._closed or not self._count:
            raise RuntimeError("the signing threads are closed")
        if len(self._threads) < self._count:
            self._start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[bytes]] = loop.create_future()
        self.offloaded += 1
        self._queue.put((loop, future, key, inputs))
        return await future

    def close(self) -> None:
        """Let queued jobs finish, then stop and join every thread (idempotent)."""
        with self._lock:
            self._closed = True
            started, self._threads = self._threads, []
        for _ in started:
            self._queue.put(None)
        for thread in started:
            thread.join()

    def _start(self) -> None:
        with self._lock:
            while not self._closed and len(self._threads) < self._count:
                thread = threading.Thread(
                    target=self._run, name=f"{self._name}_{len(self._threads)}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def _run(self) -> None:
        get = self._queue.get
        while (job := get()) is not None:
            loop, future, key, inputs = job
            try:
                signatures = sign_all(key, inputs)
            except Exception as exc:  # handed to the waiting request, which raises it
                outcome: tuple[list[bytes] | None, BaseException | None] = (None, exc)
            else:
                outcome = (signatures, None)
            # A closed loop raises RuntimeError: nobody waits for this answer any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_deliver, future, *outcome)
