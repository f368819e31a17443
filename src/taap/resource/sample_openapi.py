"""The sample APIs' operations as data, and their OpenAPI 3.1 document (docs/guard.md).

:data:`SAMPLE_OPERATIONS` is the one definition of the sample APIs' routes: ``create_sample_app``
routes each operation to its handler by ``operation_id``, and :func:`sample_openapi_document`
describes the same operations, so the document cannot drift from what is served. Each
operation's error responses are its own errors plus every error the guard answers before the
handler runs, with the wire form of each (``TaapError.to_dict``) as an example.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from taap.errors import (
    BodyInvalidError,
    BodyTooLargeError,
    ContentTypeError,
    HeadersTooLargeError,
    MethodNotAllowedError,
    NotFoundError,
    NotSubscribedError,
    PopCoverageError,
    PopDigestError,
    PopExpiredError,
    PopMalformedError,
    PopMissingError,
    PopReplayedError,
    PopSignatureError,
    RequestMalformedError,
    TaapError,
    TokenInvalidError,
    TokenRevokedError,
    UnavailableError,
)

__all__ = [
    "E164_PATTERN",
    "GUARD_ERRORS",
    "ICCID_PATTERN",
    "MAX_SMS_TEXT",
    "OPENAPI_PATHS",
    "SAMPLE_OPERATIONS",
    "SampleOperation",
    "sample_openapi_document",
]

#: Where the sample app serves its document: ``/openapi.json`` when it runs alone (``taap
#: sample-api``); under ``taap serve --with-sample-apis`` that path is the token server's, so
#: the second one is the sample APIs' there.
OPENAPI_PATHS = ("/openapi.json", "/sample-apis/openapi.json")
ICCID_PATTERN = "89[0-9]{17,18}"
E164_PATTERN = r"\+[1-9][0-9]{1,14}"
MAX_SMS_TEXT = 918  # six concatenated GSM-7 segments of 153 characters

#: What the guard answers before any handler runs (docs/guard.md), in the order it checks.
GUARD_ERRORS: tuple[type[TaapError], ...] = (
    HeadersTooLargeError,
    BodyTooLargeError,
    RequestMalformedError,
    TokenInvalidError,
    TokenRevokedError,
    PopMissingError,
    PopMalformedError,
    PopSignatureError,
    PopExpiredError,
    PopCoverageError,
    PopDigestError,
    NotSubscribedError,
    PopReplayedError,
    MethodNotAllowedError,
    UnavailableError,
)

_DEVICE = {
    "type": "object",
    "required": ["iccid", "status", "plan", "last_seen"],
    "properties": {
        "iccid": {"type": "string", "pattern": f"^{ICCID_PATTERN}$"},
        "status": {"type": "string", "enum": ["active", "inactive", "suspended"]},
        "plan": {"type": "string"},
        "last_seen": {"type": "string", "format": "date-time"},
    },
    "additionalProperties": False,
}
_SMS = {
    "type": "object",
    "required": ["to", "text"],
    "properties": {
        "to": {"type": "string", "pattern": f"^{E164_PATTERN}$", "examples": ["+14255550100"]},
        "text": {"type": "string", "minLength": 1, "maxLength": MAX_SMS_TEXT},
    },
    "additionalProperties": False,
}
_QUEUED = {
    "type": "object",
    "required": ["message_id", "status"],
    "properties": {
        "message_id": {"type": "string", "format": "uuid"},
        "status": {"const": "queued"},
    },
    "additionalProperties": False,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SampleOperation:
    """One route of the sample APIs: where, what it answers and which errors are its own."""

    operation_id: str
    method: str
    path: str
    product: str
    summary: str
    description: str
    status: int
    answer: str
    schema: dict[str, Any]
    parameters: tuple[dict[str, Any], ...] = ()
    body: dict[str, Any] | None = None
    errors: tuple[type[TaapError], ...] = field(default=())


SAMPLE_OPERATIONS: tuple[SampleOperation, ...] = (
    SampleOperation(
        operation_id="getDevice",
        method="GET",
        path="/iot-connectivity/v1/devices/{iccid}",
        product="connectivity",
        summary="Look up a device by its ICCID",
        description="The SIM's status, plan and when the network last saw it.",
        status=200,
        answer="The device",
        schema=_DEVICE,
        parameters=(
            {
                "name": "iccid",
                "in": "path",
                "required": True,
                "description": "The SIM's ICCID: 19 or 20 digits starting with 89.",
                "schema": {"type": "string", "pattern": f"^{ICCID_PATTERN}$"},
                "example": "8901260000000000001",
            },
        ),
        errors=(RequestMalformedError, NotFoundError),
    ),
    SampleOperation(
        operation_id="sendMessage",
        method="POST",
        path="/sms/v1/messages",
        product="sms-notification",
        summary="Queue an SMS",
        description="Queues a text message to an E.164 number (the sample sends nothing).",
        status=201,
        answer="The message is queued",
        schema=_QUEUED,
        body=_SMS,
        errors=(ContentTypeError, BodyInvalidError),
    ),
)

_SECURITY_SCHEMES = {
    "accessToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "The access token of TAAP step 2, sent as 'Authorization: Bearer …'.",
    },
    "pop": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Authorization",
        "description": (
            "A fresh PoP token for this very request (TAAP step 3), signed with the key bound "
            "to the access token over Authorization, uri, http-method and the body; one use."
        ),
    },
}
_ERROR = {
    "type": "object",
    "required": ["error", "error_description", "error_code"],
    "properties": {
        "error": {"type": "string"},
        "error_description": {"type": "string"},
        "error_code": {"type": "string"},
    },
    "additionalProperties": False,
}


def _error_responses(operation: SampleOperation) -> dict[str, Any]:
    by_status: dict[int, list[type[TaapError]]] = defaultdict(list)
    for cls in (*operation.errors, *GUARD_ERRORS):
        if cls not in by_status[cls.status_code]:
            by_status[cls.status_code].append(cls)
    responses: dict[str, Any] = {}
    for status in sorted(by_status):
        classes = by_status[status]
        examples = {cls.error_code: {"value": cls().to_dict()} for cls in classes}
        responses[str(status)] = {
            "description": f"{HTTPStatus(status).phrase}: the error_code says why",
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/Error"},
                    "examples": examples,
                }
            },
        }
    return responses


def _operation(operation: SampleOperation) -> dict[str, Any]:
    answer = {
        "description": operation.answer,
        "content": {"application/json": {"schema": operation.schema}},
    }
    document: dict[str, Any] = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "description": operation.description,
        "tags": [operation.product],
        "responses": {str(operation.status): answer, **_error_responses(operation)},
    }
    if operation.parameters:
        document["parameters"] = [dict(p) for p in operation.parameters]
    if operation.body is not None:
        document["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": operation.body}},
        }
    return document


def sample_openapi_document(product: str | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the sample APIs, or of one ``product``'s operations.

    The server URL is relative (``/``): the document is served by the app it describes.
    """
    paths: dict[str, dict[str, Any]] = {}
    for operation in SAMPLE_OPERATIONS:
        if product is None or operation.product == product:
            paths.setdefault(operation.path, {})[operation.method.lower()] = _operation(operation)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "taap sample APIs" + (f": {product}" if product else ""),
            "version": "1",
            "description": (
                "The sample APIs behind the TAAP guard. Every call carries a Bearer access "
                "token and a PoP token for that request."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"accessToken": [], "pop": []}],
        "paths": paths,
        "components": {"schemas": {"Error": _ERROR}, "securitySchemes": _SECURITY_SCHEMES},
    }
