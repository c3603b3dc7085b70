"""``make gates`` / ``./dev.sh gates``: the plan's four readiness gates, each check with its evidence.

The checks are listed in ``ops/gates.toml`` (what each gate needs and which tests prove it); this module evaluates
them.  Kinds of check:

* ``suite``: every test collected on this tree passed on this tree (``.test-results/``, written by every pytest
  run: ``results.py``), real-lightningd variants included;
* ``tests``: the tests matching ``select`` (globs over test ids) all passed on this tree; a pattern that matches
  no test is ``not found`` (a FAIL); ``realnode = true`` also needs at least one real-lightningd variant among
  them;
* ``docs``: files exist and hold the headings listed;
* ``surface``: the plugins' RPC surface (run time) against ``ops/reviewed/rpc-surface.txt``;
* ``allowlist``: comms' advisor allowlist against ``ops/reviewed/advisor-allowlist.json``;
* ``advisor``: no method an advisor can reach signs, exports secrets or moves funds outside the payment engine
  (``advisor.py``);
* ``runbook-refs``: every status field and log line the runbooks tell an operator to look for exists in the code
  (``runbooks.py``).

A check is PASS, FAIL, or NOT EVALUATED (with the reason: it could not be checked here).  Nothing is PASS that
was not checked.  Exit status: 0 when every check passed, 1 when one failed, 2 when none failed but one could not
be evaluated.
"""
from __future__ import annotations

import argparse
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import advisor, runbooks, surface
from .testrecord import Record
from .tree import source_tree

PASS, FAIL, NOT_EVALUATED = "PASS", "FAIL", "NOT EVALUATED"


@dataclass
class Result:
    status: str
    evidence: list[str] = field(default_factory=list)


@dataclass
class Context:
    root: Path
    record: Record

    def path(self, relative: str) -> Path:
        return self.root / relative


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts)) if ts else "?"


# ---- test-based checks ------------------------------------------------------------------------------------------
def check_suite(ctx: Context, spec: dict[str, Any]) -> Result:
    record = ctx.record
    if record.tree is None:
        return Result(NOT_EVALUATED, ["not a git checkout: test results cannot be tied to this source"])
    collected = record.collected
    if collected.error and not collected.items:
        return Result(FAIL, [collected.error])
    allowed = tuple(spec.get("allowed_skips", ()))
    outcomes = record.outcomes(list(collected.items), allowed)
    runs = record.runs_on_tree()
    evidence = [f"tree {record.tree.label}: {outcomes.passed} of {outcomes.total} collected tests passed on it, "
                f"{outcomes.realnode_passed} of {outcomes.realnode_total} real-lightningd variants"]
    if runs:
        versions = sorted({r["lightningd"] for r in runs if r.get("lightningd")})
        evidence.append(f"{len(runs)} recorded run(s) on this tree, last finished {_when(runs[-1]['finished'])}"
                        + (f"; lightningd {', '.join(versions)}" if versions else ""))
    else:
        evidence.append("no test run recorded on this tree: run ./dev.sh test (or pytest), then make gates")
    if collected.error:
        evidence.append(collected.error)
    if outcomes.by_design:
        ids = outcomes.by_outcome["skipped by design"]
        evidence.append(f"{len(ids)} skipped by design (a reason ops/gates.toml accepts): {', '.join(ids[:5])}")
    evidence += outcomes.problems()
    ok = outcomes.green and not collected.error and outcomes.realnode_total > 0
    if outcomes.green and outcomes.realnode_total == 0:
        evidence.append("no real-lightningd variant was collected")
    return Result(PASS if ok else FAIL, evidence)


