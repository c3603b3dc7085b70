"""libhive.amounts: every amount form lightningd reads, and a refusal for everything else (issue 10, finding 1)."""
from __future__ import annotations

import pytest

from libhive.amounts import ALL, ANY, AmountError, msat_or_zero, parse_msat, parse_sat


class Millisatoshi:
    """What pyln's Millisatoshi looks like to the parser."""

    def __init__(self, msat: int) -> None:
        self.millisatoshis = msat


@pytest.mark.parametrize("value, msat", [
    (6_000_000, 6_000_000_000),                  # a bare number in a sat field
    ("6000000", 6_000_000_000),
    ("6000000sat", 6_000_000_000),
    ("6000000000msat", 6_000_000_000),
    ("0.06btc", 6_000_000_000),                  # the finding: 0.06 btc is 6 000 000 sat, not 0
    ("0.06000000btc", 6_000_000_000),
    ("1btc", 100_000_000_000),
    ("0.00000001btc", 1_000),
    ("0msat", 0),
])
def test_sat_fields(value, msat):
    assert parse_msat(value, unit="sat") == msat
    assert parse_sat(value) == msat // 1000


@pytest.mark.parametrize("value, msat", [
    (11_000, 11_000),                            # a bare number in an msat field
    ("11000", 11_000),
    ("11000msat", 11_000),
    ("11sat", 11_000),
    ("0.00000000011btc", 11),                    # up to 11 decimals in an msat field
    ("0.0001btc", 10_000_000),
    (Millisatoshi(42), 42),
])
def test_msat_fields(value, msat):
    assert parse_msat(value) == msat


@pytest.mark.parametrize("value", [
    "6e6", "1.5", "1.5sat", "-5", -5, " 5", "5 ", "5msatx", "5 sat", "0x10", "", "btc", ".5btc", "1.btc",
    "0.000000001btc",                            # 9 decimals: more than a sat field takes
    "1001msat",                                  # not whole satoshis, in a sat field
    1.5, 6e6, True, False, None, [], {}, {"msat": 5},
    2 ** 64 * 1000,                              # beyond lightningd's u64
    "١٢٣",                                       # other scripts' digits are not digits to lightningd
])
def test_unreadable_amounts_are_refused(value):
    with pytest.raises(AmountError):
        parse_msat(value, unit="sat")


def test_words_only_where_the_parameter_takes_them():
    assert parse_msat("all", unit="sat", words=(ALL,)) == ALL
    assert parse_msat("any", words=(ANY,)) == ANY
    with pytest.raises(AmountError):
        parse_msat("all", unit="sat")


def test_msat_fields_of_answers():
    assert msat_or_zero(None) == 0
    assert msat_or_zero(123) == 123
    assert msat_or_zero("123msat") == 123                  # older lightningd
    with pytest.raises(AmountError):
        msat_or_zero("lots")
