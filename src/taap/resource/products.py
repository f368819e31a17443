"""Which API product a request path belongs to (docs/registry.md base paths, the product step of
docs/guard.md)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["DEFAULT_PRODUCT_PATHS", "ProductMap"]

#: The seed's five products and their default base paths (docs/protocol.md#the-client-registry). The
#: resource package keeps its own copy: it must work with nothing but the token server's wire
#: formats (docs/architecture.md#layers).
DEFAULT_PRODUCT_PATHS: Mapping[str, str] = {
    "/call-verification/v1": "call-verification",
    "/iot-connectivity/v1": "connectivity",
    "/fraud-prevention/v1": "fraud-prevention",
    "/location/v1": "location",
    "/sms/v1": "sms-notification",
}


class ProductMap:
    """Base path → product id; the longest base path that prefixes the path wins."""

    __slots__ = ("_entries",)

    def __init__(self, paths: Mapping[str, str] | Iterable[tuple[str, str]]) -> None:
        items = paths.items() if isinstance(paths, Mapping) else paths
        entries: list[tuple[str, str]] = []
        for base, product in items:
            if not base.startswith("/") or not product:
                raise ValueError(f"invalid product mapping {base!r} -> {product!r}")
            entries.append((base.rstrip("/") or "/", product))
        # Longest first, so "/sms/v1/admin" can be mapped apart from "/sms/v1".
        self._entries = tuple(sorted(entries, key=lambda e: len(e[0]), reverse=True))

    @classmethod
    def default(cls) -> ProductMap:
        """The default base paths (docs/protocol.md#the-client-registry)."""
        return cls(DEFAULT_PRODUCT_PATHS)

    def product_for(self, path: str) -> str | None:
        """The product serving ``path`` (decoded, without query), or None."""
        for base, product in self._entries:
            # A segment boundary: "/sms/v1x" is not under "/sms/v1".
            if base == "/" or path == base or path.startswith(base + "/"):
                return product
        return None

    def items(self) -> tuple[tuple[str, str], ...]:
        """The (base path, product id) pairs, longest base path first."""
        return self._entries
