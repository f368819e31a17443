"""The documentation pages' handlers and routes: API reference, Status codes, Explain a PoP.

The API reference and Status codes are public (a visitor reads them before having an account,
as on DevEdge); Explain a PoP needs a signed-in developer: it runs a search that costs up to a
tenth of a second per request, and its optional signature check uses the developer's own keys.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from starlette.responses import JSONResponse, Response

from taap.core import PublicKey
from taap.error_guide import error_table
from taap.portal.docs.explainer import (
    MAX_REQUEST,
    MAX_TOKEN,
    FormError,
    chosen_key,
    explain_pasted,
    key_choices,
)
from taap.portal.docs.reference import ApiDocuments, DocumentError, Operation, operations
from taap.portal.web import Ctx, Handler, NotFound

__all__ = ["docs_routes"]


class _Pages:
    """The handlers, over the product documents and the clock the portal was built with."""

    def __init__(self, documents: ApiDocuments, clock: Callable[[], float]) -> None:
        self.documents = documents
        self.clock = clock

    async def reference_index(self, ctx: Ctx) -> Response:
        products = await ctx.portal.apps.products()
        listed = [(p, self.documents.has(p.id)) for p in products]
        return ctx.render("reference_index.html", nav="reference", products=listed)

    async def reference_product(self, ctx: Ctx) -> Response:
        wanted = ctx.request.path_params["product"]
        product = next((p for p in await ctx.portal.apps.products() if p.id == wanted), None)
        if product is None:
            raise NotFound
        problem = ""
        info: dict[str, Any] = {}
        found: tuple[Operation, ...] = ()
        try:
            document = await self.documents.document(product.id)
        except DocumentError as exc:
            document, problem = (
                None,
                f"The OpenAPI document of this product cannot be shown: {exc}.",
            )
        if document is not None:
            described = document.get("info")
            info = described if isinstance(described, dict) else {}
            found = operations(document)
        return ctx.render(
            "reference_product.html",
            nav="reference",
            product=product,
            has_document=document is not None,
            problem=problem,
            info=info,
            operations=found,
        )

    async def reference_document(self, ctx: Ctx) -> Response:
        """The product's OpenAPI document itself, to import into a tool."""
        wanted = ctx.request.path_params["product"]
        if wanted not in {p.id for p in await ctx.portal.apps.products()}:
            raise NotFound
        try:
            document = await self.documents.document(wanted)
        except DocumentError:
            document = None
        if document is None:
            raise NotFound
        disposition = f'attachment; filename="{wanted}.openapi.json"'
        return JSONResponse(document, headers={"Content-Disposition": disposition})

    async def status_codes(self, ctx: Ctx) -> Response:
        return ctx.render("status_codes.html", nav="status-codes", rows=error_table())

    async def explain(self, ctx: Ctx) -> Response:
        account = ctx.require_user()
        keys: dict[str, tuple[PublicKey, ...]] = {}
        named = []
        for app in await ctx.portal.apps.listed(account):
            record = await ctx.portal.apps.client(app)
            if record is not None and record.keys:
                keys[app.id] = tuple(record.keys)
                named.append((app.id, app.name, record.keys))
        values = {"token": "", "request": "", "key": ""}
        result, errors, status = None, [], 200
        if ctx.request.method == "POST":
            values = {name: ctx.field(name) for name in values}
            key = chosen_key(values["key"], keys) if values["key"] else None
            try:
                result = explain_pasted(
                    values["token"], values["request"], now=self.clock(), key=key
                )
            except FormError as exc:
                errors, status = exc.errors, 400
        return ctx.render(
            "explain.html",
            nav="explain",
            status=status,
            values=values,
            errors=errors,
            field_errors=dict(errors),
            keys=key_choices(named),
            result=result,
            max_token=MAX_TOKEN,
            max_request=MAX_REQUEST,
        )


def docs_routes(
    documents: ApiDocuments, clock: Callable[[], float] = time.time
) -> tuple[tuple[str, Handler, tuple[str, ...]], ...]:
    """The pages' routes, in the form of the portal's route table."""
    pages = _Pages(documents, clock)
    return (
        ("/reference", pages.reference_index, ("GET",)),
        ("/reference/{product}", pages.reference_product, ("GET",)),
        ("/reference/{product}/openapi.json", pages.reference_document, ("GET",)),
        ("/status-codes", pages.status_codes, ("GET",)),
        ("/explain", pages.explain, ("GET", "POST")),
    )
