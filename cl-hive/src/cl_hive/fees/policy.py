"""The hive fee policy on channels to hive nodes: zero fees (by default) between members.

* A channel to a **member** gets ``hive-member-fee-base-msat`` / ``hive-member-fee-ppm`` (0 / 0).
* A channel to a **neophyte** follows ``hive-neophyte-fee-policy``: ``normal`` (default: untouched),
  ``hive`` (the member policy) or ``discount:<ppm>`` (the member base fee and <ppm>).
* Before the first override of a channel its current fees are saved in ``hive_saved_fee_policies``; when the peer
  leaves, is removed or banned (or this node leaves the hive) the saved fees are restored and the row dropped.
* Channels to anyone else are never touched, and neither is anything while this node is not in a hive.

While cl-revenue-ops is active, its per-peer policy for these peers is set so that it does not fight the hive policy
(``revenue_policy_bridge``).

Reconciliation is idempotent and runs on a worker: when membership changes, on ``channel_opened`` /
``channel_state_changed``, after startup and every ``RESCAN_SECONDS`` (which also repairs a fee someone changed
by hand on a member channel).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable

from libhive.models import Field

from libhive.amounts import msat_or_zero
from libhive.db import Database
from libhive.rpcparams import Params, validate

from ..governance.audit import AuditLog
from ..governance.common import InvalidOption, int_option, now
from .revenue_policy_bridge import RevenuePolicyBridge, strategy_for

RESCAN_SECONDS = 300.0
ACTIVE_STATES = ("CHANNELD_NORMAL", "CHANNELD_AWAITING_LOCKIN", "DUALOPEND_AWAITING_LOCKIN")
NEOPHYTE_MODES = ("normal", "hive", "discount:<ppm>")


@dataclass(frozen=True)
class Fees:
    name: str
    base_msat: int
    ppm: int


@dataclass(frozen=True)
class FeePolicyConfig:
    member: Fees
    neophyte: Fees | None          # None: neophyte channels keep their own fees
    neophyte_mode: str

    @classmethod
    def from_hive(cls, hive: Any) -> FeePolicyConfig:
        member = Fees("hive", int_option(hive, "member-fee-base-msat", 0, 2**32 - 1),
                      int_option(hive, "member-fee-ppm", 0, 1_000_000))
        raw = str(hive.option("neophyte-fee-policy") or "").strip().lower()
        if raw == "normal":
            return cls(member, None, raw)
        if raw == "hive":
            return cls(member, member, raw)
        if raw.startswith("discount:") and raw[9:].isdigit() and int(raw[9:]) <= 1_000_000:
            return cls(member, Fees("neophyte-discount", member.base_msat, int(raw[9:])), raw)
        raise InvalidOption(f"option hive-neophyte-fee-policy={hive.option('neophyte-fee-policy')!r} must be "
                            f"one of {', '.join(NEOPHYTE_MODES)} (ppm 0-1000000)")


class StatusParams(Params):
    peer_id: str | None = Field(None, pattern=r"^0[23][0-9a-f]{64}$")
    reconcile: bool = False


class FeePolicy:
    def __init__(self, db: Callable[[], Database], rpc: Callable[[], Any], members: Any, audit: AuditLog,
                 config: Callable[[], FeePolicyConfig], our_id: Callable[[], str | None], log: Any = None,
                 bridge: RevenuePolicyBridge | None = None) -> None:
        self._db, self._rpc, self.members, self.audit = db, rpc, members, audit
        self._config, self._our_id, self._log, self.bridge = config, our_id, log, bridge
        self._lock = threading.Lock()

    def desired(self, peer_id: str) -> Fees | None:
        """The policy a channel to ``peer_id`` should carry now, or None (not ours to set)."""
        if self.members.our_tier() is None or self.members.is_banned(peer_id):
            return None
        tier = self.members.tier(peer_id)
        cfg = self._config()
        return cfg.member if tier == "member" else cfg.neophyte if tier == "neophyte" else None

    def saved(self, peer_id: str | None = None) -> dict[str, dict[str, Any]]:
        where, args = ("WHERE peer_id = ?", (peer_id,)) if peer_id else ("", ())
        return {r["channel_id"]: r for r in self._db().query(f"SELECT * FROM hive_saved_fee_policies {where}", args)}

    def reconcile(self, peer_id: str | None = None) -> list[dict[str, Any]]:
        """Bring channels (to ``peer_id``, or all) in line with the policy; returns what changed or failed."""
        if self._our_id() is None:
            return []          # our identity (and so our tier) is not known yet: change nothing
        self._config()         # refuses (InvalidOption) while the options are unusable
        with self._lock:
            params = {"id": peer_id} if peer_id else {}
            channels = self._rpc().call("listpeerchannels", params)["channels"]
            saved = self.saved(peer_id)
            changes = []
            for ch in channels:
                change = self._reconcile_channel(ch, saved.pop(ch.get("channel_id"), None))
                if change:
                    changes.append(change)
            if peer_id is None:
                self._forget(saved)    # rows of channels lightningd no longer lists
            if self.bridge:
                wanted = {ch["peer_id"]: strategy_for(w.base_msat, w.ppm) for ch in channels
                          if ch.get("state") in ACTIVE_STATES and (w := self.desired(ch.get("peer_id", "")))}
                self.bridge.sync(wanted, {peer_id} if peer_id else None)
            return changes

    def _reconcile_channel(self, ch: dict[str, Any], row: dict[str, Any] | None) -> dict[str, Any] | None:
        channel_id, peer = ch.get("channel_id"), ch.get("peer_id", "")
        if not channel_id:
            return None
        if ch.get("state") not in ACTIVE_STATES:
            if row:            # closing or closed: nothing left to restore
                self._forget({channel_id: row})
            return None
        current = (msat_or_zero(ch.get("fee_base_msat")), int(ch.get("fee_proportional_millionths", 0)))
        want = self.desired(peer)
        try:
            if want is not None:
                if current == (want.base_msat, want.ppm) and row and row["applied_policy"] == want.name:
                    return None
                self._apply(ch, want, current, row)
                return {"channel_id": channel_id, "short_channel_id": ch.get("short_channel_id"), "peer_id": peer,
                        "action": "applied", "policy": want.name, "fee_base_msat": want.base_msat,
                        "fee_ppm": want.ppm}
            if row:
                self._restore(ch, row)
                return {"channel_id": channel_id, "short_channel_id": ch.get("short_channel_id"), "peer_id": peer,
                        "action": "restored", "fee_base_msat": row["saved_base_msat"], "fee_ppm": row["saved_ppm"]}
        except Exception as exc:     # one channel's failure must not stop the others; retried next round
            if self._log:
                self._log.warning("fee policy on %s: %s", channel_id, exc)
            return {"channel_id": channel_id, "peer_id": peer, "action": "failed", "error": str(exc)}
        return None

    def _apply(self, ch: dict[str, Any], want: Fees, current: tuple[int, int], row: dict[str, Any] | None) -> None:
        ts = now()
        with self._db().write() as conn:          # save the old fees before overriding them (first time only)
            if row is None:
                conn.execute("INSERT INTO hive_saved_fee_policies (channel_id, peer_id, short_channel_id, "
                             "saved_base_msat, saved_ppm, saved_at, applied_policy, applied_base_msat, applied_ppm, "
                             "applied_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             (ch["channel_id"], ch["peer_id"], ch.get("short_channel_id"), *current, ts,
                              want.name, want.base_msat, want.ppm, ts))
            else:
                conn.execute("UPDATE hive_saved_fee_policies SET applied_policy = ?, applied_base_msat = ?, "
                             "applied_ppm = ?, applied_at = ?, short_channel_id = ? WHERE channel_id = ?",
                             (want.name, want.base_msat, want.ppm, ts, ch.get("short_channel_id"), ch["channel_id"]))
        self._setchannel(ch, want.base_msat, want.ppm)
        self.audit.record("fee_policy_applied", actor="fee-policy", subject=ch["channel_id"], peer_id=ch["peer_id"],
                          short_channel_id=ch.get("short_channel_id"), policy=want.name,
                          fee_base_msat=want.base_msat, fee_ppm=want.ppm, previous={"fee_base_msat": current[0],
                                                                                    "fee_ppm": current[1]})

    def _restore(self, ch: dict[str, Any], row: dict[str, Any]) -> None:
        self._setchannel(ch, row["saved_base_msat"], row["saved_ppm"])
        with self._db().write() as conn:
            conn.execute("DELETE FROM hive_saved_fee_policies WHERE channel_id = ?", (ch["channel_id"],))
            self.audit.record("fee_policy_restored", actor="fee-policy", subject=ch["channel_id"],
                              peer_id=ch["peer_id"], short_channel_id=ch.get("short_channel_id"),
                              fee_base_msat=row["saved_base_msat"], fee_ppm=row["saved_ppm"])

    def _setchannel(self, ch: dict[str, Any], base: int, ppm: int) -> None:
        self._rpc().call("setchannel", {"id": ch.get("short_channel_id") or ch["channel_id"], "feebase": base,
                                        "feeppm": ppm})

    def _forget(self, rows: dict[str, dict[str, Any]]) -> None:
        if not rows:
            return
        with self._db().write() as conn:
            conn.executemany("DELETE FROM hive_saved_fee_policies WHERE channel_id = ?", [(c,) for c in rows])

    def flags(self, channel: dict[str, Any]) -> dict[str, Any]:
        """cl-revenue-ops' view of one channel (hive-get-channel-flags)."""
        peer = channel.get("peer_id", "")
        want = self.desired(peer)
        tier = self.members.tier(peer)
        return {"is_hive_internal": want is not None, "is_hive_member": tier == "member",
                "hive_tier": tier, "fixed_fee": want.ppm if want else None,
                "fixed_fee_base_msat": want.base_msat if want else None,
                "exclude_from_optimization": want is not None, "peer_id": peer or None}

    def status(self, peer_id: str | None) -> dict[str, Any]:
        cfg = self._config()
        channels = self._rpc().call("listpeerchannels", {"id": peer_id} if peer_id else {})["channels"]
        saved = self.saved(peer_id)
        out = []
        for ch in channels:
            peer = ch.get("peer_id", "")
            tier = self.members.tier(peer)
            if tier is None and ch.get("channel_id") not in saved:
                continue          # not a hive channel and nothing of ours to restore
            want = self.desired(peer)
            row = saved.get(ch.get("channel_id"))
            out.append({"peer_id": peer, "tier": tier, "short_channel_id": ch.get("short_channel_id"),
                        "channel_id": ch.get("channel_id"), "state": ch.get("state"),
                        "fee_base_msat": ch.get("fee_base_msat"), "fee_ppm": ch.get("fee_proportional_millionths"),
                        "policy": want.name if want else None,
                        "saved": {"fee_base_msat": row["saved_base_msat"], "fee_ppm": row["saved_ppm"],
                                  "saved_at": row["saved_at"]} if row else None})
        return {"member_policy": {"fee_base_msat": cfg.member.base_msat, "fee_ppm": cfg.member.ppm},
                "neophyte_policy": cfg.neophyte_mode, "channels": out}


