"""Strict JSON for everything that arrives from the network (SECURITY.md S7).

Rejected: invalid UTF-8, a BOM, duplicate member names, ``NaN``/``Infinity``, numbers that
overflow a float or have absurdly many digits, nesting deeper than a bound, and (when asked)
any top level other than an object. Python's ``json`` accepts all of these by default.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["JsonError", "dumps_compact", "loads_strict"]

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")
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


def _depth(text: str) -> int:
    # Strings are removed first so brackets inside them do not count; the regex is linear.
    depth = deepest = 0
    for match in _BRACKETS.finditer(_STRINGS.sub("", text)):
        if match.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


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
    if _depth(text) > max_depth:
        raise JsonError("nesting too deep")
    try:
        value = _DECODER.decode(text)
    except JsonError:
        raise
    except (ValueError, RecursionError) as exc:
        raise JsonError("invalid JSON") from exc
    if require_object and not isinstance(value, dict):
        raise JsonError("not a JSON object")
    return value


def dumps_compact(value: Any) -> bytes:
    """Compact UTF-8 JSON, key order preserved (as ``JSON.stringify`` writes it)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
