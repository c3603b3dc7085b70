"""The devnet's wallet, channel and payment model: a lightningd stand-in for everything the plugins use
of the chain, channels, invoices, offers, payments and the datastore. Pure Python, no I/O.

Layout (the Ledger class is assembled from mixins, one per area):
  ledger.py            Ledger: state, lock, notifications, call()/METHODS, scripting API, newaddr/listfunds/feerates
  ledger_channels.py   fundchannel, close, listpeerchannels, listchannels, listnodes, setchannel
  ledger_invoices.py   invoice, listinvoices, delinvoice, decode, offer, listoffers, disableoffer, fetchinvoice
  ledger_pay.py        pay, xpay, sendpay, waitsendpay, getroute, listpays, listsendpays, listforwards
  ledger_datastore.py  datastore, listdatastore, deldatastore, datastoreusage
  ledger_model.py      records, constants, lightningd-style parameter parsing and error helpers
  bolt11.py, bolt12.py, codec.py   the encodings (BOLT 11, BOLT 12, bech32/BigSize/transactions)

Simplifications (see also the module docstrings):
  * the chain is a block counter: fund_wallet mines 1 block; fundchannel/open_channel mine 6 (the
    funding tx is in the first, txindex 1, so scid = `{height+1}x1x{outnum}`) and the channel is
    CHANNELD_NORMAL immediately; close mines 1 block and leaves the channel in ONCHAIN.
  * payments are atomic (single part, no in-flight HTLCs); forwards settle at once.
  * connectivity (set_peer_connected) is shown in peer_connected / listfunds `connected`, gates
    fundchannel, picks mutual vs unilateral close and fetchinvoice reachability; it only gates routing
    when Ledger(strict_connectivity=True).
"""
from __future__ import annotations

import inspect
import logging
import os
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import coincurve

from . import codec
from .errors import INVALID_PARAMS, LIGHTNINGD, RpcError
from .ledger_datastore import DatastoreMixin
from .ledger_model import (
    ANNOUNCE_DEPTH,
    FUNDING_CONFIRMS,
    Channel,
    Feerates,
    PendingTx,
    NodeState,
    Utxo,
    iso_time,
    parse_bool,
    token,
)
from .ledger_channels import ChannelsMixin
from .ledger_invoices import InvoicesMixin
from .ledger_pay import HeldPayment, PaymentsMixin

Emit = Callable[[str, str, dict], None]
log = logging.getLogger(__name__)


