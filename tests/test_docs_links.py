"""The repository stands on its own: README, docs/ and src/ cite only files inside it, by links
that resolve, and never the protocol specification's section numbers (docs/protocol.md has
the protocol in the project's own words)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "CONTRIBUTING.md"]
DOCS += sorted((ROOT / "docs").glob("*.md"))
SOURCES = [
    path
    for path in sorted((ROOT / "src" / "taap").rglob("*"))
    if path.suffix in {".py", ".js", ".html", ".css"}
]

#: Names of files that live outside this repository, and the spec's own section numbering.
OUTSIDE = re.compile(
    r"TAAP\.md|ARCHITECTURE\.md|PORTAL\.md|\.\./shared|shared/(?:spec|design|vectors)"
    r"|\bPart [AB]\b"
)
#: ``A4``-style section numbers; ``SECURITY.md A2`` names a row of the project's SECURITY.md,
#: and ``%A9`` is a percent escape.
SECTION = re.compile(r"(?<!SECURITY\.md )(?<![%\w-])A[1-9](?:\b|(?='s))")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _offences(text: str) -> list[str]:
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for pattern in (OUTSIDE, SECTION):
            match = pattern.search(line)
            if match:
                found.append(f"{number}: {match[0]!r} in {line.strip()[:100]}")
    return found


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to ``-``."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", lambda m: m[1] or "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for line in FENCE.sub("", path.read_text()).splitlines():
        match = re.match(r"#{1,6} (.*)", line)
        if not match:
            continue
        base = slug(match[1])
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


@pytest.mark.parametrize("path", [p for p in DOCS if p.exists()], ids=_rel)
def test_docs_cite_nothing_outside_the_repository(path: Path) -> None:
    assert not _offences(path.read_text()), _offences(path.read_text())


def test_sources_cite_nothing_outside_the_repository() -> None:
    offences = {_rel(path): found for path in SOURCES if (found := _offences(path.read_text()))}
    assert not offences


def _links(path: Path) -> list[str]:
    return LINK.findall(FENCE.sub("", path.read_text()))


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    broken = []
    for target in _links(path):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        where = (path.parent / file_part).resolve() if file_part else path
        if not where.exists() or root not in where.parents:
            broken.append(f"{target}: no such file in the repository")
        elif anchor and where.suffix == ".md" and anchor not in anchors(where):
            broken.append(f"{target}: no heading with that anchor")
    return broken


@pytest.mark.parametrize("path", [p for p in DOCS if p.exists()], ids=_rel)
def test_every_relative_link_resolves(path: Path) -> None:
    assert not broken_links(path)


def test_a_broken_link_is_found(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "b.md").write_text("# Some heading\n")
    page = tmp_path / "docs" / "a.md"
    page.write_text(
        "[ok](b.md#some-heading) [gone](c.md) [anchor](b.md#other) [out](../../x.md)\n"
        "```\n[in code](nowhere.md)\n```\n"
    )
    assert broken_links(page, tmp_path) == [
        "c.md: no such file in the repository",
        "b.md#other: no heading with that anchor",
        "../../x.md: no such file in the repository",
    ]


def test_the_checks_can_fail() -> None:
    assert _offences("see TAAP.md A4 for the order")
    assert _offences("the A6 error body")
    assert _offences("as A2's rule says")
    assert not _offences("SECURITY.md A2, a %A9 escape, the a2 key, RFC 7638, AA1")
    assert slug("Order of checks (A4)") == "order-of-checks-a4"
    assert slug("Why was my request refused? (`taap pop explain`)") == (
        "why-was-my-request-refused-taap-pop-explain"
    )


def test_protocol_page_covers_the_wire_format() -> None:
    have = anchors(ROOT / "docs" / "protocol.md")
    assert {
        "the-four-steps",
        "the-pop-token",
        "verifying-a-pop",
        "the-token-endpoints",
        "order-of-checks",
        "the-client-registry",
        "errors",
        "the-guard",
        "settings",
        "the-sample-apis",
    } <= have


def test_key_files_have_one_name_everywhere() -> None:
    """Examples name the client's key pair ``client.pem`` / ``client.pub.pem``."""
    other = re.compile(
        r"(?<![\w.-])(?:private|public|key|client_key|client-key)\.pem\b|\.pub\b(?!\.pem)"
    )
    offences = {_rel(path): other.findall(path.read_text()) for path in DOCS if path.exists()}
    assert not {name: found for name, found in offences.items() if found}
