"""The portal's documentation pages: API reference, Status codes, Explain a PoP.

See docs/portal.md ("Console: reference, status codes, explain").
"""
