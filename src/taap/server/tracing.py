"""Optional OpenTelemetry tracing of the token server (``TAAP_OTEL=true``, extra ``otel``).

One server span per HTTP request, named ``<METHOD> <route>`` (the route is one of the server's
fixed paths, or ``other``: no unbounded span names), with the request id, the endpoint and the
response status as attributes. Nothing secret is recorded: no headers, no body, no client id.

The spans go wherever the process's OpenTelemetry SDK sends them; this module only uses the
API. Configure the SDK the usual way, for example ``opentelemetry-instrument taap serve`` with
``OTEL_EXPORTER_OTLP_ENDPOINT``; without an SDK the API's spans are no-ops. The API is imported
only when tracing is switched on, so the default server pays nothing.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from taap.asgi import Receive, Scope, Send
from taap.errors import ConfigurationError
from taap.server.discovery import DISCOVERY_PATHS
from taap.server.logs import REQUEST_ID

__all__ = ["TracingApp"]

_ROUTES = {
    "/oauth2/v2/tokens": "token_v2",
    "/oauth2/v6/tokens": "token_v6",
    "/oauth2/v1/jwks": "jwks",
    "/healthz": "health",
    "/readyz": "ready",
    "/metrics": "metrics",
    "/openapi.json": "openapi",
} | dict.fromkeys(DISCOVERY_PATHS, "discovery")


class TracingApp:
    """ASGI wrapper: one OpenTelemetry server span per HTTP request."""

    def __init__(self, app: Any, *, tracer: Any = None) -> None:
        """``tracer``: an OpenTelemetry ``Tracer`` (default: the global provider's).

        Raises:
            ConfigurationError: ``opentelemetry-api`` is not installed (extra ``otel``).
        """
        try:
            from opentelemetry import trace
        except ImportError as exc:
            raise ConfigurationError(
                "TAAP_OTEL needs OpenTelemetry: pip install 'taap[otel]'"
            ) from exc
        self.app = app
        self._kind = trace.SpanKind.SERVER
        self.tracer = tracer if tracer is not None else trace.get_tracer("taap.server")

    def __getattr__(self, name: str) -> Any:
        # The wrapped TokenServerApp's attributes (settings, lifecycle, replay_store, ...).
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = _ROUTES.get(scope["path"], "other")
        method = scope["method"] if scope["method"] in ("GET", "POST", "HEAD") else "OTHER"
        with self.tracer.start_as_current_span(
            f"{method} {route}",
            kind=self._kind,
            attributes={"http.request.method": method, "http.route": route},
        ) as span:
            status: list[int] = []

            async def traced_send(message: MutableMapping[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    status.append(message["status"])
                await send(message)

            await self.app(scope, receive, traced_send)
            if status:
                span.set_attribute("http.response.status_code", status[0])
            request_id = REQUEST_ID.get()
            if request_id is not None:
                span.set_attribute("taap.request_id", request_id)
