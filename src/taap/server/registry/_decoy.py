"""The timing decoy client (SECURITY.md A2: "unknown client" and "wrong secret" cost the same).

The registry's hot lookup returns this stored client's rows when the asked id matches nothing,
builds its record exactly as for a real client, and only then answers ``None``. The id holds a
``:``, which no client id may contain (``_registry_rules``) and which Basic credentials split
on, so nobody can register it, send it or authenticate as it; its secret digest is random (the
HMAC of no known secret) and its status is ``disabled``.
"""

from __future__ import annotations

__all__ = ["DECOY_API", "DECOY_CLIENT_ID", "is_decoy"]

#: Migration 0002 stores a client under this id (the migration keeps its own copy; a test
#: checks that the two agree).
DECOY_CLIENT_ID = "taap:timing-decoy"
#: The decoy's one subscription: a typical client has one secret, one key and one API.
DECOY_API = "connectivity"


def is_decoy(client_id: str) -> bool:
    """True for the decoy's id (admin calls treat it as unknown)."""
    return client_id == DECOY_CLIENT_ID
