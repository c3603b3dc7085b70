"""What an advisor may reach, and how dangerous each call is.

Deny by default: an advisor can call only a method listed in ``ALLOWLIST`` (or added by the operator's policy
overrides), only with the parameters listed for it, and only if the method's permission group is in the
advisor's permissions.  ``is_forbidden`` is checked first and cannot be overridden: comms' own admin methods
(``hive-comms-*``, ``hive-client-*``), anything that signs with or exports node secrets, runes, configuration,
backups, plugin control and on-chain withdrawals.  Parameters that would send funds to a place the advisor
chooses (``close`` ``destination``, ``fundchannel`` ``close_to``/``push_msat``) are simply not allowed.

Methods that move the node's funds (``moves_funds``) are reachable only through this module's own rules: ``pay``
through comms' payment engine (the advisor's daily limit, the amount as lightningd decodes it), ``fundchannel``
and ``close`` with their amounts read and scored.  No override can add another one (``xpay``, ``keysend``,
``sendpay``, ``withdraw``, ``splice_*``...), and an override can raise their danger but never lower it.

Danger scores run from 1 (read-only) to 10 and depend on the parameters where it matters (amounts, "all
channels"); the policy compares them with its thresholds.  Amounts are read with ``libhive.amounts``, which
knows every form lightningd accepts; an amount it cannot read raises ``Unreadable`` and the request is denied
(an unreadable amount is never a small one).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from libhive.amounts import ALL, AmountError, parse_msat
from libhive.errors import quote

GROUPS = ("monitor", "fees", "invoices", "peers", "channels", "payments", "hive")

_FORBIDDEN_NAMES = frozenset({
    "signmessage", "signpsbt", "signinvoice", "makesecret", "getsharedsecret", "datastore", "deldatastore",
    "listdatastore", "datastoreusage", "createrune", "showrunes", "blacklistrune", "checkrune", "commando",
    "listconfigs", "setconfig", "getemergencyrecoverdata", "staticbackup", "exposesecret", "emergencyrecover",
    "recover", "recoverchannel", "plugin", "stop", "withdraw", "multiwithdraw", "sendpsbt", "txsend", "txprepare",
    "utxopsbt", "fundpsbt", "reserveinputs", "unreserveinputs", "sendcustommsg", "sendonionmessage", "sendonion",
    "injectonionmessage", "injectpaymentonion", "check", "help", "batching", "developer", "newaddr",
    "hive-inject-packet",
    # found by the readiness gate C (ops/reviewed/lightningd-methods.txt): they sign with a node key (invoices,
    # offers, invoice requests, payer proofs), decrypt with it, read every table (sql), or control the node
    "createinvoice", "createoffer", "createinvoicerequest", "createproof", "decryptencrypteddata", "sql",
    "graceful", "reckless", "dev",
    # cl-hive's monolith migration (cl-hive-migrate's RPC): reads a database file the caller names
    "hive-migrate",
})
# the identity plugin's operations (DID, bindings, credentials, vault, recovery) are the operator's alone
_FORBIDDEN_PREFIXES = ("hive-comms-", "hive-client-", "hive-archon-", "dev-", "dev_", "commando-")
_FORBIDDEN_WORDS = re.compile(r"secret|export|backup|rune|sign|private|seed|mnemonic|hsm|nsec|restore|recover")


def is_forbidden(method: str) -> bool:
    """Methods no policy can open to an advisor."""
    m = method.lower()
    return m in _FORBIDDEN_NAMES or m.startswith(_FORBIDDEN_PREFIXES) or bool(_FORBIDDEN_WORDS.search(m))


# lightningd's (and cl-hive's) methods that pay, open, fund, splice, close or withdraw
_FUNDS_NAMES = frozenset({
    "pay", "xpay", "keysend", "sendpay", "sendonion", "renepay", "injectpaymentonion", "sendamount",
    "fundchannel", "fundchannel_start", "fundchannel_complete", "fundchannel_cancel", "multifundchannel",
    "close", "withdraw", "multiwithdraw", "txprepare", "txsend", "txdiscard", "sendpsbt", "fundpsbt", "utxopsbt",
    "addpsbtoutput", "addpsbtinput", "upgradewallet", "funderupdate", "emergencyrecover", "recoverchannel",
    "hive-approve-action", "hive-intent-open",
    # found by the readiness gate C: keysend through xpay, liquidity-ad lease rates, aborting channel opens, and
    # cl-hive's governance controls (failsafe mode executes safety actions by itself; a proposed action, or the
    # planner's, opens a channel once approved)
    "xkeysend", "setleaserates", "abort_channels", "hive-set-mode", "hive-propose-action", "hive-planner-run",
})
_FUNDS_PREFIXES = ("splice", "dev-splice", "openchannel_", "fundchannel", "multifund", "xpay", "renepay", "pay-")


def moves_funds(method: str) -> bool:
    """Whether ``method`` can move the node's money (see the module docstring for what that means here)."""
    m = method.lower()
    return m in _FUNDS_NAMES or m.startswith(_FUNDS_PREFIXES)


class Unreadable(ValueError):
    """A parameter the danger score depends on cannot be read: the request is denied."""


@dataclass(frozen=True)
class MethodRule:
    method: str
    group: str
    params: frozenset[str]
    danger: Callable[[dict[str, Any]], int]
    internal: bool = False      # executed by comms itself (e.g. "pay" through the payment engine)


def fixed(score: int) -> Callable[[dict[str, Any]], int]:
    return lambda params: score


def _amount(params: dict[str, Any], key: str, unit: str, words: tuple[str, ...] = ()) -> int | str:
    """An amount parameter in msat (0 if absent), read as lightningd reads it; Unreadable otherwise."""
    if key not in params:
        return 0
    try:
        return parse_msat(params[key], unit=unit, words=words)  # type: ignore[arg-type]
    except AmountError as exc:
        raise Unreadable(f"{key}: {exc}") from None


def _u32(params: dict[str, Any], key: str) -> int:
    """A plain number parameter (lightningd's param_number): an integer or a string of digits."""
    value = params.get(key, 0)
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,10}", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2 ** 32:
        raise Unreadable(f"{key}: not a number lightningd reads: {quote(value, 40)}")
    return value


def pay_danger(params: dict[str, Any]) -> int:
    sats = int(_amount(params, "amount_msat", "msat")) // 1000
    if sats >= 1_000_000:
        return 8
    if sats >= 100_000:
        return 7
    if sats >= 10_000:
        return 6
    return 4


def setchannel_danger(params: dict[str, Any]) -> int:
    score = 5 if params.get("id") == "all" else 3
    _amount(params, "htlcmin", "msat")                        # read, so an unreadable one is refused
    _amount(params, "htlcmax", "msat")
    if _u32(params, "feeppm") > 5000 or int(_amount(params, "feebase", "msat")) > 10_000:
        score += 1
    return score


def fundchannel_danger(params: dict[str, Any]) -> int:
    amount = _amount(params, "amount", "sat", words=(ALL,))
    if amount == ALL:
        return 9
    return 8 if int(amount) >= 5_000_000_000 else 7


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
