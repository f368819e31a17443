"""Fixtures of the CLI tests. ``taap token`` / ``call`` / ``configure`` talk to the fake token
server of the client tests (``tests/client``), served by a real uvicorn on loopback."""

from __future__ import annotations

from client.conftest import fake, fake_url

__all__ = ["fake", "fake_url"]  # fixtures: pytest collects them from this module's names
