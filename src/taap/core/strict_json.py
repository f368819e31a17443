"""Strict JSON for everything that arrives from the network (SECURITY.md S7).

Rejected: invalid UTF-8, a BOM, duplicate member names, ``NaN``/``Infinity``, numbers that
overflow a float or have more than 40 characters, ``\\ud800``-style escapes of lone surrogates
(not Unicode text), nesting deeper than a bound, and (when asked) any top level other than an
object. Python's ``json`` accepts all of these by default. Every check is linear in the input.
"""

from __future__ import annotations

import json
import math
import re
from array import array
from itertools import accumulate
from typing import Any

__all__ = ["JsonError", "dumps_compact", "loads_strict"]

# Unrolled and with an optional closing quote: every character has one way to match and a match
# never fails once started, so the scan is linear even on unterminated strings full of ``\"``.
_STRINGS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_MAX_NUMBER_CHARS = 40


class JsonError(ValueError):
    """The input is not strict JSON."""


def _object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise JsonError("duplicate member name")
    return obj


def _reject_constant(name: str) -> Any:
    raise JsonError(f"{name} is not JSON")


def _parse_int(text: str) -> int:
    if len(text) > _MAX_NUMBER_CHARS:
        raise JsonError("number too long")
    return int(text)


def _parse_float(text: str) -> float:
    if len(text) > _MAX_NUMBER_CHARS:
        raise JsonError("number too long")
    value = float(text)
    if not math.isfinite(value):
        raise JsonError("number out of range")
    return value


_DECODER = json.JSONDecoder(
    object_pairs_hook=_object_pairs,
    parse_constant=_reject_constant,
    parse_int=_parse_int,
    parse_float=_parse_float,
)


def _too_deep(text: str, max_depth: int) -> bool:
    # Fast path: fewer opening brackets than the bound cannot nest deeper than it.
    if text.count("[") + text.count("{") <= max_depth:
        return False
    # Strings are removed first so brackets inside them do not count; then the running sum of
    # +1/-1 per bracket, computed in C (array + accumulate), gives the depth. Linear time.
    brackets = _NOT_BRACKETS.sub("", _STRINGS.sub("", text)).encode("ascii")
    return max(accumulate(array("b", brackets.translate(_STEPS))), default=0) > max_depth


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    return False


def loads_strict(data: bytes | str, *, max_depth: int = 32, require_object: bool = True) -> Any:
    """Parse strict JSON.

    Raises:
        JsonError: on anything the module docstring lists, or plain invalid JSON.
    """
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonError("not UTF-8") from exc
    else:
        text = data
    if text.startswith("\ufeff"):
        raise JsonError("byte order mark")
    if _too_deep(text, max_depth):
        raise JsonError("nesting too deep")
    try:
        value = _DECODER.decode(text)
    except JsonError:
        raise
    except (ValueError, RecursionError) as exc:
        raise JsonError("invalid JSON") from exc
    # "\\ud800" escapes decode to lone surrogates, which are not Unicode text: they would crash
    # every later .encode("utf-8"). Only text holding such an escape needs the walk.
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        raise JsonError("lone surrogate in a string")
    if require_object and not isinstance(value, dict):
        raise JsonError("not a JSON object")
    return value


def dumps_compact(value: Any) -> bytes:
    """Compact UTF-8 JSON, key order preserved (as ``JSON.stringify`` writes it)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
