"""The Postman collection (v2.1) and environment of one client, as JSON-ready dicts.

The collection holds no secret: the client secret and the private key live in the environment,
as ``secret`` variables. Every request is signed by the collection's pre-request script
(``postman_prerequest.js``) just before it is sent; each request's test script
(``postman_test.js``) checks the status and keeps the access tokens of the token requests.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from taap.resource.sample import DEVICES
from taap.server.registry.port import DEFAULT_PRODUCTS

__all__ = [
    "COLLECTION_FILE",
    "ENVIRONMENT_FILE",
    "SAMPLE_CALLS",
    "PostmanExport",
    "SampleCall",
    "build_collection",
    "build_environment",
    "script_lines",
]

COLLECTION_FILE = "taap.postman_collection.json"
ENVIRONMENT_FILE = "taap.postman_environment.json"
SCHEMA = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
STEP2 = "Step 2: access token"
STEPS34 = "Steps 3\u20134: API calls"
# Stable ids, so re-importing a regenerated collection replaces the old one in Postman.
_NAMESPACE = uuid.UUID("5b0c9d1e-6a8f-4d2b-9c4e-7f1a2b3c4d5e")
_VERSIONED = re.compile(r"/v[26]/tokens/?$")
_JSON = {"raw": {"language": "json"}}


@dataclass(frozen=True, slots=True)
class SampleCall:
    """One endpoint of a product's sample API, as the collection calls it."""

    name: str
    method: str
    path: str
    body: str
    status: int


#: The sample APIs of ``taap serve --with-sample-apis`` (``taap.resource.sample``): product ->
#: its endpoints. Products without a sample API get a token request only.
SAMPLE_CALLS: dict[str, tuple[SampleCall, ...]] = {
    "connectivity": (
        SampleCall(
            "Device lookup", "GET", f"/iot-connectivity/v1/devices/{next(iter(DEVICES))}", "", 200
        ),
    ),
    "sms-notification": (
        SampleCall(
            "Send SMS",
            "POST",
            "/sms/v1/messages",
            '{"to":"+14255550100","text":"Hello from Postman"}',
            201,
        ),
    ),
}

_VERSIONS = {product.id: product.token_server for product in DEFAULT_PRODUCTS}


@dataclass(frozen=True, slots=True, kw_only=True)
class PostmanExport:
    """What the files are generated for. ``products`` empty means every built-in product.

    Raises:
        ValueError: a token URL that is not absolute http(s) or does not end in ``/v2/tokens``
            or ``/v6/tokens``; an ``api_url`` that is not absolute http(s); an unknown product.
    """

    token_url: str
    client_id: str
    api_url: str | None = None
    products: Sequence[str] = ()
    client_secret: str | None = field(default=None, repr=False)
    private_key_pem: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        _check_url(self.token_url, "token URL")
        if not _VERSIONED.search(urlsplit(self.token_url).path):
            raise ValueError("the token URL must end in /v2/tokens or /v6/tokens")
        if self.api_url is not None:
            _check_url(self.api_url, "API URL")
        if not self.client_id:
            raise ValueError("the client id is empty")
        unknown = sorted(set(self.products) - set(_VERSIONS))
        if unknown:
            known = ", ".join(sorted(_VERSIONS))
            raise ValueError(f"unknown product {unknown[0]!r} (known: {known})")

    @property
    def chosen(self) -> tuple[str, ...]:
        """The products, in the order given (every built-in one when none was)."""
        return tuple(dict.fromkeys(self.products or sorted(_VERSIONS)))

    def token_urls(self) -> dict[str, str]:
        """``v2`` and ``v6`` -> the token endpoint URL (one derived from the other)."""
        split = urlsplit(self.token_url)
        stem = _VERSIONED.sub("", split.path)
        return {
            version: split._replace(path=f"{stem}/{version}/tokens").geturl()
            for version in ("v2", "v6")
        }

    @property
    def base_url(self) -> str:
        """The sample APIs' base URL: ``api_url``, else the token server's origin."""
        if self.api_url:
            return self.api_url.rstrip("/")
        split = urlsplit(self.token_url)
        return f"{split.scheme}://{split.netloc}"

    @property
    def holds_secrets(self) -> bool:
        return bool(self.client_secret or self.private_key_pem)


