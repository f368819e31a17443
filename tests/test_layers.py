"""The shape of ``src/taap``, checked on the source with ``ast``:

- no import runs back up a layer: errors → core → asgi | listener | settings | stores → the
  server's registry → client | server | resource → sandbox → cli; rooms of one layer never
  import one another, and a room inside another (``taap.server.registry``) is reached from
  outside only as its parent's layer allows;
- no import cycle between any two modules, counting imports under ``if TYPE_CHECKING:``, inside
  functions, and relative ones;
- no module imports a ``_private`` module of another package;
- modules ≤ 400 lines (migrations aside), functions ≤ 80 lines, folders ≤ 16 modules.

Every checker takes a tree, so each is also fed a synthetic one with a violation: a checker that
cannot fail proves nothing.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"

# Offenders allowed for now, by check: none. An entry that no longer offends fails
# test_allow_list_is_current, so the list cannot outlive its reason.
KNOWN_OFFENDERS: dict[str, set[str]] = {
    "module_lines": set(),
    "function_lines": set(),
    "folder_modules": set(),
    "private_imports": set(),
    "layers": set(),
    "cycles": set(),
}

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
MAX_FOLDER_MODULES = 16

# Module or package -> its layer; the longest matching name decides. A module may import its
# own room and lower layers, never a higher one nor another room of its layer. "taap" is the
# package's own __init__ (the curated re-exports), not a prefix. A module in no row fails
# test_no_import_runs_up_a_layer: give it a row.
LAYERS: dict[str, int] = {
    "taap.errors": 0,
    "taap.error_guide": 1,
    "taap.core": 1,
    "taap": 2,
    "taap.asgi": 2,
    "taap.listener": 2,
    "taap.settings": 2,
    "taap.stores": 2,
    "taap.server.registry": 3,
    "taap.client": 4,
    "taap.server": 4,
    "taap.resource": 4,
    "taap.sandbox": 5,
    "taap.postman": 5,
    "taap.gateway": 5,
    "taap.portal": 6,
    "taap.testing": 6,
    "taap.cli": 7,
}


@dataclass(frozen=True)
class Module:
    name: str  # dotted; a package by its own name
    rel: str  # its file, relative to the scanned root (taap/server/sql.py)
    tree: ast.Module
    lines: int

    @property
    def package(self) -> str:
        """Where a relative import starts from."""
        return self.name if self.rel.endswith("/__init__.py") else self.name.rpartition(".")[0]


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    where: str  # file:line of the import statement

    def __str__(self) -> str:
        return f"{self.source} -> {self.target} ({self.where})"


def scan(root: Path, package: str = "taap") -> dict[str, Module]:
    """Every module of ``root/package``, by dotted name."""
    modules: dict[str, Module] = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text, str(path))
        modules[name] = Module(
            name, path.relative_to(root).as_posix(), tree, len(text.splitlines())
        )
    return modules


def _loaded(node: ast.Import | ast.ImportFrom, module: Module, known: set[str]) -> set[str]:
    """The modules of the tree one import statement loads (a name from a package's
    ``__init__`` counts as the package; a submodule named in ``from … import`` as itself)."""

    def longest(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    if isinstance(node, ast.Import):
        found = {longest(alias.name) for alias in node.names}
    else:
        base = node.module or ""
        if node.level:
            anchor = module.package.split(".")[: len(module.package.split(".")) - node.level + 1]
            base = ".".join([*anchor, node.module] if node.module else anchor)
        found = {
            f"{base}.{a.name}" if f"{base}.{a.name}" in known else longest(base) for a in node.names
        }
    return {name for name in found if name is not None and name != module.name}


def import_edges(modules: dict[str, Module]) -> list[Edge]:
    """Every import between two modules of the tree: at the top, under ``if TYPE_CHECKING:``,
    inside functions; absolute and relative."""
    known = set(modules)
    return [
        Edge(module.name, target, f"{module.rel}:{node.lineno}")
        for module in modules.values()
        for node in ast.walk(module.tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for target in sorted(_loaded(node, module, known))
    ]


# -- layers ----------------------------------------------------------------------------------
def room_of(name: str, layers: dict[str, int]) -> str | None:
    """The most specific row of ``layers`` that ``name`` belongs to."""
    if name in layers:
        return name
    rows = [row for row in layers if row != "taap" and name.startswith(row + ".")]
    return max(rows, key=len, default=None)


def layer_violations(modules: dict[str, Module], layers: dict[str, int]) -> list[str]:
    found = [
        f"{name} ({m.rel}) is in no row of LAYERS"
        for name, m in modules.items()
        if room_of(name, layers) is None
    ]
    for edge in import_edges(modules):
        here, there = room_of(edge.source, layers), room_of(edge.target, layers)
        if here is None or there is None or here == there:
            continue
        # Seen from outside its parent room, a nested room has its parent's layer.
        outer = [row for row in layers if there.startswith(row + ".") and row != "taap"]
        parent = min(outer, key=len, default=there)
        inside = here == parent or here.startswith(parent + ".")
        seen_as = there if inside else parent
        if layers[seen_as] >= layers[here]:
            found.append(
                f"{edge}: {here} (layer {layers[here]}) imports {seen_as} (layer {layers[seen_as]})"
            )
    return found


# -- cycles ----------------------------------------------------------------------------------
def cycles(edges: Iterable[Edge]) -> list[str]:
    """One cycle per strongly connected group of modules, as ``a -> b (file:line) -> … -> a``."""
    graph: dict[str, dict[str, Edge]] = {}
    for edge in edges:
        graph.setdefault(edge.source, {}).setdefault(edge.target, edge)
        graph.setdefault(edge.target, {})
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def connect(node: str) -> None:  # Tarjan; the trees are small enough for recursion
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return [_one_cycle(graph, group) for group in sorted(groups)]


def _one_cycle(graph: dict[str, dict[str, Edge]], group: list[str]) -> str:
    """The shortest way round from the group's first module back to it."""
    start, members = group[0], set(group)
    paths: dict[str, list[Edge]] = {start: []}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt, edge in sorted(graph[node].items()):
                if nxt == start:
                    way = [*paths[node], edge]
                    return " -> ".join([start, *(f"{e.target} ({e.where})" for e in way)])
                if nxt in members and nxt not in paths:
                    paths[nxt] = [*paths[node], edge]
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"no way round {group}")  # a strongly connected group always has one


