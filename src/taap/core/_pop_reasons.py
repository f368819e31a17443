"""The caller-facing wording of the time and coverage failures of a PoP (steps 4-5 of
docs/protocol.md#verifying-a-pop).

Each says which check failed, with the numbers that let an integrator fix it (the token's own
claims, the server clock, the configured leeway and caps): nothing secret. Names from ``ehts``
are the client's own, quoted with ``repr`` (control characters escaped) and shortened. The
short ``log_detail`` keywords stay as they were for operators' log searches.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from taap.core.request import RESERVED_NAMES
from taap.errors import PopCoverageError, PopExpiredError

_MAX_SHOWN = 64


def _shown(name: str) -> str:
    """``name`` as quoted in a description; a header name is said to be one."""
    text = repr(name[:_MAX_SHOWN] + ("…" if len(name) > _MAX_SHOWN else ""))
    return text if name in RESERVED_NAMES else f"header {text}"


def expired(exp: int, now: float, leeway: int) -> PopExpiredError:
    return PopExpiredError(
        f"PoP token expired {math.ceil(now - exp)} s ago (exp {exp}, leeway {leeway} s)",
        log_detail="expired",
    )


def not_yet_valid(claim: str, value: int, now: float, leeway: int) -> PopExpiredError:
    return PopExpiredError(
        f"PoP token not yet valid: {claim} {value} is {math.ceil(value - now)} s ahead of the "
        f"server clock (leeway {leeway} s; check the client's clock)",
        log_detail=f"{claim} in the future",
    )


def lifetime_over_cap(iat: int, exp: int, max_ttl: int) -> PopExpiredError:
    return PopExpiredError(
        f"PoP token lifetime too long: exp - iat = {exp - iat} s, over the cap of {max_ttl} s",
        log_detail="lifetime over the cap",
    )


def too_old(iat: int, now: float, max_age: int, leeway: int) -> PopExpiredError:
    return PopExpiredError(
        f"PoP token too old: issued {math.ceil(now - iat)} s ago (iat {iat}), over the maximum "
        f"age of {max_age} s + leeway {leeway} s",
        log_detail="too old",
    )


def absent(name: str) -> PopCoverageError:
    return PopCoverageError(
        f"PoP token signs {_shown(name)}, which the request does not have",
        log_detail=f"{name!r} is signed but absent from the request",
    )


def blank(name: str) -> PopCoverageError:
    return PopCoverageError(
        f"PoP token signs {_shown(name)}, whose value in the request is blank",
        log_detail=f"{name!r} is blank",
    )


def not_covered(missing: Sequence[str]) -> PopCoverageError:
    return PopCoverageError(
        f"PoP token does not sign the required {', '.join(missing)} (ehts must name "
        f"{'it' if len(missing) == 1 else 'them'})",
        log_detail=f"not covered: {', '.join(missing)}",
    )
