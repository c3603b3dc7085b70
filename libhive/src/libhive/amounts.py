"""Amounts as lightningd reads and writes them: the one parser every Hive plugin uses.

lightningd takes an amount parameter in several forms (common/amount.c ``parse_amount_msat`` /
``parse_amount_sat``, json_to_msat / json_to_sat):

* a bare integer (a JSON number or a string of digits), in the parameter's own unit: msat for ``*_msat``,
  ``feebase``, ``htlcmin``...; sat for ``fundchannel amount``, ``withdraw satoshi``...;
* ``"<digits>msat"``, ``"<digits>sat"``;
* ``"<digits>[.<1-11 digits>]btc"`` (a sat parameter takes at most 8 decimals, and ``msat`` only in whole sats);
* words some parameters accept instead of an amount: ``"all"`` (fundchannel, withdraw), ``"any"`` (invoice).

And it answers amounts as integers of msat (older versions: ``"<n>msat"`` strings; pyln's ``LightningRpc``
turns ``*_msat`` fields into ``Millisatoshi`` objects).

``parse_msat`` understands all of these and returns msat, or raises ``AmountError`` for anything it cannot read
exactly (floats, exponents, signs, spaces, other suffixes, more decimals than lightningd allows, values beyond
lightningd's 64-bit counters).  A caller that scores or limits an amount must refuse what raises here: an
amount it cannot read is never a small one.
"""
from __future__ import annotations

import re
from typing import Any, Literal

from .errors import quote

MSAT_PER_SAT = 1000
MSAT_PER_BTC = 100_000_000_000
MAX_SATS = 21_000_000 * 100_000_000         # every bitcoin there will be: the bound of any amount we accept
MAX_MSAT = MAX_SATS * MSAT_PER_SAT
U64_MAX = 2 ** 64 - 1
ALL = "all"
ANY = "any"

_FORM = re.compile(r"(?P<whole>[0-9]+)(?:\.(?P<frac>[0-9]+))?(?P<unit>msat|sat|btc)?")
_BTC_DECIMALS = {"msat": 11, "sat": 8}


class AmountError(ValueError):
    """Not an amount lightningd would read (or not one this parser can read exactly)."""


def parse_msat(value: Any, *, unit: Literal["msat", "sat"] = "msat", words: tuple[str, ...] = ()) -> int | str:
    """An amount parameter or result in msat.

    ``unit`` is what a bare number means for this parameter (lightningd's ``param_msat`` vs ``param_sat``);
    ``words`` are the non-amounts the parameter accepts (``"all"``, ``"any"``), returned as they are."""
    if isinstance(value, bool) or value is None:
        raise AmountError(f"not an amount: {_show(value)}")
    if isinstance(value, int):
        return _scaled(value, unit)
    millisatoshis = getattr(value, "millisatoshis", None)            # pyln's Millisatoshi
    if isinstance(millisatoshis, int) and not isinstance(millisatoshis, bool):
        return _checked(millisatoshis, unit)
    if not isinstance(value, str):
        raise AmountError(f"not an amount: {_show(value)}")
    if value in words:
        return value
    m = _FORM.fullmatch(value)
    if m is None:
        raise AmountError(f"not an amount lightningd reads: {_show(value)}")
    whole, frac, suffix = m.group("whole"), m.group("frac"), m.group("unit")
    if suffix == "btc":
        decimals = _BTC_DECIMALS[unit]
        if frac is not None and len(frac) > decimals:
            raise AmountError(f"{_show(value)}: at most {decimals} decimals of btc here")
        sats_or_msats = int(whole) * 10 ** decimals + (int(frac) * 10 ** (decimals - len(frac)) if frac else 0)
        return _checked(sats_or_msats * (MSAT_PER_SAT if unit == "sat" else 1), unit)
    if frac is not None:
        raise AmountError(f"{_show(value)}: only btc amounts have decimals")
    if suffix is None:
        return _scaled(int(whole), unit)
    if suffix == "msat":
        msat = int(whole)
        if unit == "sat" and msat % MSAT_PER_SAT:
            raise AmountError(f"{_show(value)}: this parameter takes whole satoshis")
        return _checked(msat, unit)
    return _checked(int(whole) * MSAT_PER_SAT, unit)                 # "sat"


def parse_sat(value: Any, *, words: tuple[str, ...] = ()) -> int | str:
    """A sat parameter (``fundchannel amount``...) in whole satoshis."""
    out = parse_msat(value, unit="sat", words=words)
    return out if isinstance(out, str) else out // MSAT_PER_SAT


def msat_or_zero(value: Any) -> int:
    """An msat field of a lightningd answer where a missing field means 0 (an unreadable one raises)."""
    if value is None:
        return 0
    out = parse_msat(value)
    assert isinstance(out, int)
    return out


def msat_or_none(value: Any) -> int | None:
    """An informational msat field of a lightningd answer: None (unknown) when it is missing or unreadable."""
    try:
        out = parse_msat(value)
    except AmountError:
        return None
    assert isinstance(out, int)
    return out


def _scaled(number: int, unit: str) -> int:
    if number < 0:
        raise AmountError(f"a negative amount: {number}")
    return _checked(number * (MSAT_PER_SAT if unit == "sat" else 1), unit)


def _checked(msat: int, unit: str) -> int:
    """lightningd keeps amounts in u64 of the parameter's unit; beyond that it refuses the value."""
    native = msat // MSAT_PER_SAT if unit == "sat" else msat
    if msat < 0 or native > U64_MAX:
        raise AmountError("amount out of range")
    return msat


def _show(value: Any) -> str:
    return quote(value, 40)
