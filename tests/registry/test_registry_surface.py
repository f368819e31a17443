"""The registry modules' public names exist, and importing the CLI stays light."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

MODULES = [
    "taap.server.registry.memory",
    "taap.server.registry.database",
    "taap.server.registry.pepper",
    "taap.server.registry.sql",
    "taap.server.registry.migrations",
    "taap.server.registry._rules",
    "taap.server.registry._access",
    "taap.server.registry._sql_runner",
    "taap.server.registry._sql_tables",
    "taap.server.registry.port",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert len(exported) == len(set(exported))
    for attr in exported:
        assert hasattr(module, attr), f"{name}.{attr}"


@pytest.mark.parametrize("module", ["taap.cli.registry", "taap.cli.resource_servers"])
def test_registry_cli_does_not_import_sqlalchemy(module: str) -> None:
    # Other `taap` commands (pop, token, keygen) must not pay for SQLAlchemy and Alembic.
    code = f"import sys, {module}; print('sqlalchemy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_registry_port_is_implemented_by_both() -> None:
    from taap.server.registry.memory import MemoryRegistry
    from taap.server.registry.port import Registry, RegistryAdmin, RegistryReader
    from taap.server.registry.sql import SqlRegistry

    # Registry is the union of the two ports: their methods are what both must provide.
    assert {RegistryReader, RegistryAdmin} <= set(Registry.__mro__)
    ports = (RegistryReader, RegistryAdmin)
    wanted = {n for port in ports for n in vars(port) if not n.startswith("_")}
    for cls in (MemoryRegistry, SqlRegistry):
        missing = {n for n in wanted if not callable(getattr(cls, n, None))}
        assert not missing, f"{cls.__name__} lacks {missing}"


async def test_empty_pepper_or_bad_prefix_refused(tmp_path: Path) -> None:
    from taap.errors import ConfigurationError
    from taap.server.registry.memory import MemoryRegistry
    from taap.server.registry.sql import open_registry

    with pytest.raises(ConfigurationError, match="pepper"):
        MemoryRegistry(b"", signing_key_bits=None)
    with pytest.raises(ConfigurationError, match="prefix"):
        MemoryRegistry(b"p" * 20, client_id_prefix="bad prefix", signing_key_bits=None)
    with pytest.raises(ConfigurationError, match="pepper"):
        await open_registry(f"sqlite:///{tmp_path}/e.db", pepper=b"")
    with pytest.raises(ConfigurationError, match="prefix"):
        await open_registry(f"sqlite:///{tmp_path}/e.db", pepper=b"p" * 20, client_id_prefix="x:")