def _check_url(url: str, what: str) -> None:
    split = urlsplit(url)
    if split.scheme not in ("http", "https") or not split.netloc:
        raise ValueError(f"the {what} must be an absolute http(s) URL")


def script_lines(name: str, prefix: Iterable[str] = ()) -> list[str]:
    """A script of this package as Postman's ``exec`` lines, after the ``prefix`` lines."""
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    return [*prefix, *text.splitlines()]


def _event(listen: str, lines: list[str]) -> dict[str, Any]:
    return {"listen": listen, "script": {"type": "text/javascript", "exec": lines}}


def _item(
    name: str,
    method: str,
    url: str,
    headers: list[tuple[str, str]],
    body: str,
    expect: dict[str, Any],
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "method": method,
        "header": [{"key": key, "value": value, "type": "text"} for key, value in headers],
        "url": url,
    }
    if body or method == "POST":
        request["body"] = {"mode": "raw", "raw": body, "options": _JSON}
    setting = f"const taapExpect = {json.dumps(expect, sort_keys=True)};"
    return {
        "name": name,
        "event": [_event("test", script_lines("postman_test.js", [setting]))],
        "request": request,
    }


def _token_items(export: PostmanExport) -> list[dict[str, Any]]:
    items = []
    for version, variable in (("v2", "{{token_url}}"), ("v6", "{{token_url_v6}}")):
        products = [p for p in export.chosen if _VERSIONS[p] == version]
        if not products:
            continue
        body = ""
        if version == "v6":
            body = (
                '{"client_id":"{{client_id}}","client_secret":"{{client_secret}}",'
                '"scope":"response_mode","grant-type":"client_credentials"}'
            )
        items.append(
            _item(
                f"{version} token ({', '.join(products)})",
                "POST",
                variable,
                [("Content-Type", "application/json")],
                body,
                {"status": 200, "tokenVersion": version},
            )
        )
    return items


def _api_items(export: PostmanExport) -> list[dict[str, Any]]:
    items = []
    for product in export.chosen:
        bearer = f"Bearer {{{{access_token_{_VERSIONS[product]}}}}}"
        for call in SAMPLE_CALLS.get(product, ()):
            headers = [("Content-Type", "application/json")] if call.body else []
            items.append(
                _item(
                    f"{call.name} ({product})",
                    call.method,
                    "{{api_url}}" + call.path,
                    [*headers, ("Authorization", bearer)],
                    call.body,
                    {"status": call.status},
                )
            )
    return items


def build_collection(export: PostmanExport) -> dict[str, Any]:
    """The collection: the two folders, the signing script, the token variables."""
    versions = sorted({_VERSIONS[p] for p in export.chosen})
    variables = [
        {"key": f"access_token_{version}{suffix}", "value": ""}
        for version in versions
        for suffix in ("", "_expires_at")
    ]
    return {
        "info": {
            "_postman_id": str(uuid.uuid5(_NAMESPACE, f"collection {export.client_id}")),
            "name": f"taap {export.client_id}",
            "description": "TAAP steps 2-4; every request signs its own PoP (docs/postman.md).",
            "schema": SCHEMA,
        },
        "item": [
            {"name": STEP2, "item": _token_items(export)},
            {"name": STEPS34, "item": _api_items(export)},
        ],
        "event": [_event("prerequest", script_lines("postman_prerequest.js"))],
        "variable": variables,
    }


def build_environment(export: PostmanExport) -> dict[str, Any]:
    """The environment: URLs and client id in the clear, secret and key as ``secret``."""
    urls = export.token_urls()
    values = [
        ("token_url", urls["v2"], "default"),
        ("token_url_v6", urls["v6"], "default"),
        ("api_url", export.base_url, "default"),
        ("client_id", export.client_id, "default"),
        ("client_secret", export.client_secret or "", "secret"),
        ("private_key", export.private_key_pem or "", "secret"),
    ]
    return {
        "id": str(uuid.uuid5(_NAMESPACE, f"environment {export.client_id}")),
        "name": f"taap {export.client_id}",
        "values": [
            {"key": key, "value": value, "type": kind, "enabled": True}
            for key, value, kind in values
        ],
        "_postman_variable_scope": "environment",
    }
