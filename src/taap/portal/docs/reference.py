"""The API reference's documents: where each product's OpenAPI document comes from, and the
operations of a document as the reference page shows them.

A product's document is, in order: the file or URL the operator named for it in
``TAAP_PORTAL_OPENAPI``; for the sample APIs' products (when the portal runs beside them) the
document generated from their routes; else none, and the page says so. Files and URLs are read
when a page needs them, at most 2 MiB, a URL within 5 seconds, and kept 5 minutes. A document
that cannot be read or is not an OpenAPI object is reported on the page, never as a 5xx.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx

from taap.core.strict_json import JsonError, loads_strict
from taap.resource.sample_openapi import SAMPLE_OPERATIONS, sample_openapi_document

__all__ = ["ApiDocuments", "DocumentError", "Operation", "operations"]

MAX_DOCUMENT = 2 * 1024 * 1024
FETCH_TIMEOUT = 5.0
KEEP_SECONDS = 300.0
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
_MAX_DEPTH = 12  # $ref resolution and nesting shown
_MAX_SHOWN = 32 * 1024  # characters of one schema shown


class DocumentError(Exception):
    """The product's document cannot be read or is not an OpenAPI object (a safe message)."""


@dataclass
class ApiDocuments:
    """product id → its OpenAPI document, read lazily and kept ``KEEP_SECONDS``."""

    sources: Mapping[str, str] = field(default_factory=dict)
    samples: bool = True
    clock: Callable[[], float] = time.monotonic
    _kept: dict[str, tuple[float, dict[str, Any] | DocumentError]] = field(default_factory=dict)

    def has(self, product: str) -> bool:
        return product in self.sources or (self.samples and _is_sample(product))

    async def document(self, product: str) -> dict[str, Any] | None:
        """The product's document, or ``None`` when it has none.

        Raises:
            DocumentError: the operator's file or URL could not be read or is not OpenAPI.
        """
        source = self.sources.get(product)
        if source is None:
            return sample_openapi_document(product) if self.has(product) else None
        kept = self._kept.get(product)
        if kept is None or self.clock() - kept[0] > KEEP_SECONDS:
            try:
                kept = (self.clock(), _checked(await _read(source)))
            except DocumentError as exc:
                kept = (self.clock(), exc)
            self._kept[product] = kept
        if isinstance(kept[1], DocumentError):
            raise kept[1]
        return kept[1]


def _is_sample(product: str) -> bool:
    return any(op.product == product for op in SAMPLE_OPERATIONS)


async def _read(source: str) -> bytes:
    if source.startswith(("http://", "https://")):
        try:
            async with (
                httpx.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=False) as http,
                http.stream("GET", source) as answer,
            ):
                if answer.status_code != 200:
                    raise DocumentError(f"its URL answered HTTP {answer.status_code}")
                data = bytearray()
                async for chunk in answer.aiter_bytes():
                    data += chunk
                    if len(data) > MAX_DOCUMENT:
                        raise DocumentError("it is larger than 2 MiB")
                return bytes(data)
        except httpx.HTTPError:
            raise DocumentError("its URL could not be reached") from None
    try:
        async with await anyio.open_file(Path(source), "rb") as handle:
            content = await handle.read(MAX_DOCUMENT + 1)
    except OSError:
        raise DocumentError("its file could not be read") from None
    if len(content) > MAX_DOCUMENT:
        raise DocumentError("it is larger than 2 MiB")
    return content


def _checked(data: bytes) -> dict[str, Any]:
    try:
        document = loads_strict(data, max_depth=64)
    except JsonError:
        raise DocumentError("it is not a JSON document") from None
    version = document.get("openapi")
    if not isinstance(version, str) or not version.startswith("3."):
        raise DocumentError("it is not an OpenAPI 3 document")
    if not isinstance(document.get("paths", {}), dict):
        raise DocumentError("its paths are not an object")
    return dict(document)


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    where: str
    required: bool
    schema: str
    description: str


