"""The **Try it** page: the four TAAP steps run by the browser against this server.

The page (``templates/console/try.html`` with ``static/console-pop.js`` and
``static/console-try.js``) reads the private key from a local file, signs with WebCrypto and
sends the token request and the API call itself, same-origin. The server only renders the
form: the calls the app's products offer, in the app's product order, so the first call of
its first product is preselected. Nothing the developer types or picks reaches the portal.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from starlette.responses import Response

from taap.portal.console.access import visible_app
from taap.portal.console.explanations import EXPLANATIONS
from taap.portal.web import Ctx
from taap.postman import SAMPLE_CALLS
from taap.server.registry.port import ApiProduct

__all__ = ["TryCall", "try_calls", "try_page"]

# The Postman collection's SMS text names Postman; the portal's names itself.
_SMS_BODY = json.dumps(
    {"to": "+14255550100", "text": "Hello from the taap portal"}, separators=(",", ":")
)


@dataclass(frozen=True, slots=True)
class TryCall:
    """One API call the page can run, with the token server its product uses."""

    value: str
    label: str
    method: str
    path: str
    body: str
    version: str


def try_calls(apis: Sequence[str], products: Mapping[str, ApiProduct]) -> list[TryCall]:
    """The sample calls of the app's products (``apis`` in the app's order); products with
    no sample API, or unknown here, offer none."""
    calls: list[TryCall] = []
    for product_id in apis:
        product = products.get(product_id)
        if product is None:
            continue
        for sample in SAMPLE_CALLS.get(product_id, ()):
            body = _SMS_BODY if product_id == "sms-notification" else sample.body
            calls.append(
                TryCall(
                    value=str(len(calls)),
                    label=f"{product.name}: {sample.name} ({sample.method} {sample.path})",
                    method=sample.method,
                    path=sample.path,
                    body=body,
                    version=product.token_server,
                )
            )
    return calls


async def try_page(ctx: Ctx) -> Response:
    """``GET /portal/apps/{app_id}/try``."""
    app, record = await visible_app(ctx)
    products = {p.id: p for p in await ctx.portal.apps.products()}
    return ctx.render(
        "console/try.html",
        nav="apps",
        app=app,
        client=record,
        calls=try_calls(record.apis, products),
        explanations=sorted(EXPLANATIONS.items()),
    )
