"""Running newman on an exported collection, and a loopback server that records requests."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.loopback import serve
from kit.processes import clean_env, taap_ok
from taap.postman import COLLECTION_FILE, ENVIRONMENT_FILE

SCRIPT = Path(__file__).resolve().parents[2] / "src" / "taap" / "postman" / "postman_prerequest.js"


@dataclass
class NewmanRun:
    returncode: int
    output: str
    report: dict[str, Any]

    @property
    def console(self) -> str:
        """The output with the cli reporter's wrapped console lines joined again."""
        return re.sub(r"\n\s*│ ", "", self.output)

    @property
    def executions(self) -> list[dict[str, Any]]:
        return list(self.report["run"]["executions"])

    @property
    def failures(self) -> list[dict[str, Any]]:
        return list(self.report["run"]["failures"])

    def sent(self) -> list[str]:
        """Names of the items whose request went out (a skipped request has no response)."""
        return [e["item"]["name"] for e in self.executions if e.get("response")]


def export(out: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    """``taap postman export --out OUT ARGS`` as a user runs it; its stdout."""
    return taap_ok("postman", "export", "--out", str(out), *args, env=env or clean_env())


def run_newman(
    newman: Path,
    folder: Path,
    *,
    env_vars: Mapping[str, str] | None = None,
    options: Sequence[str] = (),
    collection: Path | None = None,
) -> NewmanRun:
    """``newman run`` of the exported files in ``folder`` with the cli and json reporters."""
    report = folder / "newman-report.json"
    report.unlink(missing_ok=True)
    cmd = [
        "node",
        str(newman),
        "run",
        str(collection or folder / COLLECTION_FILE),
        "--environment",
        str(folder / ENVIRONMENT_FILE),
        "--reporters",
        "cli,json",
        "--reporter-json-export",
        str(report),
        "--color",
        "off",
        *options,
    ]
    for name, value in (env_vars or {}).items():
        cmd += ["--env-var", f"{name}={value}"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    return NewmanRun(
        result.returncode, result.stdout + result.stderr, json.loads(report.read_text())
    )


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return values[0] if values else None


@dataclass
class Recorder:
    """Answers like the token server and the sample APIs would, and keeps every request."""

    requests: list[Recorded] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["raw_path"].decode("latin-1")
        self.requests.append(
            Recorded(
                scope["method"],
                path,
                scope["query_string"].decode("latin-1"),
                [(k.decode("latin-1"), v.decode("utf-8")) for k, v in scope["headers"]],
                body,
            )
        )
        status, answer = 200, {"ok": True}
        if path.endswith("/tokens"):
            answer = {"access_token": "recorded-token", "expires_in": "3599"}
        elif scope["method"] == "POST":
            status = 201
        data = json.dumps(answer).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})


@contextmanager
def recording() -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder()
    with serve(recorder) as url:
        yield url, recorder
