"""pytest fixtures for code that calls TAAP APIs: a token server and the sample APIs on loopback.

Installing ``taap`` registers this module as a pytest plugin (the ``pytest11`` entry point
``taap``; ``-p no:taap`` turns it off). It adds two fixtures (docs/testing.md):

- ``taap_sandbox`` (session): a running sandbox (:mod:`taap.sandbox`) with one client
  subscribed to ``connectivity``, its key in a file; ``auth()`` gives a ready ``PopAuth``;
- ``taap_sandbox_factory`` (function): starts sandboxes with other products, subscriptions and
  ``TAAP_*`` settings, each stopped when the test ends.

Only this module's own names are imported at start-up: a project that installed ``taap``
without the ``server`` extra still runs pytest, and only a test asking for a fixture needs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pytest

if TYPE_CHECKING:
    from taap.client import PopAuth
    from taap.sandbox import Sandbox

__all__ = ["SandboxProduct", "TaapSandbox", "TaapSandboxFactory"]

#: What the default client subscribes to: the sample APIs' Connectivity product (v2).
DEFAULT_APIS = ("connectivity",)


@dataclass(frozen=True)
class SandboxProduct:
    """An API product to register beside the five seeded ones (docs/registry.md)."""

    id: str
    base_path: str
    token_server: Literal["v2", "v6"] = "v2"
    name: str | None = None


@dataclass(frozen=True)
class TaapSandbox:
    """A running sandbox seen through one registered client.

    ``token_url`` is the client's token endpoint (v2, or v6 when its first product is served
    there), ``server_url`` the token server's base URL (discovery, JWKS: what a guard is given),
    ``api_url`` the sample APIs' base URL. ``key_path`` is the client's private key (PEM,
    0600) and ``public_key_path`` its public key.
    """

    token_url: str
    server_url: str
    api_url: str
    client_id: str
    client_secret: str = field(repr=False)
    key_path: Path
    public_key_path: Path
    apis: tuple[str, ...]
    servers: Sandbox = field(repr=False, compare=False)
    # Every PopAuth handed out on these servers; closed before the servers stop.
    _issued: list[PopAuth] = field(repr=False, compare=False, default_factory=list)

    def auth(self, **options: Any) -> PopAuth:
        """A ``PopAuth`` for httpx with this client's credentials; ``options`` go to
        ``PopAuth.from_key_file`` (e.g. ``password``). Its token client is closed when the
        sandbox stops."""
        from taap.client import PopAuth

        auth = PopAuth.from_key_file(
            self.token_url,
            client_id=self.client_id,
            client_secret=self.client_secret,
            key_path=self.key_path,
            **options,
        )
        self._issued.append(auth)
        return auth

    def new_client(
        self, *, apis: Sequence[str] = DEFAULT_APIS, name: str = "pytest client"
    ) -> TaapSandbox:
        """Register another client on the same servers, with a key of its own."""
        folder = self.key_path.parent.parent
        return _register(self.servers, folder, self._issued, apis=apis, name=name)


def _close_all(issued: list[PopAuth]) -> None:
    for auth in issued:
        auth.tokens.close()
        # An AsyncClient's token client opened its connections on a test's loop, gone by
        # now: closing it on a new loop only drops the sockets.
        with contextlib.suppress(Exception):
            asyncio.run(auth.tokens.aclose())
    issued.clear()


def _token_version(servers: Sandbox, apis: Sequence[str]) -> str:
    """The token endpoint serving the client's first product (v2 when it has none)."""
    for product in servers.run(servers.registry.list_products()):
        if apis and product.id == apis[0]:
            return product.token_server
    return "v2"


def _register(
    servers: Sandbox,
    folder: Path,
    issued: list[PopAuth],
    *,
    apis: Sequence[str],
    name: str,
) -> TaapSandbox:
    from taap.core.keys import generate_private_key

    key = generate_private_key(2048)
    record, secret = servers.create_client(name=name, keys=[key.public], apis=list(apis))
    where = folder / record.client_id
    where.mkdir(parents=True)
    key_path, public_path = where / "client.pem", where / "client.pub.pem"
    # The private key is written owner-only from the start, as taap keygen does.
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key.to_pem())
    public_path.write_bytes(key.public.to_pem())
    version = _token_version(servers, apis)
    return TaapSandbox(
        token_url=f"{servers.token_url}/oauth2/{version}/tokens",
        server_url=servers.token_url,
        api_url=servers.api_url,
        client_id=record.client_id,
        client_secret=secret,
        key_path=key_path,
        public_key_path=public_path,
        apis=tuple(record.apis),
        servers=servers,
        _issued=issued,
    )


def _missing_server_extra() -> str | None:
    """Why the sandbox cannot be imported (a package of the ``server`` extra), or None."""
    try:
        import taap.sandbox  # noqa: F401
    except ImportError as exc:
        return str(exc)
    return None


def _start(
    stack: contextlib.ExitStack,
    folder: Path,
    *,
    apis: Sequence[str],
    products: Sequence[SandboxProduct],
    settings: Mapping[str, str] | None,
) -> TaapSandbox:
    missing = _missing_server_extra()
    if missing:
        pytest.fail(
            f"the taap sandbox needs the server extra: pip install 'taap[server]' ({missing})",
            pytrace=False,
        )
    from taap.sandbox import running_sandbox
    from taap.server.registry.port import ApiProduct

    registered = [
        ApiProduct(id=p.id, name=p.name or p.id, token_server=p.token_server, base_path=p.base_path)
        for p in products
    ]
    servers = stack.enter_context(
        running_sandbox(folder=folder, environ=dict(settings or {}), products=registered)
    )
    issued: list[PopAuth] = []
    stack.callback(_close_all, issued)
    return _register(servers, folder / "clients", issued, apis=apis, name="pytest client")


class TaapSandboxFactory:
    """Starts sandboxes for one test and stops them after it (the ``taap_sandbox_factory``
    fixture)."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._stack = contextlib.ExitStack()
        self._count = 0

    def __call__(
        self,
        *,
        apis: Sequence[str] = DEFAULT_APIS,
        products: Sequence[SandboxProduct] = (),
        settings: Mapping[str, str] | None = None,
    ) -> TaapSandbox:
        """A new sandbox whose client subscribes to ``apis``; ``products`` are registered
        first (so ``apis`` may name them) and ``settings`` are ``TAAP_*`` variables for both
        servers (e.g. ``{"TAAP_TOKEN_TTL": "60"}``), not read from the environment.

        Raises:
            ConfigurationError: an invalid setting or product.
            UnavailableError: the servers did not start.
        """
        self._count += 1
        folder = self._folder / f"sandbox-{self._count}"
        folder.mkdir()
        return _start(self._stack, folder, apis=apis, products=products, settings=settings)

    def close(self) -> None:
        """Stop every sandbox this factory started."""
        self._stack.close()


@pytest.fixture(scope="session")
def taap_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TaapSandbox]:
    """A token server and the sample APIs on loopback, shared by the session, with a client
    subscribed to ``connectivity`` (``/iot-connectivity/v1``)."""
    factory = TaapSandboxFactory(tmp_path_factory.mktemp("taap-sandbox"))
    try:
        yield factory()
    finally:
        factory.close()


@pytest.fixture
def taap_sandbox_factory(tmp_path: Path) -> Iterator[TaapSandboxFactory]:
    """Call it to start a sandbox of your own; every one is stopped after the test."""
    factory = TaapSandboxFactory(tmp_path / "taap-sandboxes")
    try:
        yield factory
    finally:
        factory.close()
