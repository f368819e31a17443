"""Two ``taap serve --with-portal --with-sample-apis`` nodes on one real PostgreSQL database:
each counts its own token issuances and refusals into the shared usage table, and the Usage
page of either node shows the sum (real Chromium for the portal, the CLI and curl for the
calls)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from browser_kit import assert_axe_clean
from console_kit import (
    DEVICE,
    Developer,
    Served,
    access_token,
    open_as,
    row_counts,
    serve_portal,
    shell,
    sign_up,
)

from kit.postgres import drop_database
from kit.processes import TAAP, wait_until
from taap.server.registry.database import parse_database_url

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


@pytest.fixture(scope="module")
def database(postgres_url: str) -> Iterator[str]:
    base = parse_database_url(postgres_url).url
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"taap_nodes_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        drop_database(admin, name)


@pytest.fixture(scope="module")
def nodes(
    tmp_path_factory: pytest.TempPathFactory, database: str
) -> Iterator[tuple[Served, Served]]:
    settings = {"DATABASE": database, "TAAP_PEPPER": "console-nodes-pepper-0123456789abcdef"}
    folder = tmp_path_factory.mktemp("nodes")
    with (
        serve_portal(_sub(folder, "a"), **settings) as first,
        serve_portal(_sub(folder, "b"), **settings) as second,
    ):
        yield first, second


def _sub(folder: Path, name: str) -> Path:
    path = folder / name
    path.mkdir()
    return path


def replay_once(node: Served, developer: Developer) -> None:
    """A token from ``node``, then one API call sent twice with the same PoP."""
    got = access_token(node, developer, developer.secret)
    assert got.returncode == 0, got.stderr
    token = re.search(r'"access_token":\s*"([^"]+)"', got.stdout)
    assert token is not None
    built = shell(
        node,
        TAAP, "pop", "build", "--key", str(developer.key_file), "--method", "GET",
        "--uri", DEVICE, "--header", "Content-Type: application/json",
        "--header", f"Authorization: Bearer {token.group(1)}",
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    curl = [
        "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", node.url + DEVICE,
        "-H", "Content-Type: application/json", "-H", f"Authorization: Bearer {token.group(1)}",
        "-H", f"X-Authorization: {built.stdout.strip()}",
    ]  # fmt: skip
    assert [shell(node, *curl).stdout for _ in range(2)] == ["200", "401"]


def test_both_nodes_add_to_the_usage_each_node_shows(
    browser: Any, nodes: tuple[Served, Served]
) -> None:
    first, second = nodes
    developer = sign_up(browser, first, "nodes@example.com", "Nodes app", ("Connectivity",))
    replay_once(first, developer)
    replay_once(second, developer)
    # The session lives in the shared database too: the same cookie opens either node.
    for node in (first, second):
        path = developer.app_url.split("/portal/", 1)[1]
        with open_as(browser, developer, f"{node.url}/portal/{path}/usage") as page:

            def summed() -> bool:
                page.reload()
                return row_counts(page, "Refused: pop_replayed") == [2, 2, 2]

            wait_until(summed, 15, "both nodes' refusals in the Usage table", step=0.5)
            assert row_counts(page, "Token issued") == [2, 2, 2]
            assert row_counts(page, "API call") == [2, 2, 2]
            assert_axe_clean(page)
