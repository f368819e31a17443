"""The token server (TAAP.md A4-A6): ASGI app, client registry, replay and rate limits."""
