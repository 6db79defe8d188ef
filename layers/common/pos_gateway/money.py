"""Money in integer minor units with an ISO 4217 currency; never floats."""

# ISO 4217 currencies whose minor unit is not the cent; every other currency has two decimals.
_MINOR_UNIT_EXPONENT = {
    **dict.fromkeys(
        [
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "UYI",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ],
        0,
    ),
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
}


def minor_unit_exponent(currency: str) -> int:
    """How many decimal places separate the minor unit from the major one (USD → 2, JPY → 0)."""
    return _MINOR_UNIT_EXPONENT.get(currency.upper(), 2)
