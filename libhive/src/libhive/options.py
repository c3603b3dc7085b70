"""Checking a plugin's own option values: one range check for integer options, answered with the error class of
the module that reads the option (each plugin has its own code for "this option is unusable")."""
from __future__ import annotations

from typing import Any

from .errors import quote


def int_in_range(value: Any, name: str, lo: int, hi: int, error: type[Exception]) -> int:
    """``value`` (as lightningd handed it over, or the operator's text) as an int in [lo, hi]; otherwise ``error``
    with a message naming the option ``name``.  Floats and booleans are refused, never rounded."""
    number = value
    if isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            number = None
    if type(number) is not int or not lo <= number <= hi:
        raise error(f"option {name}={quote(value)} must be a whole number from {lo} to {hi}")
    return number
