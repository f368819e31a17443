"""The **Examples** section every command's ``--help`` ends with.

click rewraps an epilog into one paragraph unless the paragraph starts with a line holding only
``\\b``; :func:`examples` builds such a paragraph, so each example keeps its own line.
"""

from __future__ import annotations

__all__ = ["examples"]


def examples(*lines: str) -> str:
    """An epilog listing ``lines`` (commands, with ``# comments``) under ``Examples:``."""
    if not lines:
        raise ValueError("an Examples section needs at least one example")
    shown = "\n".join(f"  {line}" for line in lines)
    return f"\b\nExamples:\n{shown}"