class Ledger(ChannelsMixin, InvoicesMixin, PaymentsMixin, DatastoreMixin):
    """All nodes' wallets, channels, invoices and payments. Thread-safe (one RLock).

    Notifications are reported through `emit(node_id, topic, payload)` with the payload *unwrapped*
    (the node layer wraps it as `{"<topic>": payload}` like lightningd); they are delivered after the
    lock is released, in the order they happened within one call. Topics: block_added,
    channel_opened, channel_state_changed, invoice_creation, invoice_payment, forward_event,
    sendpay_success.
    """

    # method -> positional parameter order (lightningd's param() order; see doc/schemas and the C code)
    METHODS: dict[str, tuple[str, ...]] = {
        "newaddr": ("addresstype",),
        "listfunds": ("spent",),
        "fundchannel": ("id", "amount", "feerate", "announce", "minconf", "utxos", "push_msat", "close_to",
                        "request_amt", "compact_lease", "mindepth", "reserve", "channel_type"),
        "close": ("id", "unilateraltimeout", "destination", "fee_negotiation_step", "wrong_funding",
                  "force_lease_closed", "feerange"),
        "listpeerchannels": ("id", "short_channel_id", "channel_id"),
        "listchannels": ("short_channel_id", "source", "destination"),
        "listnodes": ("id",),
        "setchannel": ("id", "feebase", "feeppm", "htlcmin", "htlcmax", "enforcedelay", "ignorefeelimits"),
        "feerates": ("style",),
        "invoice": ("amount_msat", "label", "description", "expiry", "fallbacks", "preimage",
                    "exposeprivatechannels", "cltv", "deschashonly"),
        "listinvoices": ("label", "invstring", "payment_hash", "offer_id", "index", "start", "limit"),
        "delinvoice": ("label", "status", "desconly"),
        "decode": ("string",),
        "offer": ("amount", "description", "issuer", "label", "quantity_max", "absolute_expiry", "recurrence",
                  "recurrence_base", "recurrence_paywindow", "recurrence_limit", "single_use",
                  "proportional_amount", "optional_recurrence", "fronting_nodes"),
        "listoffers": ("offer_id", "active_only"),
        "disableoffer": ("offer_id",),
        "fetchinvoice": ("offer", "amount_msat", "quantity", "recurrence_counter", "recurrence_start",
                         "recurrence_label", "timeout", "payer_note", "payer_metadata", "bip353"),
        # pay: lightningd also accepts the first parameter named `invstring` (by name only)
        "pay": ("bolt11", "amount_msat", "label", "riskfactor", "maxfeepercent", "retry_for", "maxdelay",
                "exemptfee", "localinvreqid", "exclude", "maxfee", "description", "partial_msat", "invstring"),
        "xpay": ("invstring", "amount_msat", "maxfee", "layers", "retry_for", "partial_msat", "maxdelay",
                 "payer_note", "label", "localinvreqid"),
        "sendpay": ("route", "payment_hash", "label", "amount_msat", "bolt11", "payment_secret", "partid",
                    "localinvreqid", "groupid", "payment_metadata", "description"),
        "waitsendpay": ("payment_hash", "timeout", "partid", "groupid"),
        "getroute": ("id", "amount_msat", "riskfactor", "cltv", "fromid", "fuzzpercent", "exclude", "maxhops"),
        "listpays": ("bolt11", "payment_hash", "status", "index", "start", "limit"),
        "listsendpays": ("bolt11", "payment_hash", "status", "index", "start", "limit"),
        "listforwards": ("status", "in_channel", "out_channel", "index", "start", "limit"),
        "datastore": ("key", "string", "hex", "mode", "generation"),
        "listdatastore": ("key",),
        "deldatastore": ("key", "generation"),
        "datastoreusage": ("key",),
    }

    def __init__(self, network: str = "regtest", emit: Emit | None = None, *,
                 clock: Callable[[], float] = time.time, strict_connectivity: bool = False) -> None:
        if network not in codec.CHAIN_HASHES:
            raise ValueError(f"unknown network {network}")
        self.network = network
        self.emit = emit
        self.clock = clock
        self.strict_connectivity = strict_connectivity
        self._lock = threading.RLock()
        self._depth = 0
        self._events: list[tuple[str, str, dict]] = []
        self._height = 101
        self.nodes: dict[str, NodeState] = {}
        self.chans: dict[str, Channel] = {}  # scid (channel_id until the funding is mined) -> channel
        self._mempool: list[PendingTx] = []
        self._connected: set[frozenset[str]] = set()
        # the payee's invoice_payment hook (set by the network): (payee, payload) -> "continue" | "reject" | None
        self.payee_hook: Callable[[str, dict | None], str | None] | None = None

    # ------------------------------------------------------------ infrastructure

    @contextmanager
    def _locked(self):
        """Hold the lock; on leaving the outermost level, deliver queued notifications unlocked
        (also when the call failed: whatever happened before the error did happen)."""
        events: list[tuple[str, str, dict]] = []
        try:
            with self._lock:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                    if self._depth == 0:
                        events, self._events = self._events, []
        finally:
            for ev in events if self.emit is not None else ():
                try:
                    self.emit(*ev)
                except Exception:  # noqa: BLE001 - a broken listener must not fail the RPC that caused it
                    log.exception("ledger notification %s to %s failed", ev[1], ev[0])

    def _notify(self, node_id: str, topic: str, payload: dict) -> None:
        self._events.append((node_id, topic, payload))

    def _node(self, node_id: str) -> NodeState:
        try:
            return self.nodes[node_id]
        except KeyError:
            raise RpcError(LIGHTNINGD, f"unknown devnet node {node_id}") from None

    def _now(self) -> float:
        return self.clock()

    def call(self, node_id: str, method: str, params: dict) -> dict:
        """Run RPC `method` as node `node_id` with named params; raises RpcError like lightningd."""
        if method not in self.METHODS:
            raise RpcError(-32601, f"Unknown command '{method}'")
        handler = getattr(self, "rpc_" + method)
        params = {k: v for k, v in params.items() if v is not None}
        for name, p in inspect.signature(handler).parameters.items():
            if name != "node" and p.default is inspect.Parameter.empty and name not in params:
                raise RpcError(INVALID_PARAMS, f"missing required parameter: {name}")
        unknown = set(params) - set(self.METHODS[method])
        if unknown:
            raise RpcError(INVALID_PARAMS, f"unknown parameter: {sorted(unknown)[0]}")
        try:
            with self._locked():
                return handler(self._node(node_id), **params)
        except HeldPayment as held:              # the payee's invoice_payment hook decides, outside the lock
            verdict = self.payee_hook(held.target.destination, held.hook_payload()) if self.payee_hook else None
            with self._locked():
                return self._finish_held(held, verdict or "continue")

    # ------------------------------------------------------------ scripting / node-layer API

    def add_node(self, node_id: str, privkey: bytes, alias: str) -> None:
        if coincurve.PrivateKey(privkey).public_key.format().hex() != node_id:
            raise ValueError("privkey does not match node_id")
        with self._locked():
            if node_id not in self.nodes:
                self.nodes[node_id] = NodeState(node_id, privkey, alias, node_id[:6],
                                                last_timestamp=int(self._now()))

    def set_feerates(self, node_id: str, estimates: tuple[int, int, int, int] | None) -> None:
        """What this node's bitcoind estimates for 2, 6, 12 and 100 blocks (sat/kw; None: no estimate, as on a bare
        regtest).  pyln-testing sets this per node by mocking estimatesmartfee; `feerates`, the on-chain fees
        and new channels' commitment feerate follow it."""
        with self._locked():
            self._node(node_id).feerates = Feerates(tuple(estimates) if estimates else None)

    def set_peer_connected(self, a: str, b: str, connected: bool) -> None:
        with self._locked():
            pair = frozenset((a, b))
            if connected:
                self._connected.add(pair)
            else:
                self._connected.discard(pair)

    def is_connected(self, a: str, b: str) -> bool:
        return frozenset((a, b)) in self._connected

    @property
    def block_height(self) -> int:
        return self._height

    def mine(self, n: int = 1) -> int:
        """Mine `n` blocks (block_added to every node), the first with every transaction in the mempool: their
        inputs are spent, their outputs confirmed, a funding transaction gives its channel a short_channel_id.
        A channel is CHANNELD_NORMAL at FUNDING_CONFIRMS confirmations.  Returns the new height."""
        with self._locked():
            for _ in range(n):
                self._height += 1
                for index, tx in enumerate(self._mempool, start=1):
                    self._confirm(tx, index)
                self._mempool = []
                for ch in list(self.chans.values()):
                    if ch.state == "CHANNELD_AWAITING_LOCKIN" and ch.depth(self._height) >= FUNDING_CONFIRMS:
                        self._state_change(ch, "CHANNELD_NORMAL", {ch.opener: "user", ch.peer: "remote"},
                                           "Lockin complete")
                h = codec.sha256(self._height.to_bytes(4, "big") + os.urandom(8))[::-1].hex()
                for nid in self.nodes:
                    self._notify(nid, "block_added", {"hash": h, "height": self._height})
            return self._height

    def _confirm(self, tx: PendingTx, index: int) -> None:
        for u in tx.spends:
            u.status, u.reserved, u.reserved_to_block = "spent", False, None
        for u in tx.outputs:
            u.status, u.blockheight = "confirmed", self._height
        ch = tx.channel
        if ch is not None and ch.funding_height is None:
            del self.chans[ch.channel_id]
            ch.funding_height = self._height
            ch.scid = f"{self._height}x{index}x{ch.funding_outnum}"
            self.chans[ch.scid] = ch

    def announced(self, ch: Channel) -> bool:
        """A public channel is in everyone's gossip once its funding has ANNOUNCE_DEPTH confirmations."""
        return not ch.private and ch.depth(self._height) >= ANNOUNCE_DEPTH

    def fund_wallet(self, node_id: str, sats: int) -> dict:
        """A confirmed on-chain output of `sats` appears in node's listfunds (mines 1 block)."""
        with self._locked():
            node = self._node(node_id)
            addr, spk = self._new_address(node, "bech32")
            _, txid, _ = codec.build_tx([(os.urandom(32).hex(), 0)], [(sats, bytes.fromhex(spk))])
            self.mine(1)
            u = Utxo(txid, 0, sats * 1000, spk, addr, self._height)
            node.utxos.append(u)
            return u.to_json()

    def open_channel(self, a: str, b: str, amount_sat: int, push_msat: int = 0, *,
                     announce: bool = True) -> str:
        """Open a channel a->b, funding a's wallet as needed, and mine it to ANNOUNCE_DEPTH: CHANNELD_NORMAL and,
        if public, announced.  Returns the scid."""
        with self._locked():
            node = self._node(a)
            self._node(b)
            have = sum(u.amount_msat for u in node.utxos if u.status == "confirmed") // 1000
            need = amount_sat + node.feerates.onchain_fee_estimates()["opening_channel_satoshis"]
            if have < need:
                self.fund_wallet(a, need - have)
            ch = self._open(node, b, amount_sat, push_msat, not announce, None, None)
            self.mine(ANNOUNCE_DEPTH)
            return ch.scid

    def balance_msat(self, node_id: str, scid: str) -> int:
        with self._locked():
            return self.chans[scid].balance[node_id]

    def channels(self, node_id: str) -> list[dict]:
        """node's listpeerchannels entries."""
        with self._locked():
            return [self._peerchannel_json(self._node(node_id), ch) for ch in self._node_channels(node_id)]

    def fees_collected_msat(self, node_id: str) -> int:
        with self._locked():
            return self._node(node_id).fees_collected_msat

    def channel_counts(self, node_id: str) -> tuple[int, int, int]:
        """(active, pending, inactive) for getinfo's num_*_channels."""
        with self._locked():
            active = pending = inactive = 0
            for ch in self._node_channels(node_id):
                if ch.state == "CHANNELD_NORMAL":
                    active += 1
                elif ch.state in ("OPENINGD", "CHANNELD_AWAITING_LOCKIN"):
                    pending += 1
                else:
                    inactive += 1
            return active, pending, inactive

    def num_channels(self, node_id: str, peer_id: str) -> int:
        """Channels between the two (for listpeers' num_channels)."""
        with self._locked():
            return sum(1 for ch in self._node_channels(node_id) if ch.other(node_id) == peer_id)

    # ------------------------------------------------------------ helpers

    def _node_channels(self, node_id: str) -> list[Channel]:
        return [ch for ch in self.chans.values() if node_id in ch.ends()]

    def _usable(self, ch: Channel) -> bool:
        """Can the channel carry payments (and is it `active` in gossip)?"""
        if ch.state != "CHANNELD_NORMAL":
            return False
        return not self.strict_connectivity or self.is_connected(ch.opener, ch.peer)

    def _new_address(self, node: NodeState, kind: str) -> tuple[str, str]:
        if kind == "p2tr":
            prog, ver = coincurve.PrivateKey().public_key.format()[1:], 1
        else:
            prog, ver = codec.sha256(os.urandom(32))[:20], 0
        addr = codec.segwit_address(self.network, ver, prog)
        spk = codec.segwit_scriptpubkey(ver, prog).hex()
        node.addresses[addr] = spk
        return addr, spk

    def _add_utxo(self, node: NodeState, txid: str, output: int, sats: int, spk: str, addr: str) -> Utxo:
        u = Utxo(txid, output, sats * 1000, spk, addr, self._height)
        node.utxos.append(u)
        return u

    def _state_change(self, ch: Channel, new_state: str, cause: dict[str, str], message: str) -> None:
        old = ch.state
        ch.state = new_state
        ts = iso_time(self._now())
        for nid in ch.ends():
            entry = {"timestamp": ts, "old_state": old, "new_state": new_state, "cause": cause[nid],
                     "message": message}
            ch.state_changes.setdefault(nid, []).append(entry)
            self._notify(nid, "channel_state_changed", {
                "peer_id": ch.other(nid), "channel_id": ch.channel_id, "short_channel_id": ch.scid,
                "timestamp": ts, "old_state": old, "new_state": new_state, "cause": cause[nid],
                "message": message})

    # ------------------------------------------------------------ RPC: wallet

    def rpc_newaddr(self, node: NodeState, addresstype: str = "p2tr") -> dict:
        if addresstype not in ("bech32", "p2tr", "all"):
            raise RpcError(INVALID_PARAMS,
                           f"'addresstype' should be 'p2tr', 'bech32', or 'all', not '{addresstype}'")
        out = {}
        if addresstype in ("bech32", "all"):
            out["bech32"] = self._new_address(node, "bech32")[0]
        if addresstype in ("p2tr", "all"):
            out["p2tr"] = self._new_address(node, "p2tr")[0]
        return out

    def rpc_listfunds(self, node: NodeState, spent: Any = False) -> dict:
        spent = parse_bool(spent, "spent")
        outputs = [u.to_json() for u in node.utxos if spent or u.status != "spent"]
        chans = []
        for ch in self._node_channels(node.node_id):
            if ch.state == "CLOSED":
                continue
            entry = {"peer_id": ch.other(node.node_id),
                     "connected": self.is_connected(node.node_id, ch.other(node.node_id)),
                     "state": ch.state, "channel_id": ch.channel_id, "short_channel_id": ch.scid,
                     "our_amount_msat": ch.balance[node.node_id], "amount_msat": ch.capacity_msat,
                     "funding_txid": ch.funding_txid, "funding_output": ch.funding_outnum}
            if ch.scid is None:
                del entry["short_channel_id"]
            chans.append(entry)
        return {"outputs": outputs, "channels": chans}

    def rpc_feerates(self, node: NodeState, style: Any) -> dict:
        if style not in ("perkw", "perkb"):
            raise RpcError(INVALID_PARAMS, f"'style' should be 'perkw' or 'perkb', not '{token(style)}'")
        return node.feerates.to_json(style)
