"""Per-call client overhead with a cached token, beside the raw RSA-2048 + SHA-256 floor.

What is timed (no network):

* floor: ``sha256(body)`` plus one RSA-2048 PKCS#1 v1.5 SHA-256 signature over a PoP-sized
  signing input: the work no PoP client can skip;
* ``PopAuth.sign``: what :class:`taap.client.PopAuth` does per call once it has a token:
  headers, decoded ``uri``, ehts/edts, claims JSON, base64url, the RSA signature, the headers set;
* ``httpx+MockTransport``: a whole ``httpx.Client.post`` through ``PopAuth`` to a
  ``MockTransport`` answering 200 (adds httpx's own request/response work, for context).

Short batches are interleaved (floor, client, full, floor, ...) so all see the same machine
load; the best (lowest) batch of each is reported, the usual estimator on a shared, noisy
machine.
Usage: ``.venv/bin/python bench/bench_client.py [--iterations N] [--repeats R]``.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Callable

import httpx

from taap.client import ClientCredentials, PopAuth, Secret, Token, TokenClient
from taap.core import generate_private_key

SIZES = {"0 B": 0, "1 KiB": 1024, "100 KiB": 100 * 1024}
URL = "https://api.example.test/sms/v1/messages?verbose=true"


def _time(func: Callable[[], object], iterations: int) -> float:
    start = time.perf_counter()
    for _ in range(iterations):
        func()
    return (time.perf_counter() - start) / iterations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=50, help="calls per batch")
    parser.add_argument("--repeats", type=int, default=40, help="interleaved batches")
    args = parser.parse_args()

    key = generate_private_key(2048)
    credentials = ClientCredentials(client_id="taap-bench", client_secret=Secret("s"), key=key)
    tokens = TokenClient("https://auth.example.test/oauth2/v2/tokens", credentials)
    # A realistic cached token (~1.2 kB, like the server's access tokens).
    access = "eyJ" + "A" * 1200
    tokens.cache.store(
        Token(access_token=access, id_token=None, expires_in=3599, obtained_at=time.time())
    )
    auth = PopAuth(tokens)
    signing_input = b"e" * 360  # header.payload of a PoP is ~330-380 bytes
    http = httpx.Client(auth=auth, transport=httpx.MockTransport(lambda r: httpx.Response(200)))

    rows = []
    for label, size in SIZES.items():
        body = b'{"to":"+14255550100","text":"' + b"x" * max(0, size - 32) + b'"}' if size else b""
        request = httpx.Request("POST", URL, content=body)
        request.read()

        def floor(body: bytes = body) -> object:
            hashlib.sha256(body).digest()
            return key.sign_rs256(signing_input)

        def client(request: httpx.Request = request) -> object:
            return auth.sign(request, tokens.token())

        def full(body: bytes = body) -> object:
            return http.post(URL, content=body)

        floors, clients, fulls = [], [], []
        for _ in range(args.repeats):
            floors.append(_time(floor, args.iterations))
            clients.append(_time(client, args.iterations))
            fulls.append(_time(full, args.iterations))
        f, c, h = (min(x) for x in (floors, clients, fulls))
        rows.append((label, f, c, h))
    http.close()

    print(f"RSA-2048, {args.repeats} interleaved batches of {args.iterations} calls, best batch")
    print()
    print("| body | floor (sign + SHA-256) | PopAuth.sign | ratio | httpx+MockTransport | ratio |")
    print("|---|---|---|---|---|---|")
    for label, f, c, h in rows:
        print(
            f"| {label} | {f * 1e6:.0f} µs | {c * 1e6:.0f} µs | {c / f:.2f}x "
            f"| {h * 1e6:.0f} µs | {h / f:.2f}x |"
        )


if __name__ == "__main__":
    main()
