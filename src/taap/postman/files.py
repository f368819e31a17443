"""Writing the two Postman files: the environment is 0600 when it holds a secret."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taap.postman.collection import (
    COLLECTION_FILE,
    ENVIRONMENT_FILE,
    PostmanExport,
    build_collection,
    build_environment,
)

__all__ = ["WrittenFiles", "write_postman_files"]


@dataclass(frozen=True, slots=True)
class WrittenFiles:
    """Where the files went, and whether the environment holds secrets (mode 0600)."""

    collection: Path
    environment: Path
    holds_secrets: bool


def _write(path: Path, document: dict[str, Any], *, private: bool) -> None:
    data = (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    # A temporary file created with the final mode, then renamed: a file that held secrets
    # before is never rewritten in place under a wider mode, and a reader never sees half.
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600 if private else 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_postman_files(export: PostmanExport, out_dir: Path) -> WrittenFiles:
    """Write ``taap.postman_collection.json`` and ``taap.postman_environment.json`` into
    ``out_dir`` (created if missing), replacing earlier ones.

    Raises:
        OSError: the directory or a file cannot be written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    collection = out_dir / COLLECTION_FILE
    environment = out_dir / ENVIRONMENT_FILE
    _write(collection, build_collection(export), private=False)
    _write(environment, build_environment(export), private=export.holds_secrets)
    return WrittenFiles(collection, environment, export.holds_secrets)
