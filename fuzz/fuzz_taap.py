"""Coverage-guided fuzzing (atheris) of every parser that reads untrusted input.

Each target feeds arbitrary bytes to one parser; the only acceptable outcomes are a result or a
``TaapError`` (or the parser's documented ``ValueError``). Anything else is a finding and makes
atheris stop with the crashing input saved.

    make fuzz                                # the Makefile's targets, 1,000,000 runs each
    .venv/bin/python fuzz/fuzz_taap.py pop -runs=1000000
    .venv/bin/python fuzz/fuzz_taap.py all -runs=1000000 -print_final_stats=1   # every target

Targets: ``pop`` (PoP verifier), ``request`` (request-value extraction), ``json`` (strict JSON),
``pairs`` (``--ehts-json``), ``basic`` (``Authorization: Basic`` parser), ``v6`` (v6 and v2
token-request bodies), ``token`` (the guard's access-token verifier and ``Bearer`` parser).
Results and figures: docs/fuzzing.md.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json as _json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from taap.core import (
        SignedValues,
        issue_access_token,
        load_private_key,
        request_parts,
        verify_access_token,
        verify_pop_token,
    )
    from taap.core.request import parse_pairs_json
    from taap.core.strict_json import JsonError, loads_strict
    from taap.errors import TaapError
    from taap.resource.validator import bearer_token
    from taap.server.tokens.clientauth import check_v2_body, parse_basic, parse_v6_body

ROOT = Path(__file__).resolve().parent.parent
_VECTORS = _json.loads((ROOT / "tests" / "vectors" / "tmo-vectors.json").read_text())
# T-Mobile's demo key signed most vectors, so seeded tokens reach the later A3 steps.
_PRIVATE = load_private_key(_VECTORS["keys"][0]["pem"])
_KEY = _PRIVATE.public
_VALUES = SignedValues(
    [
        ("Content-Type", "application/json"),
        ("Authorization", "Bearer UtKV75JJbVAewOrkHMXhLbiQ11SS"),
        ("uri", "/commerce/v1/orders"),
        ("http-method", "POST"),
        ("body", '{"orderId": 100, "product": "Mobile Phone"}'),
    ]
)


def pop(data: bytes) -> None:
    """The PoP verifier on an arbitrary token string (A3 steps 1-6)."""
    # Header values reach the verifier as latin-1 decoded text (ASGI), so every byte maps.
    token = data.decode("latin-1")
    with contextlib.suppress(TaapError):
        verify_pop_token(token, keys=[_KEY], request=_VALUES, now=1_700_000_000)


def request(data: bytes) -> None:
    """Request-value extraction on an arbitrary path, query, headers and body."""
    fdp = atheris.FuzzedDataProvider(data)
    path = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 64))
    query = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 64))
    headers = [
        (
            fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 16)),
            fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 32)),
        )
        for _ in range(fdp.ConsumeIntInRange(0, 6))
    ]
    body = fdp.ConsumeBytes(fdp.remaining_bytes())
    try:
        parts = request_parts("POST", path, query, headers, body)
    except TaapError:
        return
    for name in ("uri", "http-method", "body", "authorization"):
        parts.value(name)


def json(data: bytes) -> None:
    """The strict JSON parser used for tokens and request bodies."""
    with contextlib.suppress(JsonError):
        loads_strict(data, require_object=False)


def pairs(data: bytes) -> None:
    """The ``--ehts-json`` pair list reader."""
    with contextlib.suppress(ValueError):
        parse_pairs_json(data)


_CLIENT_ID = "taap-FUZZclient0000000000000000000000"
_SECRET = "s3cr3t-fuzz_secret-value-0123456789abcdefg"


def basic(data: bytes) -> None:
    """The ``Authorization: Basic`` parser (header values arrive latin-1 decoded)."""
    with contextlib.suppress(TaapError):
        client_id, secret = parse_basic(data.decode("latin-1"))
        # Whatever it accepts is split at the first colon into two non-empty halves.
        assert ":" not in client_id
        assert client_id
        assert secret


def v6(data: bytes) -> None:
    """The v6 token-request body rules (A4) and the v2 body check on the same bytes."""
    with contextlib.suppress(TaapError):
        parsed = parse_v6_body(data, client_id=_CLIENT_ID, client_secret=_SECRET)
        assert parsed.client_id == _CLIENT_ID
        assert parsed.client_secret == _SECRET
    with contextlib.suppress(TaapError):
        check_v2_body(data)


_KID = "fuzz-kid"
_ISSUER = "http://127.0.0.1:8000/oauth2/v1"
_NOW = 1_700_000_000


def token(data: bytes) -> None:
    """The guard's ``Bearer`` parser and access-token verifier (A7 step 1)."""
    with contextlib.suppress(TaapError):
        verify_access_token(
            bearer_token(data.decode("latin-1")),
            keys={_KID: _KEY},
            issuer=_ISSUER,
            now=_NOW,
        )


TARGETS: dict[str, Callable[[bytes], None]] = {
    "pop": pop,
    "request": request,
    "json": json,
    "pairs": pairs,
    "basic": basic,
    "v6": v6,
    "token": token,
}


def _access_token(**extra: str) -> str:
    return issue_access_token(
        key=_PRIVATE,
        kid=_KID,
        issuer=_ISSUER,
        client_id=_CLIENT_ID,
        apis=["connectivity"],
        cnf_jwk=_KEY.jwk,
        now=_NOW,
        extra=extra or None,
    )


def _target_seeds(name: str) -> list[bytes]:
    """Valid inputs per target, so mutation starts next to the accepting paths."""
    if name == "basic":
        creds = [f"{_CLIENT_ID}:{_SECRET}", "123:abc", "a:b:c", "é:ü"]
        return [b"Basic " + base64.b64encode(c.encode()) for c in creds] + [b"basic YTpi"]
    if name == "v6":
        body = {
            "client_id": _CLIENT_ID,
            "client_secret": _SECRET,
            "scope": "response_mode",
            "grant-type": "client_credentials",
        }
        return [
            _json.dumps(body).encode(),
            _json.dumps({**body, "grant_type": "client_credentials", "storeId": "1"}).encode(),
            _json.dumps({**body, "dealerCode": "D" * 64}).encode(),
            b"{}",
            b"",
        ]
    if name == "token":
        return [
            b"Bearer " + _access_token().encode(),
            b"bearer " + _access_token(storeId="s", dealerCode="d").encode(),
        ]
    seeds = [v["token"].encode() for v in _VECTORS["vectors"]]
    seeds += [_json.dumps(v.get("ehts_values") or []).encode() for v in _VECTORS["vectors"]]
    return seeds


def _seed_corpus(name: str) -> Path:
    """A corpus folder seeded with T-Mobile's vector tokens and value lists."""
    folder = ROOT / ".cache" / "fuzz" / name
    folder.mkdir(parents=True, exist_ok=True)
    for seed in _target_seeds(name):
        (folder / hashlib.sha256(seed).hexdigest()).write_bytes(seed)
    return folder


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in [*TARGETS, "all"]:
        sys.exit(f"usage: fuzz_taap.py {{{'|'.join(TARGETS)}|all}} [libFuzzer flags]")
    name = sys.argv[1]
    if name == "all":
        # One process per target: libFuzzer runs one target per process and exits at the end.
        for each in TARGETS:
            print(f"== {each}", flush=True)
            subprocess.run([sys.executable, __file__, each, *sys.argv[2:]], check=True)
        return
    flags = [arg for arg in sys.argv[2:] if arg.startswith("-")]
    atheris.Setup([sys.argv[0], *flags, str(_seed_corpus(name))], TARGETS[name])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
