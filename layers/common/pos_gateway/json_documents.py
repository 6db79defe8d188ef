"""JSON bodies kept as they came (raw events): only what PostgreSQL's jsonb can store.

A provider body that Python's json reads may still be refused by jsonb at insert time (NaN,
Infinity, a number beyond a double's range, U+0000), or blow Python's recursion limit. Reading
it here first turns each of these into a refusal of the request instead of a failed insert.
"""

import json
import re
from decimal import Decimal
from typing import Any

# A \u0000 escape that is not itself an escaped backslash followed by "u0000".
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
# Magnitudes a double holds (every reader agrees on them; beyond, Python reads the stored jsonb
# back as an integer past its 4300-digit limit); PostgreSQL numeric keeps 16383 decimals at most.
_MAX_ADJUSTED_EXPONENT = 308
_MIN_EXPONENT = -16_383


class UnstorableJson(ValueError):
    """The body is not JSON that jsonb can store; the message says why (never the body)."""


def load_storable(text: str) -> Any:
    if _NUL_ESCAPE.search(text):
        raise UnstorableJson("the body contains a NUL character")
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_storable_number)
    except RecursionError as exc:
        raise UnstorableJson("the body is nested too deeply") from exc
    except UnstorableJson:
        raise
    except ValueError as exc:  # includes integers longer than Python reads
        raise UnstorableJson("the body is not JSON") from exc


def _refuse_constant(name: str) -> Any:
    raise UnstorableJson(f"{name} is not a JSON number")


def _storable_number(text: str) -> Decimal:
    number = Decimal(text)
    exponent = number.as_tuple().exponent
    if not isinstance(exponent, int):
        raise UnstorableJson("a number is not finite")
    # PostgreSQL checks the scale of a zero too (0e-99999 overflows).
    if number.adjusted() > _MAX_ADJUSTED_EXPONENT or exponent < _MIN_EXPONENT:
        raise UnstorableJson("a number is beyond the range the database stores")
    return number
