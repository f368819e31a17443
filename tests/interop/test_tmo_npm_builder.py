"""Interop with T-Mobile's real npm builder (``tmo-poptoken-builder`` under node).

Fresh tokens it builds over random requests verify in taap (strict, values extracted from the
request the way a server does), and with the clock and jti fixed and ttl 120 our token equals
its token byte for byte. Each test runs one node process for its whole batch.
"""

from __future__ import annotations

import json
import random
import string
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from taap.core import (
    PrivateKey,
    build_pop_token,
    canonical_uri,
    decode_pop_token,
    request_pairs,
    request_parts,
    verify_pop_token,
)

HERE = Path(__file__).resolve().parent
SEED = 20261129
_TCHAR = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
_UNICODE = "éüßçñøåæ€£¥✓☃中文日本語한국어Ωπ∑😀🚀𝄞\u2028\u00a0"
_TEXT = string.ascii_letters + string.digits + " -_.,:;!?'\"\\/{}[]()<>@#$%^&*+=|~`\t" + _UNICODE


def _builder(tmo_builder_dir: Path) -> str:
    return str(
        tmo_builder_dir / "node_modules" / "tmo-poptoken-builder" / "poptoken-builder-node.js"
    )


def node_build(tmo_builder_dir: Path, pem: str, jobs: list[dict[str, Any]]) -> list[str]:
    """Tokens from the npm builder, one node process for all ``jobs``."""
    payload = json.dumps({"module": _builder(tmo_builder_dir), "pem": pem, "jobs": jobs})
    done = subprocess.run(
        ["node", str(HERE / "tmo_build.js")],
        input=payload,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    tokens: list[str] = json.loads(done.stdout)
    assert len(tokens) == len(jobs)
    return tokens


def _text(rng: random.Random, low: int, high: int, alphabet: str = _TEXT) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(low, high)))


def random_request(rng: random.Random) -> dict[str, Any]:
    """A request: raw (percent-encoded) path and query, the headers the client signs and the
    header lines it sends, the body."""
    segments = [quote(_text(rng, 1, 8), safe="") for _ in range(rng.randint(1, 4))]
    segments = [s if s not in (".", "..") else "x" for s in segments]
    # "/", ".", "?" and "#" escapes would be refused as ambiguous; keep the path free of them
    path = "/" + "/".join(
        s.replace("%2F", "_").replace("%2E", "_").replace("%3F", "_").replace("%23", "_")
        for s in segments
    )
    query = ""
    if rng.random() < 0.8:
        params = []
        for _ in range(rng.randint(1, 5)):
            key = quote(_text(rng, 1, 6), safe="")
            value = (
                quote(_text(rng, 0, 10), safe="").replace("%20", "+")
                if rng.random() < 0.5
                else _text(rng, 0, 6, string.ascii_letters + "+-._~")
            )
            params.append(f"{key}={value}")
        query = "&".join(params)
        for refused in ("%26", "%3D", "%23", "%25", "%2B"):
            query = query.replace(refused, "_")
    headers = [
        ("Authorization", "Bearer " + _text(rng, 10, 40, string.ascii_letters + string.digits))
    ]
    if rng.random() < 0.7:
        headers.insert(0, ("Content-Type", "application/json"))
    seen = {"authorization", "content-type"}
    count = rng.randint(1, 20)
    while len(headers) < count:
        name = "X-" + _text(rng, 1, 12, _TCHAR)
        if name.lower() in seen:
            continue
        seen.add(name.lower())
        value = (
            _text(rng, 1, 30, string.ascii_letters + string.digits + " ;,=/" + _UNICODE).strip()
            or "v"
        )
        headers.append((name, value))
    # What goes on the wire: names in any case, and a repeated header sent as separate lines
    # (the server joins them with ", ", the client signed the joined value).
    raw_headers = [(rng.choice([n, n.lower(), n.upper()]), v) for n, v in headers]
    if rng.random() < 0.4 and len(headers) < 20:
        parts = [
            _text(rng, 1, 10, string.ascii_letters + string.digits)
            for _ in range(rng.randint(2, 3))
        ]
        headers.append(("X-Repeated", ", ".join(parts)))
        raw_headers.extend(("x-repeated", part) for part in parts)
    body = _text(rng, 0, 200) if rng.random() < 0.8 else ""
    method = rng.choice(["GET", "POST", "PUT", "PATCH", "DELETE"])
    return {
        "method": method,
        "path": path,
        "query": query,
        "headers": headers,
        "raw_headers": raw_headers,
        "body": body,
    }


