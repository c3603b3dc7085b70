"""``cl-hive-migrate``: move a stopped monolith node's database into the split plugins' databases.

    cl-hive-migrate --lightning-dir ~/.lightning [--network bitcoin] [--monolith-db PATH] [--apply] [--json]
                    [--import-nostr-key] [--hive-db PATH] [--comms-db PATH] [--archon-db PATH]

Without ``--apply`` it is a dry run: it prints what would move and what cannot, with the reasons, and writes
nothing.  The monolith database (default: ``<lightning-dir>/<network>/cl_hive.db``, the monolith's
``hive-db-path``) is opened read-only.  Each plugin's rows go into that plugin's own database (default
``<lightning-dir>/<network>/<plugin>.sqlite3``, where the plugin keeps it), through its own code: cl-hive's part
here, then ``cl-hive-comms-migrate`` and ``cl-hive-archon-migrate`` (found next to this script or on PATH; a
sibling that is not installed is reported).  Exit status: 0 done, 1 refused (or a sibling refused), 2 usage.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from libhive.errors import HiveError
from libhive.monolith import MonolithDb, Report
from libhive.monolith_import import DONE, REFUSED, ImportRun, arguments, emit, on_file, opened, paths, \
    refuse_if_running

from ..migrations import migrations
from . import SIBLING_TIMEOUT, SIBLINGS, finish, import_cl_hive, sibling_options, unavailable


def sibling_script(plugin: str) -> str | None:
    """``<plugin>-migrate`` next to this script or this Python, else on PATH."""
    here = [str(Path(sys.argv[0]).resolve().parent), str(Path(sys.executable).parent)]
    return shutil.which(f"{plugin}-migrate", path=os.pathsep.join([*here, os.environ.get("PATH", "")]))


def ask_sibling(plugin: str, mono: MonolithDb, report: Report, network_dir: Path, *, apply: bool,
                db_path: Path | None, import_nostr_key: bool) -> str | None:
    """Run the sibling's part with its own console script and merge its report; returns its refusal, if any."""
    script = sibling_script(plugin)
    if script is None:
        unavailable(report, mono, plugin, f"{plugin}-migrate is not installed here; install {plugin}",
                    "cl-hive-migrate")
        return None
    cmd = [script, "--lightning-dir", str(network_dir.parent), "--network", network_dir.name, "--monolith-db",
           mono.path, "--node-id", report.node_id or "", "--json"]
    cmd += ["--db", str(db_path)] if db_path else []
    cmd += ["--apply"] if apply else []
    cmd += [f"--{k.replace('_', '-')}" for k, v in sibling_options(plugin, import_nostr_key).items() if v]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=SIBLING_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        why = f"{plugin}-migrate failed: {exc}"
    else:
        if done.returncode == DONE:
            try:
                report.merge(json.loads(done.stdout))
                return None
            except (ValueError, KeyError, TypeError):
                why = f"{plugin}-migrate printed no report"
        else:
            lines = done.stderr.strip().splitlines()
            why = f"{plugin}-migrate refused: {lines[-1] if lines else f'exit status {done.returncode}'}"
    unavailable(report, mono, plugin, why, "cl-hive-migrate")
    return why


def run(monolith_db: Path, network_dir: Path, *, apply: bool, node_id: str | None = None,
        hive_db: Path | None = None, sibling_dbs: dict[str, Path] | None = None, import_nostr_key: bool = False,
        refusals: list[str] | None = None) -> Report:
    """The whole migration of a stopped node; a sibling's refusal is reported and added to ``refusals``."""
    with opened(monolith_db, node_id, not apply) as (mono, report):
        on_file(import_cl_hive, mono, report, "cl-hive", migrations, hive_db or network_dir / "cl-hive.sqlite3",
                ImportRun(report.node_id or "", not apply))
        for plugin in SIBLINGS:
            refused = ask_sibling(plugin, mono, report, network_dir, apply=apply,
                                  db_path=(sibling_dbs or {}).get(plugin), import_nostr_key=import_nostr_key)
            if refused and refusals is not None:
                refusals.append(refused)
        return finish(report, mono)


def main(argv: list[str] | None = None) -> int:
    ap = arguments("cl-hive-migrate", __doc__.split("\n\n")[0])
    ap.add_argument("--import-nostr-key", action="store_true",
                    help="also make the monolith's Nostr key cl-hive-comms' key (default: comms keeps its own key, "
                         "derived from the node's HSM); an encrypted key needs the running node: hive-migrate")
    ap.add_argument("--hive-db", type=Path, help="cl-hive's database (default <dir>/<network>/cl-hive.sqlite3)")
    ap.add_argument("--comms-db", type=Path, help="cl-hive-comms' database (default <dir>/<network>/"
                    "cl-hive-comms.sqlite3)")
    ap.add_argument("--archon-db", type=Path, help="cl-hive-archon's database (default <dir>/<network>/"
                    "cl-hive-archon.sqlite3)")
    args = ap.parse_args(argv)
    network_dir, monolith_db = paths(args)
    if refuse_if_running("cl-hive-migrate", network_dir):
        return REFUSED
    refusals: list[str] = []
    dbs = {p: path.expanduser() for p, path in (("cl-hive-comms", args.comms_db), ("cl-hive-archon", args.archon_db))
           if path}
    try:
        report = run(monolith_db, network_dir, apply=args.apply, node_id=args.node_id,
                     hive_db=args.hive_db.expanduser() if args.hive_db else None, sibling_dbs=dbs,
                     import_nostr_key=args.import_nostr_key, refusals=refusals)
    except HiveError as exc:
        print(f"cl-hive-migrate: refused ({exc.code}): {exc}", file=sys.stderr)
        return REFUSED
    emit(report, args.json)
    for refused in refusals:
        print(f"cl-hive-migrate: {refused}", file=sys.stderr)
    return REFUSED if refusals else DONE


if __name__ == "__main__":
    sys.exit(main())
