"""What an advisor may reach, and how dangerous each call is.

Deny by default: an advisor can call only a method listed in ``ALLOWLIST`` (or added by the operator's policy
overrides), only with the parameters listed for it, and only if the method's permission group is in the
advisor's permissions.  ``is_forbidden`` is checked first and cannot be overridden: comms' own admin methods
(``hive-comms-*``, ``hive-client-*``), anything that signs with or exports node secrets, runes, configuration,
backups, plugin control and on-chain withdrawals.  Parameters that would send funds to a place the advisor
chooses (``close`` ``destination``, ``fundchannel`` ``close_to``/``push_msat``) are simply not allowed.

Danger scores run from 1 (read-only) to 10 and depend on the parameters where it matters (amounts, "all
channels"); the policy compares them with its thresholds.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

GROUPS = ("monitor", "fees", "invoices", "peers", "channels", "payments", "hive")

_FORBIDDEN_NAMES = frozenset({
    "signmessage", "signpsbt", "signinvoice", "makesecret", "getsharedsecret", "datastore", "deldatastore",
    "listdatastore", "datastoreusage", "createrune", "showrunes", "blacklistrune", "checkrune", "commando",
    "listconfigs", "setconfig", "getemergencyrecoverdata", "staticbackup", "exposesecret", "emergencyrecover",
    "recover", "recoverchannel", "plugin", "stop", "withdraw", "multiwithdraw", "sendpsbt", "txsend", "txprepare",
    "utxopsbt", "fundpsbt", "reserveinputs", "unreserveinputs", "sendcustommsg", "sendonionmessage", "sendonion",
    "injectonionmessage", "injectpaymentonion", "check", "help", "batching", "developer", "newaddr",
    "hive-inject-packet",
})
# the identity plugin's operations (DID, bindings, credentials, vault, recovery) are the operator's alone
_FORBIDDEN_PREFIXES = ("hive-comms-", "hive-client-", "hive-archon-", "dev-", "dev_", "commando-")
_FORBIDDEN_WORDS = re.compile(r"secret|export|backup|rune|sign|private|seed|mnemonic|hsm|nsec|restore|recover")


def is_forbidden(method: str) -> bool:
    """Methods no policy can open to an advisor."""
    m = method.lower()
    return m in _FORBIDDEN_NAMES or m.startswith(_FORBIDDEN_PREFIXES) or bool(_FORBIDDEN_WORDS.search(m))


@dataclass(frozen=True)
class MethodRule:
    method: str
    group: str
    params: frozenset[str]
    danger: Callable[[dict[str, Any]], int]
    internal: bool = False      # executed by comms itself (e.g. "pay" through the payment engine)


def fixed(score: int) -> Callable[[dict[str, Any]], int]:
    return lambda params: score


def _msat(params: dict[str, Any], key: str, native: str) -> int:
    """An amount parameter in msat; a bare number is in the parameter's ``native`` unit (msat or sat)."""
    value = params.get(key)
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value * (1000 if native == "sat" else 1)
    if isinstance(value, str):
        m = re.fullmatch(r"(\d{1,20})(msat|sat)?", value)
        if m:
            unit = m.group(2) or native
            return int(m.group(1)) * (1000 if unit == "sat" else 1)
    return 0


def pay_danger(params: dict[str, Any]) -> int:
    sats = _msat(params, "amount_msat", "msat") // 1000
    if sats >= 1_000_000:
        return 8
    if sats >= 100_000:
        return 7
    if sats >= 10_000:
        return 6
    return 4


def setchannel_danger(params: dict[str, Any]) -> int:
    score = 5 if params.get("id") == "all" else 3
    if _msat(params, "feeppm", "msat") > 5000 or _msat(params, "feebase", "msat") > 10_000:
        score += 1
    return score


def fundchannel_danger(params: dict[str, Any]) -> int:
    if params.get("amount") == "all":
        return 9
    return 8 if _msat(params, "amount", "sat") >= 5_000_000_000 else 7


def close_danger(params: dict[str, Any]) -> int:
    return 9 if params.get("unilateraltimeout") not in (None, 0) else 8


def _rule(method: str, group: str, params: str, danger: Callable[[dict[str, Any]], int],
          internal: bool = False) -> MethodRule:
    return MethodRule(method, group, frozenset(params.split()), danger, internal)


ALLOWLIST: dict[str, MethodRule] = {r.method: r for r in (
    _rule("getinfo", "monitor", "", fixed(1)),
    _rule("listfunds", "monitor", "spent", fixed(1)),
    _rule("listpeers", "monitor", "id level", fixed(1)),
    _rule("listpeerchannels", "monitor", "id short_channel_id channel_id", fixed(1)),
    _rule("listchannels", "monitor", "short_channel_id source destination", fixed(1)),
    _rule("listnodes", "monitor", "id", fixed(1)),
    _rule("listforwards", "monitor", "status in_channel out_channel index start limit", fixed(1)),
    _rule("listpays", "monitor", "bolt11 payment_hash status index start limit", fixed(1)),
    _rule("listinvoices", "monitor", "label invstring payment_hash offer_id index start limit", fixed(1)),
    _rule("listoffers", "monitor", "offer_id active_only", fixed(1)),
    _rule("feerates", "monitor", "style", fixed(1)),
    _rule("decode", "monitor", "string", fixed(1)),
    _rule("getroute", "monitor", "id amount_msat riskfactor cltv fromid fuzzpercent exclude maxhops", fixed(1)),
    _rule("hive-status", "hive", "", fixed(1)),
    _rule("setchannel", "fees", "id feebase feeppm htlcmin htlcmax enforcedelay ignorefeelimits",
          setchannel_danger),
    _rule("invoice", "invoices", "amount_msat label description expiry deschashonly", fixed(2)),
    _rule("offer", "invoices", "amount description issuer label quantity_max absolute_expiry single_use", fixed(3)),
    _rule("connect", "peers", "id host port", fixed(3)),
    _rule("disconnect", "peers", "id force", fixed(5)),
    _rule("fundchannel", "channels", "id amount feerate announce minconf", fundchannel_danger),
    _rule("close", "channels", "id unilateraltimeout fee_negotiation_step", close_danger),
    _rule("pay", "payments", "target amount_msat maxfee_msat idempotency_key", pay_danger, internal=True),
)}
