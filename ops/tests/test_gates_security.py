"""Gate C's live checks, also as tests: the plugins' run-time RPC surface is the reviewed one, the advisor allowlist
is the reviewed one, and no method an advisor can reach signs, exports secrets or moves funds outside the payment
engine."""
from __future__ import annotations

from pathlib import Path

import pytest

from hive_ops import advisor, surface

ROOT = Path(__file__).resolve().parents[2]
REVIEWED = ROOT / "ops" / "reviewed"


def reviewed_classes() -> dict[str, str]:
    _, lightningd = advisor.read_lightningd(REVIEWED / "lightningd-methods.txt")
    ours = {i.name: i.klass or "?" for i in surface.read_reviewed(REVIEWED / "rpc-surface.txt")
            if i.kind == "method"}
    return {**lightningd, **ours}


def test_the_plugins_register_exactly_the_reviewed_surface():
    live = surface.live_surface()
    assert surface.diff(surface.read_reviewed(REVIEWED / "rpc-surface.txt"), live) == []
    methods = [i for i in surface.read_reviewed(REVIEWED / "rpc-surface.txt") if i.kind == "method"]
    assert all(i.klass in advisor.KNOWN_CLASSES for i in methods), [i.name for i in methods
                                                                     if i.klass not in advisor.KNOWN_CLASSES]


def test_a_new_method_shows_up_as_a_difference_and_unreviewed(tmp_path):
    reviewed = tmp_path / "surface.txt"
    live = surface.live_surface()
    surface.write_reviewed(reviewed, live[1:])                  # as if the first method were new
    assert surface.diff(surface.read_reviewed(reviewed), live) == [f"+ {live[0].line(False)}"]
    surface.write_reviewed(reviewed, live)
    fresh = {i.key: i.klass for i in surface.read_reviewed(reviewed)}
    assert fresh[live[0].key] == surface.UNREVIEWED


def test_the_advisor_allowlist_is_the_reviewed_one():
    assert advisor.allowlist_diff(REVIEWED / "advisor-allowlist.json") == []


def test_no_method_an_advisor_can_reach_signs_exports_secrets_or_moves_funds_outside_the_engine():
    assert advisor.problems(reviewed_classes()) == []


@pytest.mark.parametrize("method, klass, problem", [
    ("frobnicate", "pays", "could be opened to advisors by an override"),
    ("frobnicate", "channel-funds", "could be opened to advisors by an override"),
    ("frobnicate", "secret", "is overridable for advisors; it must be forbidden"),
    ("getinfo", "signs", "is allowlisted for advisors; it must be forbidden"),
    ("setchannel", "pays", "is allowlisted without the payment engine"),
    ("frobnicate", "?", "not reviewed"),
])
def test_a_hole_is_reported(method, klass, problem):
    found = advisor.problems({method: klass})
    assert len(found) == 1 and problem in found[0]


def test_the_engine_and_the_scored_channel_rules_are_what_advisors_reach_of_the_fund_movers():
    classes = reviewed_classes()
    reachable = {m: k for m, k in classes.items() if advisor.reach(m) == "allowlisted"}
    assert {m for m, k in reachable.items() if k in advisor.FUND_CLASSES} == {"pay", "fundchannel", "close"}
    assert not {m for m, k in classes.items() if k in advisor.CLOSED_CLASSES and advisor.reach(m) != "closed"}