def register(hive: Any, members: Any, audit: AuditLog) -> FeePolicy:
    hive.add_option("member-fee-base-msat", 0, "Base fee (msat) on channels to hive members", opt_type="int")
    hive.add_option("member-fee-ppm", 0, "Fee rate (ppm) on channels to hive members", opt_type="int")
    hive.add_option("neophyte-fee-policy", "normal", "Fees on channels to neophytes: normal (untouched), hive "
                    "(the member policy) or discount:<ppm>")
    state: dict[str, Any] = {}

    def config() -> FeePolicyConfig:
        if "error" in state:
            raise InvalidOption(state["error"])
        if "config" not in state:
            raise InvalidOption("fee policy options are not loaded yet (cl-hive is starting)")
        return state["config"]

    bridge = RevenuePolicyBridge(lambda: hive.db, lambda: hive.rpc, hive.log)
    policy = FeePolicy(lambda: hive.db, lambda: hive.rpc, members, audit, config, lambda: hive.node_id, hive.log,
                       bridge)

    def soon(peer_id: str | None = None) -> None:
        """Reconcile on a worker, never on pyln's I/O thread (notifications and roster callbacks land there)."""
        if "config" not in state:
            return
        try:
            hive.workers.submit(lambda: _safely(policy.reconcile, peer_id))
        except RuntimeError:        # stopping
            pass

    def _safely(fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            hive.log.exception("fee policy reconciliation failed")

    def on_member_change(node_id: str, old: str | None, new: str | None, event: str) -> None:
        soon(None if node_id == hive.node_id else node_id)    # our own tier changed: every channel

    def on_channel_opened(plugin: Any, channel_opened: dict[str, Any] | None = None, **kw: Any) -> None:
        peer = (channel_opened or {}).get("id")
        if isinstance(peer, str):
            soon(peer)

    def on_channel_state_changed(plugin: Any, channel_state_changed: dict[str, Any] | None = None, **kw: Any) -> None:
        peer = (channel_state_changed or {}).get("peer_id")
        if isinstance(peer, str):
            soon(peer)

    hive.plugin.add_subscription("channel_opened", on_channel_opened)
    hive.plugin.add_subscription("channel_state_changed", on_channel_state_changed)
    members.on_change(on_member_change)

    @hive.on_init
    def _start() -> None:
        try:
            state["config"] = FeePolicyConfig.from_hive(hive)
        except InvalidOption as exc:
            state["error"] = exc.message
            hive.log.warning("hive fee policy disabled (no member channel is touched): %s", exc.message)
            return

        def first_pass() -> bool:          # as soon as our node id is known (learned right after init)
            if hive.node_id is None:
                return False
            _safely(policy.reconcile)
            return True

        hive.workers.after((0.5, 1, 2, 5, 10, 30, 60), first_pass, "fee-policy-start")
        hive.workers.every(RESCAN_SECONDS, lambda: policy.reconcile(), "fee-policy", first_delay=RESCAN_SECONDS)

    @hive.method("hive-fee-policy", "The hive fee policy and the channels it covers: [peer_id] [reconcile] "
                                    "(reconcile=true applies it now).")
    def hive_fee_policy(peer_id: str | None = None, reconcile: bool | None = None) -> dict[str, Any]:
        p = validate(StatusParams, peer_id=peer_id, reconcile=reconcile)
        config()
        changes = policy.reconcile(p.peer_id) if p.reconcile else None
        out = policy.status(p.peer_id)
        if changes is not None:
            out["changes"] = changes
        return out

    return policy


__all__ = ["FeePolicy", "FeePolicyConfig", "Fees", "register"]