def check_tests(ctx: Context, spec: dict[str, Any]) -> Result:
    record = ctx.record
    if record.tree is None:
        return Result(NOT_EVALUATED, ["not a git checkout: test results cannot be tied to this source"])
    ids, missing = record.select(spec["select"])
    evidence = [f"not found: no test matches {pattern}" for pattern in missing]
    if not ids:
        return Result(FAIL, evidence)
    outcomes = record.outcomes(ids, tuple(spec.get("allowed_skips", ())))
    files = sorted({i.split("::")[0] for i in ids})
    evidence.insert(0, f"{outcomes.passed} of {outcomes.total} passed on tree {record.tree.tree[:10]}, "
                       f"{outcomes.realnode_passed} of {outcomes.realnode_total} real-lightningd variants "
                       f"({', '.join(files)})")
    evidence += outcomes.problems(limit=3)
    ok = outcomes.green and not missing
    if spec.get("realnode") and outcomes.realnode_total == 0:
        evidence.append("no real-lightningd variant among them")
        ok = False
    return Result(PASS if ok else FAIL, evidence)


# ---- documents -------------------------------------------------------------------------------------------------
def check_docs(ctx: Context, spec: dict[str, Any]) -> Result:
    evidence, ok = [], True
    for relative, headings in spec["files"].items():
        path = ctx.path(relative)
        if not path.is_file():
            evidence.append(f"{relative}: missing")
            ok = False
            continue
        text = path.read_text()
        absent = [h for h in headings if not any(line.lstrip("#").strip().startswith(h)
                                                for line in text.splitlines() if line.startswith("#"))]
        if absent:
            ok = False
            evidence.append(f"{relative}: no heading {', '.join(repr(a) for a in absent)}")
        else:
            evidence.append(f"{relative}: present, {len(headings)} required section(s) found")
    return Result(PASS if ok else FAIL, evidence)


# ---- security and audit (live) ------------------------------------------------------------------------------------
def check_surface(ctx: Context, spec: dict[str, Any]) -> Result:
    reviewed_path = ctx.path(spec["reviewed"])
    try:
        live = surface.live_surface()
    except (OSError, RuntimeError, ValueError) as exc:
        return Result(NOT_EVALUATED, [f"could not start the plugins to read their manifests: {exc}"])
    reviewed = surface.read_reviewed(reviewed_path)
    changes = surface.diff(reviewed, live)
    methods = [i for i in live if i.kind == "method"]
    per_plugin = ", ".join(f"{p} {sum(1 for i in methods if i.plugin == p)}" for p in surface.PLUGINS)
    evidence = [f"{len(methods)} methods ({per_plugin}), {len(live) - len(methods)} options, hooks, "
                f"subscriptions and topics, from each plugin's getmanifest"]
    unreviewed = [i.name for i in reviewed if i.kind == "method" and i.klass in (None, surface.UNREVIEWED)]
    if changes:
        evidence.append(f"{len(changes)} difference(s) from {spec['reviewed']} (review them, then "
                        "hive-gates --write-surface):")
        evidence += [f"  {line}" for line in changes[:40]] + ([f"  … (+{len(changes) - 40})"] if len(changes) > 40
                                                              else [])
    else:
        evidence.append(f"identical to the reviewed list {spec['reviewed']}")
    if unreviewed:
        evidence.append(f"methods without a reviewed class: {', '.join(unreviewed)}")
    return Result(PASS if not changes and not unreviewed else FAIL, evidence)


def check_allowlist(ctx: Context, spec: dict[str, Any]) -> Result:
    try:
        changes = advisor.allowlist_diff(ctx.path(spec["reviewed"]))
    except ImportError as exc:
        return Result(NOT_EVALUATED, [f"cl-hive-comms cannot be imported here: {exc}"])
    count = len(advisor.allowlist_now())
    if changes:
        return Result(FAIL, [f"comms' allowlist ({count} rules) differs from {spec['reviewed']}:"]
                      + [f"  {line}" for line in changes])
    return Result(PASS, [f"cl_hive_comms.danger.ALLOWLIST: {count} rules (methods, groups, parameters, engine, "
                         f"danger without parameters), identical to {spec['reviewed']}"])


