"""The client SDK as a command-line tool uses it: a token kept in a file between runs
(:class:`FileTokenCache`), requests traced for the reader (:class:`RequestTracer`), and
:func:`call` / :func:`get_token` putting them together with announced retries."""

from __future__ import annotations

from taap.client.shell.session import (
    ShellOptions,
    call,
    forget,
    get_token,
    open_token_client,
    revoke,
)
from taap.client.shell.token_file import FileTokenCache, cache_dir, token_file_path
from taap.client.shell.trace import RequestTracer, mask_value

__all__ = [
    "FileTokenCache",
    "RequestTracer",
    "ShellOptions",
    "cache_dir",
    "call",
    "forget",
    "get_token",
    "mask_value",
    "open_token_client",
    "revoke",
    "token_file_path",
]
