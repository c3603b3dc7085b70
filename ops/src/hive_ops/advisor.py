"""What an advisor can reach, checked against what each method can do.

An advisor (cl-hive-comms' client half) can call a method only if it is on comms' allowlist
(``cl_hive_comms.danger.ALLOWLIST``) or the operator adds it with a policy override; an override can never add a
method ``danger.is_forbidden`` names, nor one ``danger.moves_funds`` names.  So a method is

* **allowlisted**: reachable as the built-in rule says;
* **overridable**: not allowlisted, yet an operator could open it (neither forbidden nor moving funds);
* **closed**: forbidden, or moving funds and not allowlisted.

Each method's class comes from the reviewed lists (``ops/reviewed/rpc-surface.txt`` for the Hive plugins,
``ops/reviewed/lightningd-methods.txt`` for lightningd and its built-in plugins).  The rule the plan sets: no
method an advisor can reach signs, exports secrets or moves funds outside the payment engine.  Here:

* ``signs``, ``secret``, ``control`` (stops the node, installs or runs code, changes its configuration): closed;
* ``pays``: closed, except an allowlisted rule that comms executes itself (``internal``: the payment engine,
  with the advisor's daily limit);
* ``channel-funds``: never overridable; allowlisted only as a built-in rule that scores its amount (the funds
  stay the node's: the rules refuse ``destination``, ``close_to``, ``push_msat``);
* ``read``, ``state``: may be reachable.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .surface import CLASSES as KNOWN_CLASSES

CLOSED_CLASSES = ("signs", "secret", "control")
FUND_CLASSES = ("pays", "channel-funds")
NEVER_FOR_ADVISORS = ("destination", "close_to", "push_msat")


def read_lightningd(path: Path) -> tuple[str, dict[str, str]]:
    """(version line, {method: class}) of the reviewed lightningd list."""
    version, classes = "", {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if " | " not in line:
            version = line
            continue
        name, _, klass = line.partition(" | ")
        classes[name.strip()] = klass.strip()
    return version, classes


def allowlist_now() -> dict[str, dict[str, Any]]:
    """comms' built-in allowlist as the code has it."""
    from cl_hive_comms import danger
    return {m: {"group": r.group, "params": sorted(r.params), "internal": r.internal,
                "danger_without_params": r.danger({}), "moves_funds": danger.moves_funds(m)}
            for m, r in sorted(danger.ALLOWLIST.items())}


def allowlist_diff(reviewed_path: Path) -> list[str]:
    reviewed = json.loads(reviewed_path.read_text())["allowlist"]
    now = allowlist_now()
    lines = [f"+ {m}: {now[m]}" for m in now if m not in reviewed]
    lines += [f"- {m}: {reviewed[m]}" for m in reviewed if m not in now]
    lines += [f"~ {m}: {now[m]} (reviewed: {reviewed[m]})" for m in now if m in reviewed and now[m] != reviewed[m]]
    return lines


def reach(method: str) -> str:
    from cl_hive_comms import danger
    if method in danger.ALLOWLIST:
        return "allowlisted"
    if danger.is_forbidden(method) or danger.moves_funds(method):
        return "closed"
    return "overridable"


def problems(classes: dict[str, str]) -> list[str]:
    """Every method an advisor could reach that does what the rule above forbids (empty: none)."""
    from cl_hive_comms import danger
    found = []
    for method, klass in sorted(classes.items()):
        how = reach(method)
        rule = danger.ALLOWLIST.get(method)
        if klass not in KNOWN_CLASSES:
            found.append(f"{method}: class {klass!r} not reviewed")
        elif klass in CLOSED_CLASSES and how != "closed":
            found.append(f"{method} ({klass}) is {how} for advisors; it must be forbidden (danger.is_forbidden)")
        elif klass == "pays" and how == "overridable":
            found.append(f"{method} (pays) could be opened to advisors by an override; it must be in "
                         "danger.moves_funds or forbidden")
        elif klass == "pays" and rule is not None and not rule.internal:
            found.append(f"{method} (pays) is allowlisted without the payment engine")
        elif klass == "channel-funds" and how == "overridable":
            found.append(f"{method} (channel-funds) could be opened to advisors by an override; it must be in "
                         "danger.moves_funds or forbidden")
        elif klass == "channel-funds" and rule is not None and set(rule.params) & set(NEVER_FOR_ADVISORS):
            found.append(f"{method} is allowlisted with {sorted(set(rule.params) & set(NEVER_FOR_ADVISORS))}: "
                         "funds could leave the node")
    return found


def allowlisted_unknown(classes: dict[str, str]) -> list[str]:
    """Allowlisted methods that exist in none of the reviewed lists (lightningd answers them "Unknown command";
    they can do nothing, which the gate reports as a note)."""
    from cl_hive_comms import danger
    return sorted(m for m in danger.ALLOWLIST if m not in classes)


def summary(classes: dict[str, str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for method in classes:
        counts[reach(method)] = counts.get(reach(method), 0) + 1
    return counts