# -- private modules -------------------------------------------------------------------------
def private_imports(modules: dict[str, Module]) -> list[str]:
    """``a -> b`` where ``b`` (or a package it is in) is ``_private`` to a package ``a`` is not
    in."""
    found = []
    for edge in import_edges(modules):
        parts = edge.target.split(".")
        for depth, part in enumerate(parts):
            owner = ".".join(parts[:depth])
            inside = edge.source == owner or edge.source.startswith(owner + ".")
            if part.startswith("_") and not inside:
                found.append(f"{edge.source} -> {edge.target}")
                break
    return sorted(set(found))


# -- sizes -----------------------------------------------------------------------------------
def long_modules(modules: dict[str, Module], limit: int = MAX_MODULE_LINES) -> dict[str, int]:
    return {
        m.rel: m.lines
        for m in modules.values()
        if m.lines > limit and "migrations" not in m.rel.split("/")
    }


def long_functions(modules: dict[str, Module], limit: int = MAX_FUNCTION_LINES) -> dict[str, int]:
    found = {}
    for module in modules.values():
        for node in ast.walk(module.tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                where = f"{module.rel}:{node.name}"
                if length > limit:  # two functions of one name: the longer one speaks
                    found[where] = max(length, found.get(where, 0))
    return found


def crowded_folders(modules: dict[str, Module], limit: int = MAX_FOLDER_MODULES) -> dict[str, int]:
    counts: dict[str, int] = {}
    for module in modules.values():
        folder = module.rel.rpartition("/")[0]
        counts[folder] = counts.get(folder, 0) + 1
    return {folder: count for folder, count in counts.items() if count > limit}


# -- the checks on src/taap ------------------------------------------------------------------
TAAP = scan(SRC)


def _unexpected(kind: str, found: Iterable[str]) -> list[str]:
    return sorted(set(found) - KNOWN_OFFENDERS[kind])


def test_no_import_runs_up_a_layer() -> None:
    offenders = _unexpected("layers", layer_violations(TAAP, LAYERS))
    assert offenders == [], "imports up a layer or across rooms:\n" + "\n".join(offenders)


def test_no_import_cycle() -> None:
    offenders = _unexpected("cycles", cycles(import_edges(TAAP)))
    assert offenders == [], "import cycles:\n" + "\n".join(offenders)


def test_no_private_module_of_another_package_is_imported() -> None:
    offenders = _unexpected("private_imports", private_imports(TAAP))
    assert offenders == [], "private modules imported from outside:\n" + "\n".join(offenders)


def test_modules_are_short() -> None:
    found = long_modules(TAAP)
    offenders = [f"{rel}: {found[rel]} lines" for rel in _unexpected("module_lines", found)]
    assert offenders == [], f"modules over {MAX_MODULE_LINES} lines:\n" + "\n".join(offenders)


def test_functions_are_short() -> None:
    found = long_functions(TAAP)
    offenders = [f"{where}: {found[where]} lines" for where in _unexpected("function_lines", found)]
    assert offenders == [], f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(offenders)


def test_folders_are_small() -> None:
    found = crowded_folders(TAAP)
    offenders = [f"{d}: {found[d]} modules" for d in _unexpected("folder_modules", found)]
    assert offenders == [], f"folders over {MAX_FOLDER_MODULES} modules:\n" + "\n".join(offenders)


def stale_entries(allowed: dict[str, set[str]], now: dict[str, set[str]]) -> list[str]:
    """Allowed offenders that no longer offend."""
    return sorted(
        f"{kind}: {entry}" for kind, entries in allowed.items() for entry in entries - now[kind]
    )


def test_allow_list_is_current() -> None:
    now = {
        "module_lines": set(long_modules(TAAP)),
        "function_lines": set(long_functions(TAAP)),
        "folder_modules": set(crowded_folders(TAAP)),
        "private_imports": set(private_imports(TAAP)),
        "layers": set(layer_violations(TAAP, LAYERS)),
        "cycles": set(cycles(import_edges(TAAP))),
    }
    stale = stale_entries(KNOWN_OFFENDERS, now)
    assert stale == [], "no longer offending, remove from KNOWN_OFFENDERS:\n" + "\n".join(stale)


# -- each checker fails on a tree with a violation ---------------------------------------------
def _tree(root: Path, files: dict[str, str]) -> dict[str, Module]:
    """Write ``files`` (path under ``root`` -> source) and scan ``root/taap``; every package
    gets an empty ``__init__.py`` unless given one."""
    for rel, text in files.items():
        path = root / rel
        for folder in reversed(path.relative_to(root).parents):
            if folder.parts:
                (root / folder).mkdir(exist_ok=True)
                (root / folder / "__init__.py").touch()
        path.write_text(text)
    return scan(root)


def test_layer_checker_sees_imports_up_and_across(tmp_path: Path) -> None:
    tree = _tree(
        tmp_path,
        {
            "taap/core/keys.py": "def f():\n    from taap.server import app\n",
            "taap/client/auth.py": "from taap.server.registry.port import Registry\n",
            "taap/server/app.py": "from .registry import port\nfrom taap.core import keys\n",
            "taap/server/registry/port.py": "from ..app import create_app\n",
            "taap/resource/guard.py": "import taap.client.auth\n",
            "taap/cli/main.py": "from taap.server.registry import port\nimport taap.resource\n",
            "taap/relay.py": "",
        },
    )
    assert layer_violations(tree, LAYERS) == [
        "taap.relay (taap/relay.py) is in no row of LAYERS",
        "taap.client.auth -> taap.server.registry.port (taap/client/auth.py:1): "
        "taap.client (layer 4) imports taap.server (layer 4)",
        "taap.core.keys -> taap.server.app (taap/core/keys.py:2): "
        "taap.core (layer 1) imports taap.server (layer 4)",
        "taap.resource.guard -> taap.client.auth (taap/resource/guard.py:1): "
        "taap.resource (layer 4) imports taap.client (layer 4)",
        "taap.server.registry.port -> taap.server.app (taap/server/registry/port.py:1): "
        "taap.server.registry (layer 3) imports taap.server (layer 4)",
    ]


def test_cycle_checker_sees_type_checking_function_and_relative_imports(tmp_path: Path) -> None:
    tree = _tree(
        tmp_path,
        {
            "taap/server/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from taap.server.b import B\n",
            "taap/server/b.py": "def f():\n    from . import c\n",
            "taap/server/c.py": "from .a import A\n",
            "taap/core/x.py": "import taap.core.y\n",
            "taap/core/y.py": "from taap.core import z\n",
        },
    )
    assert cycles(import_edges(tree)) == [
        "taap.server.a -> taap.server.b (taap/server/a.py:3) -> taap.server.c "
        "(taap/server/b.py:2) -> taap.server.a (taap/server/c.py:1)"
    ]


def test_private_module_checker(tmp_path: Path) -> None:
    tree = _tree(
        tmp_path,
        {
            "taap/core/_json.py": "",
            "taap/core/__init__.py": "from taap.core._json import loads\n",
            "taap/core/keys.py": "from ._json import loads\n",
            "taap/server/clientauth.py": "from taap.core import _json\n",
            "taap/resource/_http/__init__.py": "",
            "taap/resource/_http/parse.py": "from taap.core._json import loads\n",
            "taap/resource/guard.py": "from ._http.parse import head\n",
            "taap/cli/main.py": "import taap.resource._http.parse\n",
        },
    )
    assert private_imports(tree) == [
        "taap.cli.main -> taap.resource._http.parse",
        "taap.resource._http.parse -> taap.core._json",
        "taap.server.clientauth -> taap.core._json",
    ]


def test_size_checkers(tmp_path: Path) -> None:
    lines = [f"    x{i} = {i}\n" for i in range(80)]
    tree = _tree(
        tmp_path,
        {
            "taap/server/long.py": "x = 1\n" * 401,
            "taap/server/just.py": "x = 1\n" * 400,
            "taap/server/migrations/versions/r0001.py": "x = 1\n" * 900,
            "taap/core/f.py": "def fits():\n" + "".join(lines[:79]) + "\n"
            "class K:\n    async def too_long(self):\n" + "".join("    " + line for line in lines),
            **{f"taap/crowded/m{i}.py": "" for i in range(16)},
            **{f"taap/full/m{i}.py": "" for i in range(15)},
        },
    )
    assert long_modules(tree) == {"taap/server/long.py": 401}
    assert long_functions(tree) == {"taap/core/f.py:too_long": 81}
    assert crowded_folders(tree) == {"taap/crowded": 17}


def test_stale_allow_list_entries_are_named() -> None:
    allowed = {"module_lines": {"taap/a.py", "taap/b.py"}, "cycles": set()}
    now = {"module_lines": {"taap/a.py"}, "cycles": {"x -> y -> x"}}
    assert stale_entries(allowed, now) == ["module_lines: taap/b.py"]
