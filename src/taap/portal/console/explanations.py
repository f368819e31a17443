"""What each ``error_code`` a token server or guard answers usually means and what to do,
shown beside a failed step on the Try it page (docs/portal.md). The words come from the one
error table (:mod:`taap.error_guide`, also the Status codes page), so the two never disagree."""

from __future__ import annotations

from taap.error_guide import error_table

__all__ = ["EXPLANATIONS"]

EXPLANATIONS: dict[str, str] = {
    row.error_code: f"{row.cause} {row.fix}".strip() for row in error_table()
}
