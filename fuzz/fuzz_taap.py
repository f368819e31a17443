"""Coverage-guided fuzzing (atheris) of every parser that reads untrusted input.

Each target feeds arbitrary bytes to one parser; the only acceptable outcomes are a result or a
``TaapError`` (or the parser's documented ``ValueError``). Anything else is a finding and makes
atheris stop with the crashing input saved.

    make fuzz                                # every target, 1,000,000 runs each
    .venv/bin/python fuzz/fuzz_taap.py pop -runs=1000000
"""

from __future__ import annotations

import contextlib
import hashlib
import json as _json
import sys
from collections.abc import Callable
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from taap.core import SignedValues, load_private_key, request_parts, verify_pop_token
    from taap.core._json import JsonError, loads_strict
    from taap.core.request import parse_pairs_json
    from taap.errors import TaapError

ROOT = Path(__file__).resolve().parent.parent
_VECTORS = _json.loads((ROOT / "tests" / "vectors" / "tmo-vectors.json").read_text())
# T-Mobile's demo key signed most vectors, so seeded tokens reach the later A3 steps.
_KEY = load_private_key(_VECTORS["keys"][0]["pem"]).public
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


TARGETS: dict[str, Callable[[bytes], None]] = {
    "pop": pop,
    "request": request,
    "json": json,
    "pairs": pairs,
}


def _seed_corpus(name: str) -> Path:
    """A corpus folder seeded with T-Mobile's vector tokens and value lists."""
    folder = ROOT / ".cache" / "fuzz" / name
    folder.mkdir(parents=True, exist_ok=True)
    seeds = [v["token"].encode() for v in _VECTORS["vectors"]]
    seeds += [_json.dumps(v.get("ehts_values") or []).encode() for v in _VECTORS["vectors"]]
    for seed in seeds:
        (folder / hashlib.sha256(seed).hexdigest()).write_bytes(seed)
    return folder


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: fuzz_taap.py {{{'|'.join(TARGETS)}}} [libFuzzer flags]")
    name = sys.argv[1]
    flags = [arg for arg in sys.argv[2:] if arg.startswith("-")]
    atheris.Setup([sys.argv[0], *flags, str(_seed_corpus(name))], TARGETS[name])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
