"""Records and parameter helpers shared by the ledger modules (no behaviour beyond parsing/formatting)."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .errors import INVALID_PARAMS, RpcError

# ---------------------------------------------------------------- constants (from the transcripts)

NODE_FEATURES = "808898880a8a59a1"  # getinfo our_features.node
CHANNEL_TYPE = {"bits": [12, 22], "names": ["static_remotekey/even", "anchors/even"]}
CHANNEL_FEATURES = ["option_static_remotekey", "option_anchors"]
DEFAULT_FEE_BASE_MSAT = 1
DEFAULT_FEE_PPM = 10
DEFAULT_CLTV_DELTA = 6
# what a 500000 sat CHANNELD_NORMAL channel's opener could not spend beyond the 1% reserve in the
# transcript (to_us 500000000, reserve 5000000, spendable 490709000): the commitment-fee buffer
OPENER_FEE_BUFFER_MSAT = 4_291_000
DUST_LIMIT_SAT = 546
INVOICE_MIN_FINAL_CLTV = 10  # the transcript's decode shows min_final_cltv_expiry 10
INVOICE_DEFAULT_EXPIRY = 604800
FUNDING_CONFIRMS = 1        # lightningd's funding-confirms on regtest: CHANNELD_NORMAL at one confirmation
ANNOUNCE_DEPTH = 6          # a public channel is announced (gossip, listchannels) at six confirmations
FEERATE_FLOOR = 253          # sat/kw: lightningd's minimum, and every rate when bitcoind has no estimate
# bitcoind's estimatesmartfee for 2 (CONSERVATIVE), 6, 12 and 100 (ECONOMICAL) blocks, sat/kw, as pyln-testing
# mocks them for every node it starts (NodeFactory.get_node's default); None = regtest without estimates
PYLN_TESTING_ESTIMATES = (15000, 11000, 7500, 3750)
ANCHOR_CLOSE_MIN = 1250      # lightningd never proposes less for a unilateral close with anchors


@dataclass(frozen=True)
class Feerates:
    """What lightningd v26.06 derives from bitcoind's four estimates (sat/kw), as `feerates` reports it.

    Observed on real lightningd: opening and penalty use the 12-block estimate, unilateral_close the 6-block one,
    mutual_close the 100-block one (the anchor close never below 1250); min_acceptable is half the 100-block
    estimate, max_acceptable ten times the 2-block one; splice is 20 sat/kvB above opening.  The on-chain fee
    estimates are lightningd's fixed transaction weights times those rates."""
    estimates: tuple[int, int, int, int] | None = None

    def _est(self, i: int) -> int:
        return max(FEERATE_FLOOR, self.estimates[i]) if self.estimates else FEERATE_FLOOR

    def perkw(self) -> dict[str, int]:
        e2, e6, e12, e100 = (self._est(i) for i in range(4))
        return {"opening": e12, "mutual_close": e100, "unilateral_close": e6,
                "unilateral_anchor_close": max(e100, ANCHOR_CLOSE_MIN), "penalty": e12, "splice": e12 + 5,
                "min_acceptable": max(e100 // 2, FEERATE_FLOOR), "max_acceptable": e2 * 10, "floor": FEERATE_FLOOR}

    def onchain_fee_estimates(self) -> dict[str, int]:
        r = self.perkw()
        return {"opening_channel_satoshis": r["opening"] * 702 // 1000,
                "mutual_close_satoshis": r["mutual_close"] * 673 // 1000,
                "unilateral_close_satoshis": r["unilateral_anchor_close"] * 1112 // 1000,
                "unilateral_close_nonanchor_satoshis": r["unilateral_close"] * 598 // 1000,
                "htlc_timeout_satoshis": r["unilateral_close"] * 663 // 1000,
                "htlc_success_satoshis": r["unilateral_close"] * 703 // 1000}

    def to_json(self, style: str) -> dict:
        mult = 1 if style == "perkw" else 4
        rates: dict[str, Any] = {k: v * mult for k, v in self.perkw().items()}
        rates["estimates"] = [{"blockcount": n, "feerate": self._est(i) * mult, "smoothed_feerate": self._est(i) * mult}
                              for i, n in enumerate((2, 6, 12, 100))]
        return {style: rates, "onchain_fee_estimates": self.onchain_fee_estimates()}


U64_MAX = 18446744073709551615

# lightningd pay/fund/offer/datastore error codes (common/jsonrpc_errors.h)
PAY_IN_PROGRESS = 200
PAY_ROUTE_NOT_FOUND = 205
PAY_ROUTE_TOO_EXPENSIVE = 206
PAY_INVOICE_EXPIRED = 207
PAY_DESTINATION_PERM_FAIL = 203
PAY_INJECTPAYMENTONION_ALREADY_PAID = 219
FUND_CANNOT_AFFORD = 301
CONNECT_NO_KNOWN_ADDRESS = 400
INVOICE_LABEL_ALREADY_EXISTS = 900
INVOICE_PREIMAGE_ALREADY_EXISTS = 901
INVOICE_NOT_FOUND = 905
INVOICE_STATUS_UNEXPECTED = 906
OFFER_ALREADY_EXISTS = 1000
OFFER_EXPIRED = 1002
OFFER_ROUTE_NOT_FOUND = 1003
OFFER_BAD_INVREQ_REPLY = 1004
DATASTORE_DEL_DOES_NOT_EXIST = 1200
DATASTORE_DEL_WRONG_GENERATION = 1201
DATASTORE_UPDATE_ALREADY_EXISTS = 1202
DATASTORE_UPDATE_DOES_NOT_EXIST = 1203
DATASTORE_UPDATE_WRONG_GENERATION = 1204
DATASTORE_UPDATE_HAS_CHILDREN = 1205
DATASTORE_UPDATE_NO_CHILDREN = 1206


# ---------------------------------------------------------------- parameter helpers


def token(value: Any) -> str:
    """The JSON token text lightningd quotes in `invalid token '...'` (strings keep their quotes)."""
    return json.dumps(value, separators=(",", ":"))


def badparam(name: str, msg: str, value: Any) -> RpcError:
    """lightningd's command_fail_badparam (developer-mode wording, as in the transcripts)."""
    return RpcError(INVALID_PARAMS, f"{name}: {msg}: invalid token '{token(value)}'")


_AMOUNT_RE = re.compile(r"^([0-9]+)(?:\.([0-9]+))?(msat|sat|btc)?$")


def parse_amount_msat(value: Any, name: str = "amount_msat", *, allow_any: bool = False) -> int | None:
    """lightningd's param_msat: int (msat), "N", "Nmsat", "Nsat", "N[.xxx]btc". None means "any"."""
    if allow_any and value == "any":
        return None
    if isinstance(value, bool):
        raise badparam(name, "should be a millisatoshi amount", value)
    if isinstance(value, int):
        if value < 0:
            raise badparam(name, "should be a millisatoshi amount", value)
        return value
    if isinstance(value, str):
        m = _AMOUNT_RE.match(value)
        if m:
            whole, frac, unit = m.group(1), m.group(2), m.group(3)
            if unit == "btc":
                if frac is None or len(frac) <= 11:
                    return int(whole) * 10**11 + (int(frac.ljust(11, "0")) if frac else 0)
            elif frac is None:
                return int(whole) * (1000 if unit == "sat" else 1)
    raise badparam(name, "should be a millisatoshi amount" if not allow_any
                   else "should be positive msat or 'any'", value)


def parse_amount_sat(value: Any, name: str = "amount", *, allow_all: bool = False) -> int | None:
    """lightningd's param_sat / param_sat_or_all. None means "all"."""
    if allow_all and value == "all":
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        m = _AMOUNT_RE.match(value)
        if m:
            whole, frac, unit = m.group(1), m.group(2), m.group(3)
            if unit == "btc":
                if frac is None or len(frac) <= 8:
                    return int(whole) * 10**8 + (int(frac.ljust(8, "0")) if frac else 0)
            elif frac is None and unit in (None, "sat"):
                return int(whole)
            elif frac is None and unit == "msat" and (whole.endswith("000") or int(whole) == 0):
                return int(whole) // 1000
    raise badparam(name, "should be a satoshi amount", value)


def parse_int(value: Any, name: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        else:
            raise badparam(name, "should be an unsigned 64 bit integer", value)
    if value < minimum:
        raise badparam(name, "should be an unsigned 64 bit integer", value)
    return value


def parse_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise badparam(name, "should be 'true' or 'false'", value)


def parse_hex(value: Any, name: str, length: int | None = None) -> bytes:
    try:
        b = bytes.fromhex(value)
        if length is not None and len(b) != length:
            raise ValueError
        return b
    except (TypeError, ValueError):
        what = "should be a hex value" if length is None else f"should be a {length * 8}-bit hex value"
        raise badparam(name, what, value) from None


def is_node_id(value: Any) -> bool:
    return isinstance(value, str) and re.fullmatch(r"0[23][0-9a-fA-F]{64}", value) is not None


def parse_label(value: Any) -> str:
    """lightningd's param_label: a string, or a number used as its text."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise badparam("label", "should be a string or number", value)


def paginate(items: list, index: Any, start: Any, limit: Any) -> list:
    """The list commands' index/start/limit (created_index / updated_index)."""
    if index is None:
        if start is not None or limit is not None:
            raise RpcError(INVALID_PARAMS, "Can only specify {start} or {limit} with {index}")
        return items
    if index not in ("created", "updated"):
        raise badparam("index", "should be 'created' or 'updated'", index)
    attr = f"{index}_index"
    start_n = parse_int(start, "start") if start is not None else 0
    out = sorted((i for i in items if getattr(i, attr) is not None and getattr(i, attr) >= start_n),
                 key=lambda i: getattr(i, attr))
    if limit is not None:
        out = out[:parse_int(limit, "limit", minimum=1)]
    return out


SCID_RE = re.compile(r"^([0-9]+)x([0-9]+)x([0-9]+)$")


def iso_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


# ---------------------------------------------------------------- records


@dataclass
class Utxo:
    txid: str
    output: int
    amount_msat: int
    scriptpubkey: str
    address: str
    blockheight: int | None
    status: str = "confirmed"  # unconfirmed | confirmed | spent
    reserved: bool = False
    reserved_to_block: int | None = None  # an input of a transaction still in the mempool

    def to_json(self) -> dict:
        out = {"txid": self.txid, "output": self.output, "amount_msat": self.amount_msat,
               "scriptpubkey": self.scriptpubkey, "address": self.address, "status": self.status}
        if self.blockheight is not None:
            out["blockheight"] = self.blockheight
        out["reserved"] = self.reserved
        if self.reserved_to_block is not None:
            out["reserved_to_block"] = self.reserved_to_block
        return out


@dataclass
class PendingTx:
    """A transaction in the mempool: its inputs stay reserved, its outputs unconfirmed, until a block has it."""
    txid: str
    spends: list[Utxo]
    outputs: list[Utxo]
    channel: "Channel | None" = None


@dataclass
class Policy:
    """One side's channel_update: what that node charges to forward *out* over the channel."""
    fee_base_msat: int
    fee_ppm: int
    cltv_delta: int
    htlc_min: int
    htlc_max: int
    last_update: int
    ignore_fee_limits: bool = True

    def fee(self, amount_msat: int) -> int:
        """BOLT 7: fee_base_msat + amount_to_forward * fee_proportional_millionths / 1000000."""
        return self.fee_base_msat + amount_msat * self.fee_ppm // 1_000_000

    def to_json(self) -> dict:
        return {"htlc_minimum_msat": self.htlc_min, "htlc_maximum_msat": self.htlc_max,
                "cltv_expiry_delta": self.cltv_delta, "fee_base_msat": self.fee_base_msat,
                "fee_proportional_millionths": self.fee_ppm}


@dataclass
class SideStats:
    in_payments_offered: int = 0
    in_offered_msat: int = 0
    in_payments_fulfilled: int = 0
    in_fulfilled_msat: int = 0
    out_payments_offered: int = 0
    out_offered_msat: int = 0
    out_payments_fulfilled: int = 0
    out_fulfilled_msat: int = 0


@dataclass
class Channel:
    scid: str | None             # None until the funding transaction is mined
    channel_id: str
    funding_txid: str
    funding_outnum: int
    funding_psbt: str
    capacity_sat: int
    opener: str
    peer: str  # the non-opener
    push_msat: int
    private: bool
    balance: dict[str, int]
    policy: dict[str, Policy]
    reserve_msat: dict[str, int]  # what each side must keep
    aliases: dict[str, str]
    close_to: dict[str, tuple[str, str]]  # node -> (address, scriptpubkey hex)
    scratch_txid: dict[str, str]
    state: str = "CHANNELD_NORMAL"
    state_changes: dict[str, list[dict]] = field(default_factory=dict)
    stats: dict[str, SideStats] = field(default_factory=dict)
    next_htlc_id: dict[str, int] = field(default_factory=dict)
    closer: str | None = None
    close_txid: str | None = None
    funding_tx: str = ""
    feerate_perkw: int = ANCHOR_CLOSE_MIN  # the commitment transaction's (the opener's anchor-close rate at open)
    funding_height: int | None = None      # the block the funding transaction is in

    def depth(self, height: int) -> int:
        """Confirmations of the funding transaction at chain height ``height``."""
        return 0 if self.funding_height is None else height - self.funding_height + 1

    @property
    def capacity_msat(self) -> int:
        return self.capacity_sat * 1000

    def other(self, node: str) -> str:
        return self.peer if node == self.opener else self.opener

    def ends(self) -> tuple[str, str]:
        return self.opener, self.peer

    def spendable(self, node: str) -> int:
        """What `node` can send in one HTLC: balance less its reserve (and the opener's fee buffer)."""
        if self.state not in ("CHANNELD_NORMAL", "CHANNELD_AWAITING_LOCKIN"):
            return 0
        buffer = OPENER_FEE_BUFFER_MSAT if node == self.opener else 0
        return max(0, min(self.balance[node] - self.reserve_msat[node] - buffer, self.policy[node].htlc_max))


@dataclass
class InvoiceRec:
    label: str
    payment_hash: str
    preimage: str
    amount_msat: int | None
    description: str | None
    created_at: int
    expires_at: int
    created_index: int
    payment_secret: str | None = None
    bolt11: str | None = None
    bolt12: str | None = None
    local_offer_id: str | None = None
    invreq_payer_note: str | None = None
    status: str = "unpaid"
    pay_index: int | None = None
    amount_received_msat: int | None = None
    paid_at: int | None = None
    updated_index: int | None = None

    def to_json(self) -> dict:
        out: dict = {"label": self.label}
        if self.bolt11:
            out["bolt11"] = self.bolt11
        if self.bolt12:
            out["bolt12"] = self.bolt12
        out["payment_hash"] = self.payment_hash
        if self.amount_msat is not None:
            out["amount_msat"] = self.amount_msat
        out["status"] = self.status
        if self.status == "paid":
            out["pay_index"] = self.pay_index
            out["amount_received_msat"] = self.amount_received_msat
            out["paid_at"] = self.paid_at
            out["payment_preimage"] = self.preimage
        if self.local_offer_id:
            out["local_offer_id"] = self.local_offer_id
        if self.invreq_payer_note is not None:
            out["invreq_payer_note"] = self.invreq_payer_note
        if self.description is not None:
            out["description"] = self.description
        out["expires_at"] = self.expires_at
        out["created_index"] = self.created_index
        if self.updated_index is not None:
            out["updated_index"] = self.updated_index
        return out


@dataclass
class PaymentRec:
    created_index: int
    payment_hash: str
    destination: str
    amount_msat: int
    amount_sent_msat: int
    created_at: float
    completed_at: int
    preimage: str
    updated_index: int
    groupid: int = 1
    label: str | None = None
    bolt11: str | None = None
    bolt12: str | None = None
    description: str | None = None
    status: str = "complete"

    def sendpay_json(self) -> dict:
        out: dict = {"created_index": self.created_index, "id": self.created_index,
                     "payment_hash": self.payment_hash, "groupid": self.groupid,
                     "updated_index": self.updated_index, "destination": self.destination,
                     "amount_msat": self.amount_msat, "amount_sent_msat": self.amount_sent_msat,
                     "created_at": int(self.created_at), "completed_at": self.completed_at,
                     "status": self.status, "payment_preimage": self.preimage}
        if self.status != "complete":          # lightningd has neither before the payment completed
            del out["completed_at"], out["payment_preimage"]
        for k in ("label", "bolt11", "bolt12", "description"):
            if getattr(self, k) is not None:
                out[k] = getattr(self, k)
        return out

    def listpays_json(self) -> dict:
        out: dict = {}
        if self.bolt11:
            out["bolt11"] = self.bolt11
        if self.bolt12:
            out["bolt12"] = self.bolt12
        if self.description is not None:
            out["description"] = self.description
        out.update({"destination": self.destination, "payment_hash": self.payment_hash,
                    "status": self.status, "created_at": int(self.created_at),
                    "completed_at": self.completed_at})
        if self.label is not None:
            out["label"] = self.label
        out.update({"preimage": self.preimage, "amount_msat": self.amount_msat,
                    "amount_sent_msat": self.amount_sent_msat, "created_index": self.created_index,
                    "updated_index": self.updated_index})
        if self.status != "complete":
            del out["completed_at"], out["preimage"]
        return out

    def pay_json(self) -> dict:
        return {"payment_preimage": self.preimage, "amount_msat": self.amount_msat,
                "amount_sent_msat": self.amount_sent_msat, "parts": 1, "destination": self.destination,
                "payment_hash": self.payment_hash, "status": "complete", "created_at": self.created_at}

    def xpay_json(self) -> dict:
        return {"payment_preimage": self.preimage, "amount_msat": self.amount_msat,
                "amount_sent_msat": self.amount_sent_msat, "failed_parts": 0, "successful_parts": 1}


@dataclass
class ForwardRec:
    created_index: int
    payment_hash: str
    in_channel: str
    in_htlc_id: int
    out_channel: str
    out_htlc_id: int
    in_msat: int
    out_msat: int
    received_time: float
    resolved_time: float | None = None
    updated_index: int | None = None
    preimage: str | None = None
    status: str = "offered"

    @property
    def fee_msat(self) -> int:
        return self.in_msat - self.out_msat

    def to_json(self) -> dict:
        out: dict = {"created_index": self.created_index}
        if self.updated_index is not None:
            out["updated_index"] = self.updated_index
        out.update({"in_channel": self.in_channel, "in_htlc_id": self.in_htlc_id,
                    "out_channel": self.out_channel, "out_htlc_id": self.out_htlc_id,
                    "in_msat": self.in_msat, "out_msat": self.out_msat, "fee_msat": self.fee_msat,
                    "status": self.status, "style": "tlv", "received_time": self.received_time})
        if self.resolved_time is not None:
            out["resolved_time"] = self.resolved_time
        return out

    def event(self) -> dict:
        """forward_event payload, exactly the transcript's fields for offered / settled."""
        out: dict = ({"created_index": self.created_index} if self.status == "offered"
                     else {"updated_index": self.updated_index})
        out.update({"payment_hash": self.payment_hash, "in_channel": self.in_channel,
                    "in_htlc_id": self.in_htlc_id, "out_channel": self.out_channel,
                    "in_msat": self.in_msat, "out_msat": self.out_msat, "fee_msat": self.fee_msat,
                    "status": self.status, "style": "tlv", "received_time": self.received_time})
        if self.status == "settled":
            out["resolved_time"] = self.resolved_time
            out["preimage"] = self.preimage
        return out


@dataclass
class OfferRec:
    offer_id: str
    bolt12: str
    single_use: bool
    label: str | None = None
    active: bool = True
    used: bool = False

    def to_json(self) -> dict:
        out = {"offer_id": self.offer_id, "active": self.active, "single_use": self.single_use,
               "bolt12": self.bolt12, "used": self.used}
        if self.label is not None:
            out["label"] = self.label
        return out


@dataclass
class NodeState:
    node_id: str
    privkey: bytes
    alias: str
    color: str
    utxos: list[Utxo] = field(default_factory=list)
    addresses: dict[str, str] = field(default_factory=dict)  # address -> scriptpubkey hex
    invoices: list[InvoiceRec] = field(default_factory=list)
    invoice_created: int = 0
    invoice_updated: int = 0
    pay_index: int = 0
    payments: list[PaymentRec] = field(default_factory=list)
    payment_updated: int = 0
    forwards: list[ForwardRec] = field(default_factory=list)
    forward_updated: int = 0
    fees_collected_msat: int = 0
    offers: dict[str, OfferRec] = field(default_factory=dict)
    datastore: dict[tuple[str, ...], tuple[bytes, int]] = field(default_factory=dict)
    last_timestamp: int = 0
    feerates: Feerates = field(default_factory=Feerates)
