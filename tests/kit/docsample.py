"""The sample test of docs/testing.md, as a file a user would save."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["TESTING_DOC", "sample_test"]

TESTING_DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"


def sample_test() -> str:
    """The one python block of docs/testing.md that starts with a ``# tests/…`` file name."""
    blocks = re.findall(r"```python\n(# tests/\S+\.py\n.*?)```", TESTING_DOC.read_text(), re.S)
    assert len(blocks) == 1, "docs/testing.md should hold exactly one sample test file"
    return str(blocks[0])
