"""Shared steps of the settlement scenarios: a hive whose members route paid traffic for each other, then the
week ends (the hive clock is moved with ``hive-dev-clock``, regtest only) and the hive settles it."""
from __future__ import annotations

import stat
import sys
from itertools import combinations
from pathlib import Path
from typing import Any

from hive_devnet.fleet import wait_for

from .hive_helpers import join

HOLD = Path(__file__).parent / "plugins" / "hold_invoices.py"
SPY = Path(__file__).parent / "plugins" / "hive_spy.py"

# fast rounds; internal channels carry a real fee (1 %) so that forwarding earns something; weeks settle at once
OPTIONS = {"hive-settlement-check-seconds": 1, "hive-fee-report-interval": 1, "hive-settlement-grace-minutes": 0,
           "hive-member-fee-ppm": 10_000, "hive-member-fee-base-msat": 0, "hive-neophyte-fee-policy": "hive",
           "hive-governance-mode": "failsafe", "hive-failsafe-actions-per-hour": 10,
           "hive-daily-budget-sats": 10_000_000, "hive-settlement-max-fee-ppm": 20_000}
CHANNEL_SATS = 3_000_000


def _executable(source: Path, path: Path) -> str:
    path.write_text(f"#!{sys.executable}\n" + source.read_text())
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def hold_plugin(tmp_path: Path) -> str:
    return _executable(HOLD, tmp_path / "hold-invoices")


def spy_plugin(tmp_path: Path) -> str:
    return _executable(SPY, tmp_path / "hive-spy")


def form(fleet, names: str, options: dict[str, dict[str, Any]] | None = None,
         extra_plugins: dict[str, list[str]] | None = None) -> list:
    """Nodes in a ring of channels (each funds the channel to the next), the first one's hive joined by the others
    with its tickets, every pair connected (the hive's full mesh), each node's offer known to all."""
    nodes = []
    for name in names:
        opts = {**OPTIONS, **(options or {}).get(name, {})}
        plugins = ["cl-hive", *(extra_plugins or {}).get(name, [])]
        nodes.append(fleet.add_node(name, plugins=plugins, options=opts))
    for a, b in zip(nodes, nodes[1:] + nodes[:1]):
        fleet.connect(a, b)
        fleet.open_channel(a, b, CHANNEL_SATS)
    fleet.announce_channels(nodes, len(nodes))
    nodes[0].rpc.call("hive-genesis", {})
    for n in nodes[1:]:
        join(fleet, n, nodes[0])
    mesh(fleet, nodes)
    for n in nodes:
        wait_for(lambda n=n: len(n.rpc.call("hive-members")["members"]) == len(nodes), timeout=60,
                 what=f"{n.name} knows every member")
    for n in nodes:
        n.rpc.call("hive-settlement-generate-offer", {})
    for n in nodes:
        wait_for(lambda n=n: len(n.rpc.call("hive-settlement-list-offers")["offers"]) == len(nodes), timeout=60,
                 what=f"{n.name} holds every member's offer")
    return nodes


def mesh(fleet, nodes) -> None:
    """Connect every pair that is not connected (the hive's full mesh; also after a restart)."""
    for a, b in combinations(nodes, 2):
        if b.node_id not in {p["id"] for p in a.rpc.call("listpeers")["peers"] if p.get("connected")}:
            fleet.connect(a, b)


def route(payer, payee, amount_msat: int) -> dict[str, Any]:
    """A real payment over the channels: an invoice of ``payee`` paid by ``payer`` (routed by lightningd)."""
    label = f"traffic-{payer.name}-{payee.name}-{amount_msat}-{len(payee.rpc.call('listinvoices')['invoices'])}"
    inv = payee.rpc.call("invoice", {"amount_msat": amount_msat, "label": label, "description": "traffic"})
    return payer.rpc.call("pay", {"bolt11": inv["bolt11"], "maxfeepercent": 5})


def fees_counted(node, msat: int) -> None:
    wait_for(lambda: node.rpc.call("hive-contribution", {})["this_week"]["fees_earned_msat"] >= msat, timeout=60,
             what=f"{node.name} counted its forwarding fees")


def end_week(nodes) -> str:
    """Move every node's hive clock just past the end of the current week (+ the closing delay); returns the
    week that just ended."""
    clock = nodes[0].rpc.call("hive-dev-clock", {})
    clock_at(nodes, clock["period_end"] + 90)
    return clock["period"]


def clock_at(nodes, when: int) -> None:
    """Set every node's hive clock to ``when`` (Unix seconds on the hive clock; the real clock keeps running)."""
    clock = nodes[0].rpc.call("hive-dev-clock", {})
    offset = when - (clock["now"] - clock["offset_seconds"])
    for n in nodes:
        n.rpc.call("hive-dev-clock", {"offset_seconds": offset})


def closing_reports(nodes, week: str, timeout: float = 60, count: int | None = None) -> None:
    """Every node holds the closing (final) fee report of the week of each of ``nodes`` (``count`` of them)."""
    for n in nodes:
        def done(n=n) -> bool:
            reports = n.rpc.call("hive-fee-reports", {"period": week})["reports"]
            return sum(1 for r in reports if r["final"]) == (count or len(nodes))
        wait_for(done, timeout=timeout, what=f"{n.name} holds the closing reports of {week}")


def period_status(node, week: str) -> str | None:
    rows = node.rpc.call("hive-settlement-history", {"limit": 20})["settlement_periods"]
    return next((r["status"] for r in rows if r["period"] == week), None)


def settled(nodes, week: str, timeout: float = 120) -> None:
    for n in nodes:
        try:
            wait_for(lambda n=n: period_status(n, week) == "settled", timeout=timeout,
                     what=f"{n.name} sees {week} settled")
        except TimeoutError as exc:        # say where the week stands on that node
            details = n.rpc.call("hive-settlement-period-details", {"period_id": week})
            raise TimeoutError(f"{exc}; {n.name}'s view: {details}") from None


def channel_balance_msat(node) -> int:
    return sum(int(c.get("to_us_msat", 0)) for c in node.rpc.call("listpeerchannels")["channels"]
               if c.get("state") == "CHANNELD_NORMAL")


def settlement_hashes(node) -> set[str]:
    return {p["payment_hash"] for p in node.rpc.call("hive-distributed-settlement-status", {})["payments_in_flight"]}


def routing_effects(nodes, hashes: set[str], since: float) -> dict[str, int]:
    """Per node: fees it earned forwarding since ``since`` (only the settlement's payments move then), minus fees
    it paid sending these payments (msat), as lightningd reports them."""
    out = {}
    for n in nodes:
        earned = sum(int(f["fee_msat"]) for f in n.rpc.call("listforwards", {"status": "settled"})["forwards"]
                     if float(f.get("received_time", 0)) >= since)
        paid = sum(int(p["amount_sent_msat"]) - int(p["amount_msat"])
                   for p in n.rpc.call("listsendpays", {"status": "complete"})["payments"]
                   if p["payment_hash"] in hashes)
        out[n.name] = earned - paid
    return out