def check_advisor(ctx: Context, spec: dict[str, Any]) -> Result:
    version, lightningd = advisor.read_lightningd(ctx.path(spec["lightningd"]))
    ours = {i.name: i.klass or surface.UNREVIEWED for i in surface.read_reviewed(ctx.path(spec["surface"]))
            if i.kind == "method"}
    classes = {**lightningd, **ours}
    try:
        found = advisor.problems(classes)
        counts = advisor.summary(classes)
        unknown = advisor.allowlisted_unknown(classes)
    except ImportError as exc:
        return Result(NOT_EVALUATED, [f"cl-hive-comms cannot be imported here: {exc}"])
    evidence = [f"{len(classes)} methods ({len(lightningd)} of {version}, {len(ours)} of the Hive plugins): "
                f"{counts.get('allowlisted', 0)} allowlisted, {counts.get('overridable', 0)} an operator could "
                f"open (read/state only), {counts.get('closed', 0)} closed to advisors"]
    if unknown:
        evidence.append(f"note: allowlisted but not a method of {version} (lightningd answers 'Unknown command'): "
                        f"{', '.join(unknown)}")
    evidence += found
    return Result(FAIL if found else PASS, evidence)


def check_runbook_refs(ctx: Context, spec: dict[str, Any]) -> Result:
    found = runbooks.check_references(ctx.root, spec["runbooks"], spec["sources"])
    evidence = [line for line in found.evidence]
    return Result(PASS if found.ok else FAIL, evidence)


CHECKS: dict[str, Callable[[Context, dict[str, Any]], Result]] = {
    "suite": check_suite, "tests": check_tests, "docs": check_docs, "surface": check_surface,
    "allowlist": check_allowlist, "advisor": check_advisor, "runbook-refs": check_runbook_refs,
}


def evaluate(root: Path, spec_path: Path) -> list[tuple[dict[str, Any], list[tuple[dict[str, Any], Result]]]]:
    spec = tomllib.loads(spec_path.read_text())
    ctx = Context(root, Record(root, source_tree(root)))
    report = []
    for gate in spec["gate"]:
        results = []
        for check in gate["check"]:
            try:
                result = CHECKS[check["kind"]](ctx, check)
            except Exception as exc:      # a broken check is reported, never taken for a pass
                result = Result(FAIL, [f"the check itself failed: {type(exc).__name__}: {exc}"])
            results.append((check, result))
        report.append((gate, results))
    return report


def render(report: list[tuple[dict[str, Any], list[tuple[dict[str, Any], Result]]]], verbose: bool = True) -> str:
    out = []
    for gate, results in report:
        statuses = [r.status for _, r in results]
        status = FAIL if FAIL in statuses else NOT_EVALUATED if NOT_EVALUATED in statuses else PASS
        out.append(f"Gate {gate['id']}: {gate['title']} — {status}")
        for check, result in results:
            out.append(f"  [{result.status}] {check['name']}")
            if verbose or result.status != PASS:
                out += [f"      {line}" for line in result.evidence]
        out.append("")
    summary = []
    for gate, results in report:
        statuses = [r.status for _, r in results]
        status = FAIL if FAIL in statuses else NOT_EVALUATED if NOT_EVALUATED in statuses else PASS
        summary.append(f"{gate['id']} {status}")
    out.append("Gates: " + ", ".join(summary))
    return "\n".join(out)


def exit_status(report: list[tuple[dict[str, Any], list[tuple[dict[str, Any], Result]]]]) -> int:
    statuses = [r.status for _, results in report for _, r in results]
    return 1 if FAIL in statuses else 2 if NOT_EVALUATED in statuses else 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="hive-gates", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=".", help="the repository (default: the current directory)")
    parser.add_argument("--spec", default=None, help="the gate list (default: <root>/ops/gates.toml)")
    parser.add_argument("--brief", action="store_true", help="evidence only for checks that did not pass")
    parser.add_argument("--write-surface", action="store_true",
                        help="rewrite ops/reviewed/rpc-surface.txt from the plugins (new methods get class '?')")
    args = parser.parse_args(argv)
    root = Path(args.root).resolve()
    if args.write_surface:
        surface.write_reviewed(root / "ops/reviewed/rpc-surface.txt", surface.live_surface())
        print("wrote ops/reviewed/rpc-surface.txt: review the diff and give new methods a class")
        return
    report = evaluate(root, Path(args.spec) if args.spec else root / "ops/gates.toml")
    print(render(report, verbose=not args.brief))
    sys.exit(exit_status(report))
