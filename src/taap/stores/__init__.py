"""Shared state for several processes or nodes: replay stores and failed-auth rate limits.

Neutral: the token server and the resource guard both use it, and it imports neither.
``taap.stores.ratelimit`` holds the limiter port and the in-process token buckets;
``taap.stores.redis`` the Redis replay store and limiter (``SET NX PX``, a Lua token bucket).
"""

from __future__ import annotations

from taap.stores.ratelimit import Bucket, MemoryRateLimiter, Rate, RateLimiter

__all__ = ["Bucket", "MemoryRateLimiter", "Rate", "RateLimiter"]
