"""The error table (taap.error_guide): one row per error a server answers, from the tree."""

from __future__ import annotations

import taap.errors as errors
from taap.error_guide import error_table, wire_errors


def test_one_row_per_wire_error_code_in_tree_order() -> None:
    rows = error_table()
    codes = [row.error_code for row in rows]
    assert len(codes) == len(set(codes))
    assert codes[0] == "method_not_allowed"
    assert codes[-1] == "internal"
    # Library-side errors are never answered by a server.
    for cls in (errors.ConfigurationError, errors.PopBuildError, errors.TransportError):
        assert cls.error_code not in codes
    assert errors.UnknownKeyIdError not in wire_errors()  # same wire form as token_invalid


def test_every_row_is_the_classes_wire_form_with_words() -> None:
    for cls, row in zip(wire_errors(), error_table(), strict=True):
        body = cls().to_dict()
        assert (row.status, row.error, row.error_code) == (
            cls.status_code,
            body["error"],
            body["error_code"],
        )
        assert row.meaning == body["error_description"]
        # A new error class needs its cause and fix in taap/error_guide.py.
        assert row.cause, f"{row.error_code} has no cause in taap.error_guide"
        assert row.fix, f"{row.error_code} has no fix in taap.error_guide"


def test_a_subclass_outside_the_tree_is_not_a_row() -> None:
    class Custom(errors.TaapError):
        error_code = "my_own"

    assert "my_own" not in {row.error_code for row in error_table()}
