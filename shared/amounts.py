"""Money as the APIs accept it (rules §9.5): yuan, never negative, finite, within a bound.

JSON parsers accept `Infinity`, `NaN` and `1e308`; none of them is an amount. An infinite value
would be stored as such by PostgreSQL and written as `null` into an event that its consumer then
cannot decode, so it is refused at the door with a 422 naming the field. The bound is intake's
(`services/intake/fields.py`): a trillion yuan, far above any household's figure.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

MAX_YUAN = 1e12

Amount = Annotated[
    float, Field(ge=0, le=MAX_YUAN, allow_inf_nan=False, description="金额 (yuan, 0 to 1e12)")
]
