from portal_kit import smtp_server, world

__all__ = ["smtp_server", "world"]
