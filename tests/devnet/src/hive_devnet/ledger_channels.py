"""Channel lifecycle and gossip for the Ledger: opening (fundchannel / open_channel), close,
listpeerchannels, listchannels, listnodes and setchannel.

Opening is immediate: the funding transaction (a real serialization with dummy witnesses) is mined in
the next block (txindex 1, so scid = `{height+1}x1x{outnum}`), five more blocks follow and the channel is
CHANNELD_NORMAL at once (no lockin wait). channel_id follows BOLT 2 (funding txid in wire order with the
output index xored into the last two bytes). Close is mutual when the peers are connected, unilateral
otherwise (no unilateraltimeout wait); the opener pays the fee from the transcript's
onchain_fee_estimates, outputs appear confirmed in both wallets and the channel ends in ONCHAIN.
"""
from __future__ import annotations

import base64
import os
from typing import TYPE_CHECKING, Any

import coincurve

from . import codec
from .errors import INVALID_PARAMS, LIGHTNINGD, RpcError
from .ledger_model import (
    CHANNEL_FEATURES,
    CHANNEL_TYPE,
    CONNECT_NO_KNOWN_ADDRESS,
    DEFAULT_CLTV_DELTA,
    DEFAULT_FEE_BASE_MSAT,
    DEFAULT_FEE_PPM,
    DUST_LIMIT_SAT,
    FUND_CANNOT_AFFORD,
    FUNDING_CONFIRMS,
    NODE_FEATURES,
    SCID_RE,
    U64_MAX,
    Channel,
    NodeState,
    PendingTx,
    Policy,
    SideStats,
    Utxo,
    badparam,
    is_node_id,
    iso_time,
    parse_amount_msat,
    parse_amount_sat,
    parse_bool,
    parse_int,
)

if TYPE_CHECKING:
    from .ledger import Ledger

# states in which a channel still exists between the peers (setchannel / close accept them)
OPEN_STATES = ("CHANNELD_NORMAL", "CHANNELD_AWAITING_LOCKIN", "CHANNELD_SHUTTING_DOWN", "CLOSINGD_SIGEXCHANGE")