def signed_pairs(request: dict[str, Any]) -> list[tuple[str, str]]:
    uri = canonical_uri(request["path"], request["query"])
    pairs = request_pairs(request["method"], uri, request["headers"], request["body"])
    return [(n, v if isinstance(v, str) else v.decode()) for n, v in pairs]


def test_fresh_npm_tokens_verify_in_taap(
    tmo_builder_dir: Path, demo_key: PrivateKey, vectors: dict[str, Any]
) -> None:
    rng = random.Random(SEED)
    requests = [random_request(rng) for _ in range(80)]
    jobs = [{"pairs": signed_pairs(r), "now": None, "jti": None} for r in requests]
    started = time.time()
    tokens = node_build(tmo_builder_dir, vectors["keys"][0]["pem"], jobs)
    for index, (request, token) in enumerate(zip(requests, tokens, strict=True)):
        # the server's view: values extracted from the raw request
        parts = request_parts(
            request["method"],
            request["path"],
            request["query"],
            request["raw_headers"],
            request["body"].encode(),
        )
        try:
            verified = verify_pop_token(
                token, keys=[demo_key.public], request=parts, now=time.time()
            )
        except Exception as exc:  # pragma: no cover - the message names the failing request
            raise AssertionError(f"seed {SEED} request {index}: {request!r}") from exc
        claims = verified.claims
        assert claims["exp"] - claims["iat"] in (119, 120)
        assert started - 2 <= claims["iat"] <= time.time() + 1
        assert claims["ehts"] == ";".join(n for n, _ in jobs[index]["pairs"])


def test_fixed_clock_and_jti_give_identical_tokens(
    tmo_builder_dir: Path, demo_key: PrivateKey, vectors: dict[str, Any]
) -> None:
    rng = random.Random(SEED + 1)
    jtis = [
        "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
        "9e2b5260-9424-c228-55a9-93572fe125aa",
        'quote " backslash \\ slash /',
        "control \x01\x1f\t\n\r\b\x0c del \x7f",
        "unicode é ✓ 😀 \u2028 \u2029",
    ]
    jobs = []
    for index in range(60):
        jobs.append(
            {
                "pairs": signed_pairs(random_request(rng)),
                "now": rng.choice([1_700_000_000, 1_561_072_107, 2_000_000_000, int(time.time())]),
                "jti": jtis[index % len(jtis)],
            }
        )
    tokens = node_build(tmo_builder_dir, vectors["keys"][0]["pem"], jobs)
    for job, token in zip(jobs, tokens, strict=True):
        ours = build_pop_token(job["pairs"], demo_key, ttl=120, now=job["now"], jti=job["jti"])
        assert ours == token, job
        assert decode_pop_token(token)[1]["jti"] == job["jti"]


def test_npm_fixed_vectors_come_from_this_builder(
    tmo_builder_dir: Path, vectors: dict[str, Any]
) -> None:
    # Guards the node harness itself: it must reproduce the three recorded npm tokens.
    fixed = [v for v in vectors["vectors"] if v["id"].startswith("js-npm-fixed_")]
    jobs = [
        {"pairs": v["ehts_values"], "now": 1_700_000_000, "jti": v["decoded_payload"]["jti"]}
        for v in fixed
    ]
    assert node_build(tmo_builder_dir, vectors["keys"][0]["pem"], jobs) == [
        v["token"] for v in fixed
    ]


@pytest.mark.parametrize(
    "body", ["", "{}", "😀" * 50, "a" * 100_000], ids=["empty", "json", "astral", "100k"]
)
def test_bodies_of_every_size_and_kind(
    tmo_builder_dir: Path, demo_key: PrivateKey, vectors: dict[str, Any], body: str
) -> None:
    pairs = [("Authorization", "Bearer t"), ("uri", "/u"), ("http-method", "POST"), ("body", body)]
    [token] = node_build(
        tmo_builder_dir,
        vectors["keys"][0]["pem"],
        [{"pairs": pairs, "now": 1_700_000_000, "jti": "j"}],
    )
    assert token == build_pop_token(pairs, demo_key, ttl=120, now=1_700_000_000, jti="j")
