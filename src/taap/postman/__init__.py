"""A Postman collection and environment per client, whose requests sign their own PoP tokens.

``taap postman export`` writes them; newman runs them in CI (docs/postman.md).
"""

from __future__ import annotations

from taap.postman.collection import (
    COLLECTION_FILE,
    ENVIRONMENT_FILE,
    SAMPLE_CALLS,
    PostmanExport,
    SampleCall,
    build_collection,
    build_environment,
)
from taap.postman.files import WrittenFiles, write_postman_files

__all__ = [
    "COLLECTION_FILE",
    "ENVIRONMENT_FILE",
    "SAMPLE_CALLS",
    "PostmanExport",
    "SampleCall",
    "WrittenFiles",
    "build_collection",
    "build_environment",
    "write_postman_files",
]