class ChannelsMixin:
    def _random_alias(self: Ledger) -> str:
        r = os.urandom(8)
        return f"{int.from_bytes(r[:3], 'big')}x{int.from_bytes(r[3:6], 'big')}x{int.from_bytes(r[6:], 'big')}"

    def _open(self: Ledger, node: NodeState, peer: str, amount_sat: int | None, push_msat: int, private: bool,
              utxo_ids: list[str] | None, reserve_sat: int | None) -> Channel:
        """Fund and open a channel from `node` to `peer` (amount None = all)."""
        opening_fee = node.feerates.onchain_fee_estimates()["opening_channel_satoshis"]
        avail = [u for u in node.utxos if u.status == "confirmed" and not u.reserved]
        if utxo_ids is not None:
            want = set(utxo_ids)
            avail = [u for u in avail if f"{u.txid}:{u.output}" in want]
        chosen: list[Utxo] = []
        total = 0
        if amount_sat is None:
            chosen = avail
            total = sum(u.amount_msat for u in chosen) // 1000
            amount_sat = total - opening_fee
            if amount_sat < DUST_LIMIT_SAT:
                raise RpcError(FUND_CANNOT_AFFORD,
                               f"Could not afford all using all {len(avail)} available UTXOs: all short")
        else:
            for u in sorted(avail, key=lambda u: -u.amount_msat):
                if total >= amount_sat + opening_fee:
                    break
                chosen.append(u)
                total += u.amount_msat // 1000
            if total < amount_sat + opening_fee:
                short = amount_sat + opening_fee - total
                raise RpcError(FUND_CANNOT_AFFORD, f"Could not afford {amount_sat}sat using all "
                                                   f"{len(avail)} available UTXOs: {short}sat short")
        if push_msat > amount_sat * 1000:
            raise RpcError(INVALID_PARAMS, "push_msat: must be less than channel amount")
        funding_spk = codec.segwit_scriptpubkey(0, codec.sha256(os.urandom(32)))
        outputs = [(amount_sat, funding_spk)]
        change = total - amount_sat - opening_fee
        change_addr = change_spk = ""
        if change >= DUST_LIMIT_SAT:
            change_addr, change_spk = self._new_address(node, "p2tr")
            outputs.append((change, bytes.fromhex(change_spk)))
        dummy_sig = [bytes(71), coincurve.PrivateKey(node.privkey).public_key.format()]
        raw, txid, unsigned = codec.build_tx([(u.txid, u.output) for u in chosen], outputs,
                                             [dummy_sig] * len(chosen))
        # in the mempool until a block is mined: inputs reserved, change unconfirmed, no short_channel_id
        for u in chosen:
            u.reserved, u.reserved_to_block = True, self.block_height + 2016
        pending = PendingTx(txid, chosen, [])
        if change_spk:
            u = self._add_utxo(node, txid, 1, change, change_spk, change_addr)
            u.status, u.blockheight = "unconfirmed", None
            pending.outputs.append(u)
        # BOLT 2: channel_id = funding_txid (wire order) XOR funding_output_index in the last 2 bytes
        outnum = 0
        cid = bytearray(bytes.fromhex(txid)[::-1])
        cid[30] ^= outnum >> 8
        cid[31] ^= outnum & 0xFF
        now = int(self._now())
        cap_msat = amount_sat * 1000
        reserve = max(DUST_LIMIT_SAT, amount_sat // 100) * 1000 if reserve_sat is None else reserve_sat * 1000
        pol = {n: Policy(DEFAULT_FEE_BASE_MSAT, DEFAULT_FEE_PPM, DEFAULT_CLTV_DELTA, 0, cap_msat - reserve, now)
               for n in (node.node_id, peer)}
        ch = Channel(
            scid=None, channel_id=bytes(cid).hex(), funding_txid=txid, funding_outnum=outnum,
            funding_psbt=base64.b64encode(
                codec.psbt_v0(unsigned, len(chosen), len(outputs))).decode(),
            capacity_sat=amount_sat, opener=node.node_id, peer=peer, push_msat=push_msat, private=private,
            balance={node.node_id: cap_msat - push_msat, peer: push_msat}, policy=pol,
            reserve_msat={node.node_id: reserve, peer: reserve},
            aliases={n: self._random_alias() for n in (node.node_id, peer)},
            close_to={n: self._close_to(n) for n in (node.node_id, peer)},
            scratch_txid={n: os.urandom(32).hex() for n in (node.node_id, peer)},
            state="CHANNELD_AWAITING_LOCKIN",
            stats={n: SideStats() for n in (node.node_id, peer)},
            next_htlc_id={node.node_id: 0, peer: 0}, funding_tx=raw,
            feerate_perkw=node.feerates.perkw()["unilateral_anchor_close"])
        self.chans[ch.channel_id] = ch
        pending.channel = ch
        self._mempool.append(pending)
        # lightningd: both sides hear of the new channel (no old_state, no scid yet; not in state_changes), then
        # the accepter gets channel_opened
        ts = iso_time(self._now())
        for nid, cause in ((node.node_id, "user"), (peer, "remote")):
            self._notify(nid, "channel_state_changed", {
                "peer_id": ch.other(nid), "channel_id": ch.channel_id, "timestamp": ts,
                "new_state": "CHANNELD_AWAITING_LOCKIN", "cause": cause, "message": "new channel opened"})
        self._notify(peer, "channel_opened", {"id": node.node_id, "funding_msat": cap_msat,
                                              "funding_txid": txid, "channel_ready": False})
        return ch

    def _close_to(self: Ledger, node_id: str) -> tuple[str, str]:
        return self._new_address(self.nodes[node_id], "p2tr")

    def _find_channel(self: Ledger, node: NodeState, name: str, value: Any, *, closeable: bool) -> list[Channel]:
        """lightningd's param_channel_or_peer / param_channel_or_all (without 'all')."""
        mine = self._node_channels(node.node_id)
        ok_states = OPEN_STATES
        if is_node_id(value) and any(ch.other(node.node_id) == value for ch in mine):
            found = [ch for ch in mine if ch.other(node.node_id) == value and ch.state in ok_states]
            if not found:
                if closeable:
                    raise RpcError(LIGHTNINGD, "Peer has no active channel")
                raise RpcError(LIGHTNINGD, "Could not find any active channels of peer with that id")
            if closeable and len(found) > 1:
                raise RpcError(LIGHTNINGD, "Peer has multiple channels: use channel_id or short_channel_id")
            return found
        if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdefABCDEF" for c in value):
            found = [ch for ch in mine if ch.channel_id == value.lower() and ch.state in ok_states]
            if not found:
                raise badparam(name, "Channel id not found", value)
        elif isinstance(value, str) and SCID_RE.match(value):
            found = [ch for ch in mine if ch.scid == value]
            if not found:
                raise badparam(name, "Short channel id not found", value)
        else:
            raise badparam(name, "should be a channel ID or short channel ID", value)
        if found[0].state not in ok_states:
            raise badparam(name, f"Channel in state {found[0].state}", value)
        return found

    # ------------------------------------------------------------ RPC: channels

    def rpc_fundchannel(self: Ledger, node: NodeState, id: Any, amount: Any, feerate: Any = None, announce: Any = True,
                        minconf: Any = 1, utxos: Any = None, push_msat: Any = 0, close_to: Any = None,
                        request_amt: Any = None, compact_lease: Any = None, mindepth: Any = None,
                        reserve: Any = None, channel_type: Any = None) -> dict:
        if not is_node_id(id):
            raise badparam("id", "should be a node id", id)
        amount_sat = parse_amount_sat(amount, "amount", allow_all=True)
        if amount_sat is not None and amount_sat < DUST_LIMIT_SAT:
            raise badparam("amount", "output would be dust", amount)
        push = parse_amount_msat(push_msat, "push_msat")
        private = not parse_bool(announce, "announce")
        parse_int(minconf, "minconf")
        reserve_sat = parse_amount_sat(reserve, "reserve") if reserve is not None else None
        if utxos is not None and not isinstance(utxos, list):
            raise badparam("utxos", "should be an array", utxos)
        if request_amt is not None and compact_lease is None:
            raise badparam("request_amt", "Must pass in 'compact_lease' if requesting funds from peer",
                           request_amt)
        if id == node.node_id or id not in self.nodes or not self.is_connected(node.node_id, id):
            raise RpcError(CONNECT_NO_KNOWN_ADDRESS, "Unable to connect, no address known for peer")
        proposed, peer_rates = node.feerates.perkw()["unilateral_anchor_close"], self.nodes[id].feerates.perkw()
        if not peer_rates["min_acceptable"] <= proposed <= peer_rates["max_acceptable"]:
            # the peer's fundchannel_start answer: lightningd relays its ERROR and opens nothing
            bound = ("below minimum", peer_rates["min_acceptable"]) if proposed < peer_rates["min_acceptable"] \
                else ("above maximum", peer_rates["max_acceptable"])
            raise RpcError(-1, f"They sent ERROR channel {os.urandom(32).hex()}: You gave bad parameters: "
                               f"feerate_per_kw {proposed} {bound[0]} {bound[1]}",
                           {"id": id, "method": "fundchannel_start"})
        ch = self._open(node, id, amount_sat, push, private, utxos, reserve_sat)
        return {"tx": ch.funding_tx, "txid": ch.funding_txid, "channel_id": ch.channel_id,
                "channel_type": {"bits": list(CHANNEL_TYPE["bits"]), "names": list(CHANNEL_TYPE["names"])},
                "outnum": ch.funding_outnum}

    def rpc_close(self: Ledger, node: NodeState, id: Any, unilateraltimeout: Any = None, destination: Any = None,
                  fee_negotiation_step: Any = None, wrong_funding: Any = None, force_lease_closed: Any = None,
                  feerange: Any = None) -> dict:
        (ch,) = self._find_channel(node, "id", id, closeable=True)
        me, peer = node.node_id, ch.other(node.node_id)
        mutual = self.is_connected(me, peer)
        dest_spk = None
        if destination is not None:
            try:
                if not isinstance(destination, str):
                    raise ValueError
                hrp, data, _ = codec.bech32_decode(destination)
                if hrp != codec.ADDRESS_HRP[self.network] or not data:
                    raise ValueError
                dest_spk = codec.segwit_scriptpubkey(
                    data[0], bytes(codec.convertbits(data[1:], 5, 8, False))).hex()
            except ValueError:
                raise RpcError(INVALID_PARAMS, "Invalid close destination") from None
        estimates = self.nodes[ch.opener].feerates.onchain_fee_estimates()
        fee = estimates["mutual_close_satoshis" if mutual else "unilateral_close_satoshis"]
        payouts: list[tuple[str, int, str, str]] = []  # node, sats, address, spk
        for nid in ch.ends():
            sats = ch.balance[nid] // 1000 - (fee if nid == ch.opener else 0)
            if sats < DUST_LIMIT_SAT:
                continue
            addr, spk = ch.close_to[nid]
            if nid == me and dest_spk is not None:
                addr, spk = destination, dest_spk
            payouts.append((nid, sats, addr, spk))
        raw, txid, _ = codec.build_tx([(ch.funding_txid, ch.funding_outnum)],
                                      [(s, bytes.fromhex(spk)) for _, s, _, spk in payouts],
                                      [[b"", bytes(71), bytes(71), bytes(71)]])
        cause = {me: "user", peer: "remote"}
        if mutual:
            steps = [("CHANNELD_SHUTTING_DOWN", "Start closingd"), ("CLOSINGD_SIGEXCHANGE", "Start closingd"),
                     ("CLOSINGD_COMPLETE", "Closing complete")]
        else:
            steps = [("AWAITING_UNILATERAL", "Forcibly closed by `close` command timeout")]
        for state, msg in steps:
            self._state_change(ch, state, cause, msg)
        self.mine(1)
        for i, (nid, sats, addr, spk) in enumerate(payouts):
            if addr in self.nodes[nid].addresses:
                self._add_utxo(self.nodes[nid], txid, i, sats, spk, addr)
        onchain = {me: "onchain", peer: "onchain"}
        self._state_change(ch, "FUNDING_SPEND_SEEN", onchain, "Onchain funding spend")
        self._state_change(ch, "ONCHAIN", onchain, "Onchain init reply")
        for nid in ch.ends():
            ch.balance[nid] = 0
        ch.closer, ch.close_txid = me, txid
        return {"type": "mutual" if mutual else "unilateral", "txs": [raw], "txids": [txid]}

    def _peerchannel_json(self: Ledger, node: NodeState, ch: Channel) -> dict:
        me, peer = node.node_id, ch.other(node.node_id)
        connected = self.is_connected(me, peer)
        direction = 0 if bytes.fromhex(me) < bytes.fromhex(peer) else 1
        st = ch.stats[me]
        normal = ch.state == "CHANNELD_NORMAL"
        locking = ch.state == "CHANNELD_AWAITING_LOCKIN"     # the peer's channel_ready not yet received
        is_opener = me == ch.opener
        out: dict = {
            "peer_id": peer, "peer_connected": connected, "reestablished": connected and normal,
            "channel_type": {"bits": list(CHANNEL_TYPE["bits"]), "names": list(CHANNEL_TYPE["names"])},
            "ignore_fee_limits": ch.policy[me].ignore_fee_limits,
            "updates": {"local": ch.policy[me].to_json(), "remote": ch.policy[peer].to_json()},
            "state": ch.state, "scratch_txid": ch.scratch_txid[me], "last_tx_fee_msat": 1735000,
            "lost_state": False, "feerate": {"perkw": ch.feerate_perkw, "perkb": ch.feerate_perkw * 4},
            "owner": "channeld" if normal or locking else ("onchaind" if ch.state == "ONCHAIN" else "closingd"),
            "short_channel_id": ch.scid, "direction": direction, "channel_id": ch.channel_id,
            "funding_txid": ch.funding_txid, "funding_outnum": ch.funding_outnum,
            "close_to_addr": ch.close_to[me][0], "close_to": ch.close_to[me][1],
            "private": ch.private, "opener": "local" if is_opener else "remote",
            "alias": {"local": ch.aliases[me], "remote": ch.aliases[peer]},
            "features": list(CHANNEL_FEATURES),
            "funding": {"local_funds_msat": ch.capacity_msat if is_opener else 0,
                        "remote_funds_msat": 0 if is_opener else ch.capacity_msat,
                        "pushed_msat": ch.push_msat, "psbt": ch.funding_psbt, "withheld": False},
            "to_us_msat": ch.balance[me], "min_to_us_msat": ch.balance[me], "max_to_us_msat": ch.balance[me],
            "total_msat": ch.capacity_msat,
            "fee_base_msat": ch.policy[me].fee_base_msat,
            "fee_proportional_millionths": ch.policy[me].fee_ppm,
            "dust_limit_msat": DUST_LIMIT_SAT * 1000,
            "their_max_htlc_value_in_flight_msat": U64_MAX, "our_max_htlc_value_in_flight_msat": U64_MAX,
            "their_reserve_msat": ch.reserve_msat[peer], "our_reserve_msat": ch.reserve_msat[me],
            "spendable_msat": ch.spendable(me), "receivable_msat": ch.spendable(peer),
            "minimum_htlc_in_msat": ch.policy[peer].htlc_min, "minimum_htlc_out_msat": ch.policy[me].htlc_min,
            "maximum_htlc_out_msat": ch.policy[me].htlc_max,
            "their_to_self_delay": 6, "our_to_self_delay": 6, "max_accepted_htlcs": 483,
            "state_changes": list(ch.state_changes.get(me, [])),
            "status": [f"{ch.state}:Channel ready for use." if normal else
                       f"{ch.state}:Funding needs {FUNDING_CONFIRMS - ch.depth(self.block_height)} more "
                       "confirmations to be ready." if locking else f"{ch.state}:Closing"],
            **vars(st), "htlcs": [],
        }
        if ch.close_txid and ch.closer:
            out["closer"] = "local" if ch.closer == me else "remote"
        if not (normal or locking):
            del out["reestablished"]
        if ch.scid is None:                         # lightningd: neither the scid nor anything from the peer yet
            del out["short_channel_id"]
        if locking:
            del out["updates"]["remote"], out["alias"]["remote"]
        return out

    def rpc_listpeerchannels(self: Ledger, node: NodeState, id: Any = None, short_channel_id: Any = None,
                             channel_id: Any = None) -> dict:
        if id is not None and not is_node_id(id):
            raise badparam("id", "should be a node id", id)
        if short_channel_id is not None and not (isinstance(short_channel_id, str)
                                                 and SCID_RE.match(short_channel_id)):
            raise badparam("short_channel_id", "should be a short_channel_id", short_channel_id)
        res = []
        for ch in self._node_channels(node.node_id):
            if id is not None and ch.other(node.node_id) != id:
                continue
            if short_channel_id is not None and ch.scid != short_channel_id:
                continue
            if channel_id is not None and ch.channel_id != str(channel_id).lower():
                continue
            res.append(self._peerchannel_json(node, ch))
        return {"channels": res}

    def _gossip_channels(self: Ledger, viewer: str) -> list[Channel]:
        """Channels in viewer's gossip: announced open channels (six confirmations), plus viewer's own private
        ones."""
        return [ch for ch in self.chans.values() if ch.state in OPEN_STATES and ch.scid is not None
                and (self.announced(ch) or (ch.private and viewer in ch.ends()))]

    def rpc_listchannels(self: Ledger, node: NodeState, short_channel_id: Any = None, source: Any = None,
                         destination: Any = None) -> dict:
        if short_channel_id is not None and not (isinstance(short_channel_id, str)
                                                 and SCID_RE.match(short_channel_id)):
            raise badparam("short_channel_id", "should be a short_channel_id", short_channel_id)
        for name, v in (("source", source), ("destination", destination)):
            if v is not None and not is_node_id(v):
                raise badparam(name, "should be a node id", v)
        res = []
        for ch in self._gossip_channels(node.node_id):
            if short_channel_id is not None and ch.scid != short_channel_id:
                continue
            for src in sorted(ch.ends(), key=bytes.fromhex):
                dst = ch.other(src)
                if (source is not None and src != source) or (destination is not None and dst != destination):
                    continue
                d = 0 if bytes.fromhex(src) < bytes.fromhex(dst) else 1
                active = self._usable(ch)
                p = ch.policy[src]
                res.append({"source": src, "destination": dst, "short_channel_id": ch.scid, "direction": d,
                            "public": not ch.private, "amount_msat": ch.capacity_msat, "message_flags": 1,
                            "channel_flags": d | (0 if active else 2), "active": active,
                            "last_update": p.last_update, "base_fee_millisatoshi": p.fee_base_msat,
                            "fee_per_millionth": p.fee_ppm, "delay": p.cltv_delta,
                            "htlc_minimum_msat": p.htlc_min, "htlc_maximum_msat": p.htlc_max, "features": ""})
        return {"channels": res}

    def rpc_listnodes(self: Ledger, node: NodeState, id: Any = None) -> dict:
        if id is not None and not is_node_id(id):
            raise badparam("id", "should be a pubkey", id)
        public = {n for ch in self.chans.values() if ch.state in OPEN_STATES and self.announced(ch)
                  for n in ch.ends()}
        res = []
        for nid in sorted(public):
            if id is not None and nid != id:
                continue
            n = self.nodes[nid]
            res.append({"nodeid": nid, "alias": n.alias, "color": n.color, "last_timestamp": n.last_timestamp,
                        "features": NODE_FEATURES, "addresses": []})
        return {"nodes": res}

    def rpc_setchannel(self: Ledger, node: NodeState, id: Any, feebase: Any = None, feeppm: Any = None,
                       htlcmin: Any = None, htlcmax: Any = None, enforcedelay: Any = 600,
                       ignorefeelimits: Any = None) -> dict:
        base = parse_amount_msat(feebase, "feebase") if feebase is not None else None
        if base is not None and base >= 1 << 32:
            raise badparam("feebase", "exceeds u32 max", feebase)
        ppm = parse_int(feeppm, "feeppm") if feeppm is not None else None
        hmin = parse_amount_msat(htlcmin, "htlcmin") if htlcmin is not None else None
        hmax = parse_amount_msat(htlcmax, "htlcmax") if htlcmax is not None else None
        parse_int(enforcedelay, "enforcedelay")
        ignore = parse_bool(ignorefeelimits, "ignorefeelimits") if ignorefeelimits is not None else None
        if id == "all":
            chans = [ch for ch in self._node_channels(node.node_id) if ch.state in OPEN_STATES]
        else:
            chans = self._find_channel(node, "id", id, closeable=False)
        if hmin is not None and hmax is not None and hmax < hmin:
            raise RpcError(LIGHTNINGD, "htlcmax cannot be less than htlcmin")
        me = node.node_id
        now = int(self._now())
        res = []
        for ch in chans:
            p = ch.policy[me]
            if base is not None:
                p.fee_base_msat = base
            if ppm is not None:
                p.fee_ppm = ppm
            entry_warn = {}
            if hmin is not None:
                p.htlc_min = hmin
            if hmax is not None:
                limit = ch.capacity_msat - ch.reserve_msat[me]
                if hmax > limit:
                    entry_warn["warning_htlcmax_too_high"] = \
                        f"Set maximum_htlc_out_msat to maximum possible {limit}msat"
                    hmax_eff = limit
                else:
                    hmax_eff = hmax
                p.htlc_max = hmax_eff
            if ignore is not None:
                p.ignore_fee_limits = ignore
            p.last_update = now
            entry = {"peer_id": ch.other(me), "channel_id": ch.channel_id, "short_channel_id": ch.scid,
                     "fee_base_msat": p.fee_base_msat, "fee_proportional_millionths": p.fee_ppm,
                     "minimum_htlc_out_msat": p.htlc_min, "maximum_htlc_out_msat": p.htlc_max,
                     "ignore_fee_limits": p.ignore_fee_limits}
            entry.update(entry_warn)
            res.append(entry)
        return {"channels": res}