@dataclass(frozen=True, slots=True)
class Response:
    status: str
    description: str
    schema: str  # pretty JSON of the schema, "" when none
    codes: tuple[str, ...]  # error_code of each example


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation as the reference page shows it (every value plain text, escaped there)."""

    method: str
    path: str
    anchor: str
    summary: str
    description: str
    parameters: tuple[Parameter, ...]
    body_media: str
    body_schema: str
    responses: tuple[Response, ...]


class _Budget:
    """How many nodes resolving may still build: ``$ref``s that point at each other twice per
    level would otherwise multiply a small document into a huge page."""

    def __init__(self, nodes: int = 20_000) -> None:
        self.nodes = nodes


def _resolve(
    document: Mapping[str, Any], node: Any, depth: int = 0, budget: _Budget | None = None
) -> Any:
    """``node`` with local ``$ref``s replaced by what they point at (cycles stop at a depth)."""
    budget = budget or _Budget()
    budget.nodes -= 1
    if depth > _MAX_DEPTH or budget.nodes < 0:
        return node
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            target: Any = document
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                target = target.get(part) if isinstance(target, dict) else None
            if target is not None:
                return _resolve(document, target, depth + 1, budget)
        return {k: _resolve(document, v, depth + 1, budget) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(document, v, depth + 1, budget) for v in node]
    return node


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _pretty(schema: Any) -> str:
    if schema is None:
        return ""
    text = json.dumps(schema, indent=2, ensure_ascii=False)
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "\n… (cut: too long to show)"


def _parameters(document: Mapping[str, Any], items: list[Any]) -> tuple[Parameter, ...]:
    shown = []
    for raw in items:
        item = _resolve(document, raw)
        if not isinstance(item, dict):
            continue
        schema = item.get("schema")
        kind = schema.get("type") if isinstance(schema, dict) else None
        pattern = schema.get("pattern") if isinstance(schema, dict) else None
        summary = _text(kind) + (f", pattern {pattern}" if isinstance(pattern, str) else "")
        shown.append(
            Parameter(
                name=_text(item.get("name")),
                where=_text(item.get("in")),
                required=item.get("required") is True,
                schema=summary,
                description=_text(item.get("description")),
            )
        )
    return tuple(shown)


def _first_media(content: Any) -> tuple[str, Any]:
    if isinstance(content, dict) and content:
        media, entry = next(iter(content.items()))
        return str(media), entry if isinstance(entry, dict) else {}
    return "", {}


def _responses(document: Mapping[str, Any], responses: Any) -> tuple[Response, ...]:
    shown = []
    for status, raw in (responses or {}).items() if isinstance(responses, dict) else ():
        answer = _resolve(document, raw)
        answer = answer if isinstance(answer, dict) else {}
        _, entry = _first_media(answer.get("content"))
        examples = entry.get("examples")
        codes = tuple(str(k) for k in examples) if isinstance(examples, dict) else ()
        schema = entry.get("schema")
        shown.append(
            Response(str(status), _text(answer.get("description")), _pretty(schema), codes)
        )
    return tuple(shown)


def _operation(
    document: Mapping[str, Any], path: str, method: str, raw: Any, shared: list[Any]
) -> Operation:
    body = _resolve(document, raw.get("requestBody")) or {}
    media, entry = _first_media(body.get("content") if isinstance(body, dict) else None)
    params = [*shared, *(raw.get("parameters") or [])]
    return Operation(
        method=method.upper(),
        path=path,
        anchor=f"{method}-{path}".replace("/", "-").replace("{", "").replace("}", "").strip("-"),
        summary=_text(raw.get("summary")),
        description=_text(raw.get("description")),
        parameters=_parameters(document, params if isinstance(params, list) else []),
        body_media=media,
        body_schema=_pretty(entry.get("schema")) if media else "",
        responses=_responses(document, raw.get("responses")),
    )


def operations(document: Mapping[str, Any]) -> tuple[Operation, ...]:
    """Every operation of ``document``, in the document's order of paths and methods."""
    found = []
    paths = document.get("paths")
    for path, item in paths.items() if isinstance(paths, dict) else ():
        if not isinstance(item, dict):
            continue
        listed = item.get("parameters")
        shared: list[Any] = listed if isinstance(listed, list) else []
        for method in _METHODS:
            raw = item.get(method)
            if isinstance(raw, dict):
                found.append(_operation(document, str(path), method, raw, shared))
    return tuple(found)
