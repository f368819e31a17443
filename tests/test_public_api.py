"""Pins the curated public surface: every name in ``__all__`` exists and nothing private leaks."""

from __future__ import annotations

import importlib

import pytest

MODULES = [
    "taap",
    "taap.errors",
    "taap.core",
    "taap.client",
    "taap.server",
    "taap.resource",
    "taap.stores",
    "taap.sandbox",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert len(exported) == len(set(exported)), "duplicate names in __all__"
    for attr in exported:
        assert hasattr(module, attr), f"{name}.{attr} is in __all__ but missing"
        assert not attr.startswith("_") or attr == "__version__"


def test_top_level_surface() -> None:
    import taap

    for required in (
        "build_pop_token",
        "verify_pop_token",
        "load_private_key",
        "load_public_key",
        "generate_private_key",
        "request_parts",
        "TaapError",
        "PopPolicy",
        "__version__",
    ):
        assert required in taap.__all__


def test_core_does_not_pull_in_web_or_sql_stacks() -> None:
    # The sans-I/O core must import without starlette, sqlalchemy, redis or httpx.
    import subprocess
    import sys

    code = (
        "import sys, taap.core;"
        "bad=[m for m in ('starlette','sqlalchemy','redis','httpx','uvicorn') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
