"""The README's shell walkthrough ("From the shell") runs as written, top to bottom, the way a
user runs it: in an empty folder, each block in order through bash, the server block started
as its own long-running process before the blocks after it. The one change: port 8000 becomes a
free port, so the test never collides with a server already on the machine."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from kit.processes import TAAP, clean_env, free_port, start_service

README = Path(__file__).resolve().parent.parent / "README.md"

pytestmark = pytest.mark.e2e


def walkthrough() -> list[str]:
    """The sh blocks of the README's "From the shell" section, in order."""
    text = README.read_text()
    start = text.index("### From the shell\n")
    end = re.compile(r"^#{2,3} ", re.M).search(text, start + 1)
    assert end is not None
    return re.findall(r"```sh\n(.*?)```", text[start : end.start()], re.DOTALL)


def _bash(script: str, folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_walkthrough_has_a_server_block_between_others() -> None:
    blocks = walkthrough()
    servers = [i for i, block in enumerate(blocks) if block.strip().startswith("taap serve")]
    assert len(servers) == 1
    assert 0 < servers[0] < len(blocks) - 1
    assert "taap serve --with-sample-apis" in blocks[servers[0]]


def test_readme_walkthrough_runs_as_written(tmp_path: Path) -> None:
    port = free_port()
    folder = tmp_path / "walkthrough"
    folder.mkdir()
    home = tmp_path / "home"
    env = clean_env(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
    # The user's `taap` is the one installed beside this interpreter.
    env["PATH"] = f"{Path(TAAP).parent}:{env.get('PATH', '')}"
    server = None
    outputs = []
    try:
        for block in walkthrough():
            script = block.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
            if script.strip().startswith("taap serve"):
                words = script.split()
                server = start_service(
                    "readme-serve",
                    [TAAP, *words[1:], "--port", str(port)],
                    url=f"http://127.0.0.1:{port}",
                    env=env,
                    folder=tmp_path,
                    cwd=folder,
                    probe="/readyz",
                )
                continue
            result = _bash(script, folder, env)
            outputs.append(result.stdout)
            assert result.returncode == 0, (script, result.stdout[-2000:], result.stderr[-3000:])
    finally:
        if server is not None:
            server.stop()
    out = "\n".join(outputs)
    assert '"iccid": "8901260000000000001"' in out or '"iccid":"8901260000000000001"' in out
    assert "8901260000000000002" in out
    assert re.search(r"HTTP/1\.1 200", out)
    assert (home / ".config" / "taap" / "config.toml").stat().st_mode & 0o777 == 0o600
