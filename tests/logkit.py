"""Reading the JSON lines a running ``taap serve`` writes to its log file.

The server may be mid-write while a test reads: the last line can be cut short. Only lines that
end with a newline are complete, so only those are parsed; a complete line that is not JSON is a
real failure and raises.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def json_records(log: Path) -> list[dict[str, Any]]:
    """Every complete JSON object line in ``log`` (structured logs and audit lines)."""
    text = log.read_text(encoding="utf-8", errors="replace")
    complete = text.split("\n")[:-1]  # the last piece is "" or a line still being written
    return [json.loads(line) for line in complete if line.startswith("{")]


def audit_records(log: Path) -> list[dict[str, Any]]:
    """The audit lines (those with an ``event``) among ``log``'s complete JSON lines."""
    return [record for record in json_records(log) if "event" in record]
