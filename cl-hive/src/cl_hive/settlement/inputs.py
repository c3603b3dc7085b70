"""The settlement's inputs for a week: one contribution per participant, computed only from signed fee reports,
so every node holding the same reports computes the same contributions (and so the same plan).

Participants: every node in our roster (members and neophytes, as the monolith) — at most 100 (the monolith's
limit on a proposal).  For each participant M, from the newest report each node sent for the week:

* ``fees_earned``, ``rebalance_costs``, ``forward_count``: M's own report (0 without one);
* ``capacity``: the hive channels M has, each counted at the capacity **both ends** report for it:
  for every other participant N, ``min(M's figure for N, N's figure for M)`` when both sent our (v2) reports;
  when only one side did (the other is a monolith node, whose reports carry no channel figures, or sent no report
  at all), that side's figure; otherwise 0.  A member cannot inflate its capacity with a channel another cl-hive
  member does not confirm (a channel to a member that cannot confirm is taken on the reporter's word);
* ``uptime``: the median (lower median) of what the *other* participants observed of M during the week and put
  in their v2 reports; 100 when nobody reported an observation.  No node's local measurement enters the hash
  unless it signed it and everyone holds it (the monolith hashed each voter's own local uptime: F9).
"""
from __future__ import annotations

from statistics import median_low
from typing import Any

from .plan import MAX_PARTICIPANTS, Contribution


def participants(members: Any) -> list[str]:
    return sorted(n for n in members.ids() if not members.is_banned(n))[:MAX_PARTICIPANTS]


def contributions(period_reports: dict[str, dict[str, Any]], nodes: list[str]) -> list[Contribution]:
    v2 = {n for n in nodes if period_reports.get(n, {}).get("version") == 2}

    def claim(a: str, b: str) -> int:
        return int(period_reports[a]["hive_channels"].get(b, 0)) if a in v2 else 0

    out = []
    for m in nodes:
        r = period_reports.get(m, {})
        capacity = 0
        for n in nodes:
            if n == m:
                continue
            if m in v2 and n in v2:
                capacity += min(claim(m, n), claim(n, m))
            elif m in v2:
                capacity += claim(m, n)
            elif n in v2:
                capacity += claim(n, m)
        seen = [int(period_reports[n]["observed_uptime"][m]) for n in nodes
                if n != m and n in v2 and m in period_reports[n]["observed_uptime"]]
        out.append(Contribution(peer_id=m, fees_earned=int(r.get("fees_earned_sats", 0)),
                                rebalance_costs=int(r.get("rebalance_costs_sats", 0)), capacity=capacity,
                                uptime=median_low(seen) if seen else 100,
                                forward_count=int(r.get("forward_count", 0))))
    return out


def report_refs(period_reports: dict[str, dict[str, Any]], nodes: list[str]) -> dict[str, Any]:
    """Which report of each participant the contributions came from (for operators comparing two nodes' views)."""
    return {n: ({"version": period_reports[n]["version"], "seq": period_reports[n]["seq"],
                 "final": period_reports[n]["final"]} if n in period_reports else None) for n in nodes}


__all__ = ["contributions", "participants", "report_refs"]
