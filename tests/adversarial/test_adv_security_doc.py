"""SECURITY.md stays accurate: every test it names exists, every parametrized case it names is
a case of that test, and the case counts it states are the suite's."""

from __future__ import annotations

import re
from pathlib import Path

import test_adv_guard
import test_adv_revocation
import test_adv_token_server

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "SECURITY.md"
SHORT = {
    "T": "tests/adversarial/test_adv_token_server.py",
    "G": "tests/adversarial/test_adv_guard.py",
    "R": "tests/adversarial/test_adv_registry_changes.py",
    "P": "tests/adversarial/test_adv_policies.py",
    "V": "tests/adversarial/test_adv_revocation.py",
}
CASES = {
    SHORT["T"]: {c.name for c in test_adv_token_server.CASES},
    SHORT["G"]: {c.name for c in test_adv_guard.CASES},
    SHORT["V"]: {c.name for c in test_adv_revocation.CASES},
}
REFERENCE = re.compile(r"^(?:(T|G|R|P|V|tests/[\w/]+\.py))?::(\w+)(?:\[(.+)\])?$")


def _references() -> list[tuple[str, str, str | None]]:
    """(file, test, case or None) for each backticked reference, in document order."""
    found: list[tuple[str, str, str | None]] = []
    current: tuple[str, str] | None = None
    for token in re.findall(r"`([^`\n]+)`", DOC.read_text(encoding="utf-8")):
        match = REFERENCE.match(token)
        if match:
            where, test, case = match.groups()
            if case is not None and "<" in case:
                case = None  # a placeholder such as [<case>]
            path = SHORT.get(where or "", where) if where else (current[0] if current else None)
            assert path, f"relative reference {token!r} without a file before it"
            current = (path, test)
            found.append((path, test, case))
        elif token.startswith("[") and token.endswith("]") and "<" not in token and current:
            found.append((current[0], current[1], token[1:-1]))
    return found


def test_every_named_test_and_case_exists() -> None:
    references = _references()
    assert len(references) > 150
    for path, test, case in references:
        source = (ROOT / path).read_text(encoding="utf-8")
        assert re.search(rf"^(async )?def {test}\(", source, re.M), f"{path}::{test}"
        if case is not None:
            assert path in CASES, f"{path}::{test}[{case}] is not parametrized by case name"
            assert case in CASES[path], f"{path}::{test}[{case}]"


def test_counts_stated_are_the_suites() -> None:
    text = DOC.read_text(encoding="utf-8")
    tables = [len(CASES[SHORT[short]]) for short in ("T", "G", "V")]
    for count in tables:
        assert f"{count} cases" in text
    # Requests sent through expect_refused outside the three parametrized tests.
    extra = (
        sum(
            (ROOT / path).read_text(encoding="utf-8").count("expect_refused(")
            for path in SHORT.values()
        )
        - 3
    )
    assert f"{sum(tables) + extra} hostile requests" in text
