"""Raw bodies are read as jsonb will store them: what it cannot hold is refused up front."""

from decimal import Decimal

import pytest

from pos_gateway.json_documents import UnstorableJson, load_storable


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"amount": NaN}', "NaN"),
        ('{"amount": Infinity}', "Infinity"),
        ('{"amount": -Infinity}', "-Infinity"),
        ('{"amount": 1e999999}', "beyond the range"),
        ('{"amount": 1e309}', "beyond the range"),
        ('{"x_extra": 1e5000}', "beyond the range"),
        ('{"amount": 1.5e-16383}', "beyond the range"),
        ('{"amount": 0e-99999}', "beyond the range"),
        ('{"note": "a\\u0000b"}', "NUL"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"amount": ' + "9" * 5000 + "}", "not JSON"),
        ("{", "not JSON"),
    ],
)
def test_what_jsonb_cannot_store_is_refused(text: str, reason: str) -> None:
    with pytest.raises(UnstorableJson, match=reason):
        load_storable(text)


def test_ordinary_documents_load_with_exact_fractions() -> None:
    document = load_storable(
        '{"amount": 12.50, "count": 3, "note": "a\\\\u0000 is text", "big": 1e308, "small": 1e-16383}'
    )

    assert document == {
        "amount": Decimal("12.50"),
        "count": 3,
        "note": "a\\u0000 is text",
        "big": Decimal("1e308"),
        "small": Decimal("1e-16383"),
    }
