"""Marshmallow fields shared by the admin API's schemas and the domain's own (a
campaign segment), so that a number means the same in both."""

from __future__ import annotations

from marshmallow import fields


class WholeNumber(fields.Integer):
    """A JSON body's integer as JSON Schema (and the document) means it: 3 or 3.0.

    2.5 is refused, not truncated to 2 as marshmallow's lenient Integer would; "3" and
    true are refused too (strict), as a JSON client sends numbers as numbers.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(strict=True, **kwargs)

    def _validated(self, value):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return super()._validated(value)
