"""Graceful shutdown of a serving process (SECURITY.md §4, issue 7 "Operate").

On SIGTERM the process first turns unready (``/readyz`` answers 503) and keeps serving for
``TAAP_SHUTDOWN_DRAIN`` seconds, so a load balancer can take it out of rotation; only then is
uvicorn's own shutdown started: the listening socket closes, idle keep-alive connections close,
requests in flight finish (up to ``TAAP_SHUTDOWN_TIMEOUT``), the registry and Redis pools
close, and the process exits 0. A second SIGTERM skips the rest of the drain; SIGINT (Ctrl-C)
stops at once, as uvicorn does.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from types import FrameType
from typing import Any

__all__ = ["Lifecycle"]

log = logging.getLogger("taap.server")


class Lifecycle:
    """The serving state a readiness probe reports: ``draining`` once shutdown has begun."""

    def __init__(self, *, drain: float = 0.0) -> None:
        self.drain = drain
        self.draining = False

    def begin_drain(self) -> None:
        """Turn unready (``/readyz`` 503); requests are still served."""
        self.draining = True

    def install(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Put the drain in front of the SIGTERM handler already installed (uvicorn's).

        Call from the serving process's main thread, inside its event loop (lifespan
        start-up). Returns False, changing nothing, when no Python handler is installed.
        """
        previous = signal.getsignal(signal.SIGTERM)
        if not callable(previous):
            return False
        chained: Any = previous

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            if self.draining or self.drain <= 0:
                if not self.draining:
                    self.begin_drain()
                chained(signum, frame)  # the server's own graceful shutdown
                return
            self.begin_drain()
            # From a signal handler only the thread-safe entry point may touch the loop.
            loop.call_soon_threadsafe(loop.call_later, self.drain, chained, signum, None)
            loop.call_soon_threadsafe(
                log.info, "SIGTERM: unready, draining for %.1f s before shutdown", self.drain
            )

        signal.signal(signal.SIGTERM, on_sigterm)
        return True
