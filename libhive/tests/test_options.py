"""The one range check for integer options: what an operator who set a bad value is told."""
from __future__ import annotations

import pytest

from libhive.options import int_in_range


class Unusable(Exception):
    pass


@pytest.mark.parametrize("value, expected", [(0, 0), (42, 42), (100, 100), ("7", 7), (" 8 ", 8)])
def test_whole_numbers_in_range_are_taken(value, expected):
    assert int_in_range(value, "hive-x", 0, 100, Unusable) == expected


@pytest.mark.parametrize("value", [-1, 101, True, 5.0, 5.5, "5.5", "five", "", None, [5], 10**30])
def test_anything_else_is_refused_with_the_callers_error_naming_the_option(value):
    with pytest.raises(Unusable) as err:
        int_in_range(value, "hive-comms-x", 0, 100, Unusable)
    assert str(err.value).startswith("option hive-comms-x=") and "from 0 to 100" in str(err.value)


def test_a_huge_value_is_quoted_short():
    with pytest.raises(Unusable) as err:
        int_in_range("9" * 100_000, "hive-x", 0, 100, Unusable)
    assert len(str(err.value)) < 200
