"""Money as the APIs accept it (rules §9.5): yuan, never negative, finite, within a bound.

JSON parsers accept `Infinity`, `NaN` and `1e308`; none of them is an amount. An infinite value
would be stored as such by PostgreSQL and written as `null` into an event that its consumer then
cannot decode, so it is refused at the door with a 422 naming the field, as is `true` (which
lax validation reads as 1). The bound, a trillion yuan, is far above any household's figure.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field

MAX_YUAN = 1e12


def _not_a_boolean(value: object) -> object:
    # lax validation would take JSON true and false as the numbers 1 and 0
    if isinstance(value, bool):
        raise ValueError("must be a number, not true or false")
    return value


# JSON true and false are not numbers. Put it after a number's Field constraints: constraints
# that follow a validator function are checked in Python, a cost on every feed row
NOT_BOOLEAN = BeforeValidator(_not_a_boolean)
Amount = Annotated[
    float,
    Field(ge=0, le=MAX_YUAN, allow_inf_nan=False, description="金额 (yuan, 0 to 1e12)"),
    NOT_BOOLEAN,
]
