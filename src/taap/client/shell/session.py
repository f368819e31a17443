"""The client as a command-line tool runs it: a token kept between runs, the requests traced,
retries announced (``taap token``, ``taap call``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import httpx

from taap.client.httpx_auth import PopAuth
from taap.client.profiles import ClientSettings
from taap.client.retry import RetryNotice, RetryPolicy
from taap.client.shell.token_file import FileTokenCache, cache_dir, forget_token, token_file_path
from taap.client.shell.trace import RequestTracer
from taap.client.token_client import TokenClient
from taap.client.token_response import Token
from taap.client.wire import transport_error

__all__ = ["ShellOptions", "call", "forget", "get_token", "open_token_client", "revoke"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ShellOptions:
    """How a command-line run behaves around the four steps.

    ``use_cache``: keep the token in the user's cache directory between runs (``environ``
    names it; :mod:`taap.client.shell.token_file`). ``trace``: where to write each request
    and answer (:class:`RequestTracer`), ``None`` for nowhere. ``on_retry``: told before
    each retry's wait (:class:`RetryNotice`). ``timeout``: seconds per request.
    """

    environ: Mapping[str, str] = field(default_factory=dict)
    use_cache: bool = True
    trace: Callable[[str], None] | None = None
    on_retry: Callable[[RetryNotice], None] | None = None
    timeout: float = 30.0

    def http(
        self, *, auth: httpx.Auth | None = None, transport: httpx.BaseTransport | None = None
    ) -> httpx.Client:
        """An HTTP client with this run's timeout and tracing."""
        hooks = RequestTracer(self.trace).hooks if self.trace is not None else {}
        return httpx.Client(
            timeout=self.timeout, event_hooks=dict(hooks), auth=auth, transport=transport
        )


@contextlib.contextmanager
def open_token_client(settings: ClientSettings, options: ShellOptions) -> Iterator[TokenClient]:
    """A :class:`TokenClient` for ``settings`` set up as ``options`` say; closed on exit.

    Raises:
        TaapError: a setting is refused or the key cannot be loaded.
        OSError: the key file cannot be read.
    """
    endpoint, credentials = settings.endpoint(), settings.credentials()
    cache = None
    if options.use_cache:
        folder = cache_dir(options.environ)
        cache = FileTokenCache(token_file_path(folder, endpoint, credentials))
        kept = cache.current()
        if kept is not None and options.trace is not None:
            left = kept.expires_at - cache.clock()
            options.trace(f"  token kept from a previous run ({cache.path}), {left:.0f} s left")
    with options.http() as http:
        yield TokenClient(
            endpoint,
            credentials,
            retry=RetryPolicy(on_retry=options.on_retry),
            http=http,
            cache=cache,
        )


def get_token(settings: ClientSettings, options: ShellOptions) -> Token:
    """The cached token while it is usable (``options.use_cache``), else a new one.

    Raises:
        TaapError: the token server refused (a typed error, docs/protocol.md#errors), or
            ``TransportError``.
        ConfigurationError: the cache file is not the user's own or others may read it.
    """
    with open_token_client(settings, options) as client:
        return client.token() if options.use_cache else client.fetch()


def revoke(
    settings: ClientSettings,
    options: ShellOptions,
    token: str,
    *,
    revocation_url: str | None = None,
) -> None:
    """Revoke ``token`` (RFC 7009); when it is the token kept between runs, the file goes too,
    so the next ``taap token`` does not print a revoked token.

    Raises:
        TaapError: the server's error (typed), or ``TransportError`` once retries ran out.
    """
    endpoint, credentials = settings.endpoint(), settings.credentials()
    cache = None
    if options.use_cache:
        cache = FileTokenCache(token_file_path(cache_dir(options.environ), endpoint, credentials))
    with options.http() as http:
        client = TokenClient(
            endpoint,
            credentials,
            retry=RetryPolicy(on_retry=options.on_retry),
            http=http,
            cache=cache,
            revocation_url=revocation_url,
        )
        client.revoke(token)


def forget(settings: ClientSettings, options: ShellOptions) -> bool:
    """Delete the cached token of ``settings``; ``False`` when there was none."""
    endpoint, credentials = settings.endpoint(), settings.credentials()
    return forget_token(token_file_path(cache_dir(options.environ), endpoint, credentials))


def call(
    settings: ClientSettings,
    options: ShellOptions,
    method: str,
    url: str,
    *,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
) -> httpx.Response:
    """Get a token (cached or new), sign and send one request; the answer whatever its
    status (401 ``invalid_token`` re-tokens once, 429/503 are retried and announced).

    Raises:
        TaapError: the token server refused (a typed error, docs/protocol.md#errors), or the
            key cannot be loaded.
        TransportError: the API could not be reached.
    """
    with open_token_client(settings, options) as tokens:
        # Connection-level retries only: a request that never reached the server is safe to
        # resend.
        transport = httpx.HTTPTransport(retries=tokens.retry.max_retries)
        auth = PopAuth(tokens)
        try:
            with options.http(auth=auth, transport=transport) as http:
                return http.request(method.upper(), url, headers=list(headers), content=body)
        except httpx.HTTPError as exc:
            raise transport_error(url, exc) from exc
