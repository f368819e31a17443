"""Schemathesis against ``/openapi.json`` of a real ``taap serve`` process (SECURITY.md §2
"Fuzzing"): requests generated from the document, no 5xx, and every response conforms to it
(status code, content type, headers, body schema).

Token requests cannot get past step 5 of A4 without credentials and a PoP over the exact bytes
sent, so a ``requests`` auth signs the *prepared* request: one request in three is sent as
generated (no credentials), one with the client's Basic credentials and a fresh step-1 PoP,
and one with, in addition, the v6 body's ``client_id``/``client_secret`` set to the real ones,
so generated bodies reach the body, PoP, subscription, replay and issuance steps. Revocations
are signed the same way, and two introspections in three carry a resource server's
credentials, so generated tokens reach the answers of both.

``TAAP_SCHEMATHESIS_EXAMPLES`` (default 60 per operation) sets the budget; docs/fuzzing.md has
the figures of a run with 1000.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from requests.auth import AuthBase
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import ignored_auth, negative_data_rejection

from kit.clients import register_client
from kit.processes import Service, start_serve, taap_ok
from kit.wire import basic
from taap.core import PrivateKey, build_pop_token, request_pairs

pytestmark = [pytest.mark.e2e]

EXAMPLES = int(os.environ.get("TAAP_SCHEMATHESIS_EXAMPLES", "60"))
TOKEN_PATHS = ("/oauth2/v2/tokens", "/oauth2/v6/tokens")
REVOKE = "/oauth2/v1/revoke"
INTROSPECT = "/oauth2/v1/introspect"
SIGNED_EXCLUDED = [ignored_auth, negative_data_rejection]


class Step1Auth(AuthBase):
    """Sign a prepared token request: Basic credentials and a PoP over its exact bytes."""

    def __init__(
        self, client_id: str, secret: str, key: PrivateKey, resource_server: tuple[str, str]
    ) -> None:
        self.client_id, self.secret, self.key = client_id, secret, key
        self.basic = basic(client_id, secret)
        self.rs_basic = basic(*resource_server)
        self.count = 0
        self.modes: Counter[str] = Counter()
        self.signed = False  # whether the last request was given real credentials

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        path = urlsplit(request.url or "").path
        self.signed = False
        if request.method != "POST" or path not in (*TOKEN_PATHS, REVOKE, INTROSPECT):
            return request
        self.count += 1
        mode = ("as-generated", "signed", "signed+body-credentials")[self.count % 3]
        self.modes[mode] += 1
        if mode == "as-generated":
            return request
        if path == INTROSPECT:
            request.headers["Authorization"] = self.rs_basic
            self.signed = True
            return request
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        if mode == "signed+body-credentials" and path.endswith("v6/tokens"):
            try:
                obj: Any = json.loads(body)
            except ValueError:
                obj = None
            if isinstance(obj, dict):
                obj.update(client_id=self.client_id, client_secret=self.secret)
                body = json.dumps(obj).encode()
        request.body = body
        request.prepare_content_length(body)
        request.headers["Authorization"] = self.basic
        self.signed = True
        content_type = request.headers.get("Content-Type") or "application/json"
        request.headers["Content-Type"] = content_type
        base = [("Content-Type", str(content_type)), ("Authorization", self.basic)]
        pairs = request_pairs("POST", unquote(request.path_url), base, body)
        try:
            request.headers["X-Authorization"] = build_pop_token(pairs, self.key)
        except Exception:  # a generated Content-Type the builder refuses: send as generated
            self.modes["unsignable"] += 1
        return request


@dataclass
class Served:
    server: Service
    auth: Step1Auth
    session: requests.Session = field(default_factory=requests.Session)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, rsa_key: PrivateKey) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("schemathesis")
    database_url = f"sqlite:///{folder / 'taap.db'}"
    client = register_client(database_url, rsa_key, ["connectivity", "call-verification"])
    client.http.close()
    made = taap_ok(
        "resource-servers", "create", "--name", "fuzz", "--json", "--database-url", database_url
    )
    resource_server = json.loads(made)
    # Limits high enough that generated failures do not turn every later answer into 429.
    server = start_serve(
        folder,
        database_url,
        name="serve",
        TAAP_RATE_ADDRESS="1000000/1",
        TAAP_RATE_CLIENT="1000000/1",
    )
    auth = Step1Auth(
        client.client_id,
        client.secret,
        rsa_key,
        (resource_server["id"], resource_server["secret"]),
    )
    served = Served(server, auth)
    try:
        yield served
    finally:
        served.session.close()
        server.stop()
        print(f"\nschemathesis statuses: {sorted(served.statuses.items())}")
        print(f"auth modes: {dict(served.auth.modes)}")


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_openapi_conformance(served: Served, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(served.server.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8  # two token endpoints, JWKS, 3 discovery paths, health, ready…
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            response = case.call(session=served.session, auth=served.auth, timeout=15)
            served.statuses[(f"{case.method} {case.path}", response.status_code)] += 1
            assert response.status_code < 500, response.text
            # Both judge the generated headers, which the auth replaced on a signed request
            # (a negative case may have dropped Authorization, the auth puts it back); the
            # status, content-type, header and schema conformance checks still run.
            excluded = SIGNED_EXCLUDED if served.auth.signed else None
            if response.status_code == 413 and not served.auth.signed:
                # An oversized body (a negative case's long token) is refused by its length
                # before anything else is read; schemathesis' list of rejections lacks 413.
                excluded = [negative_data_rejection]
            case.validate_response(response, excluded_checks=excluded)

        try:
            run()
        except Unsatisfiable:
            # A GET without parameters or body has no schema-violating form to generate.
            assert mode == GenerationMode.NEGATIVE
            assert operation.method.upper() == "GET", operation.label
