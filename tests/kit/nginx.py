"""A real nginx for tests: the configuration checked with ``nginx -t`` first, then nginx in the
foreground, returned once it listens; its stderr kept beside the configuration."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from kit.processes import wait_until

__all__ = ["run_nginx"]


def run_nginx(nginx_bin: str, conf_text: str, folder: Path, port: int) -> subprocess.Popen[bytes]:
    """nginx on ``conf_text`` (written to ``folder/nginx.conf``), once it listens on ``port``."""
    conf = folder / "nginx.conf"
    conf.write_text(conf_text)
    check = subprocess.run(
        [nginx_bin, "-t", "-p", str(folder), "-c", str(conf)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr + conf_text
    with (folder / "nginx-stderr.log").open("wb") as stderr:
        proc = subprocess.Popen(
            [nginx_bin, "-p", str(folder), "-c", str(conf), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )

    def listening() -> bool:
        if proc.poll() is not None:
            raise AssertionError((folder / "nginx-stderr.log").read_text())
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    wait_until(listening, 10, "nginx")
    return proc
