"""Gate C's reviewed list of lightningd's methods is what real lightningd has: `help` on a node with the three
plugins lists exactly those methods and the plugins' own; so the check that no method an advisor can reach signs,
exports secrets or moves funds outside the payment engine (ops/tests/test_gates_security.py, make gates) covers
every method there is."""
from __future__ import annotations

import subprocess
from pathlib import Path

from hive_ops import advisor, surface

import ops_kit as kit

REVIEWED = Path(__file__).resolve().parents[2] / "ops" / "reviewed"


def test_lightningd_has_exactly_the_reviewed_methods(real_fleet):
    node = real_fleet.add_node("n")
    kit.wait_all_active(node)
    version, reviewed = advisor.read_lightningd(REVIEWED / "lightningd-methods.txt")
    running = subprocess.run(["lightningd", "--version"], capture_output=True, text=True).stdout.strip()
    assert version == f"lightningd {running}"
    ours = {i.name for i in surface.read_reviewed(REVIEWED / "rpc-surface.txt") if i.kind == "method"}
    listed = {entry["command"].split()[0] for entry in node.rpc.call("help")["help"]}
    assert listed - ours - set(reviewed) == set(), "lightningd methods nobody reviewed"
    assert set(reviewed) - listed == set(), "reviewed methods lightningd does not have"
    assert ours <= listed
