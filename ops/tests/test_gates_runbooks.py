"""The runbooks' signal blocks: read, checked on a node's answers and log, and looked up in the code."""
from __future__ import annotations

from pathlib import Path

import pytest

from hive_ops import runbooks

ROOT = Path(__file__).resolve().parents[2]
DOC = '''# A runbook

```signals when=down
status hive-comms-status nostr.relays[0].connected = false
status hive-comms-status nostr.relays[0].url ~ 127.0.0.1
status hive-comms-outbox counts.pending != 0
log cl-hive-comms: relays: … configured
log lightningd: plugin-cl-hive-comms: Killing plugin
error hive-comms-cashu-mint {"amount_sat": 10} = 1975 ~ is unreachable
```

```text
status not-a-signal ignored = 1
```
'''


class Refused(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.error = {"code": code, "message": message}


def node(relay_connected: bool, pending: int, mint_code: int = 1975):
    answers = {"hive-comms-status": {"nostr": {"relays": [{"url": "ws://127.0.0.1:9", "connected": relay_connected}]}},
               "hive-comms-outbox": {"counts": {"pending": pending}}}

    def call(method, params):
        if method == "hive-comms-cashu-mint":
            raise Refused(mint_code, "mint http://127.0.0.1:1 is unreachable: refused")
        return answers[method]
    return call


def test_signal_blocks_are_read_and_only_them():
    found = runbooks.parse(DOC)
    assert [s.kind for s in found] == ["status", "status", "status", "log", "log", "error"]
    assert {s.when for s in found} == {"down"}
    assert found[0].method == "hive-comms-status" and runbooks.path_keys(found[0].path) == [
        "nostr", "relays", 0, "connected"]
    assert found[3].fragments() == ["relays:", "configured"]
    assert (found[5].method, found[5].code, found[5].value) == ("hive-comms-cashu-mint", "1975", "is unreachable")
    with pytest.raises(ValueError):
        runbooks.parse("```signals\nshout loudly\n```\n")


def test_live_signals_hold_or_say_what_was_found():
    log = ["INFO plugin-cl-hive-comms: cl-hive-comms: Nostr identity npub1x (derived key); relays: none configured",
           "INFO plugin-cl-hive-comms: Killing plugin: exited during normal operation"]
    signals = runbooks.parse(DOC)
    assert runbooks.check_live(signals, node(False, 2), log) == []
    failed = runbooks.check_live(signals, node(True, 0, mint_code=1976), log[:1])
    assert len(failed) == 4
    assert "(found true)" in failed[0] and "(found 0)" in failed[1]
    assert "no such line" in failed[2] and '"code": 1976' in failed[3]


def test_references_are_looked_up_in_the_code(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "mod.py").write_text(
        'A = {"nostr": 1, "relays": [], "connected": 0, "url": "", "counts": {}, "pending": 0}\n'
        'B = ("hive-comms-status", "hive-comms-outbox", "hive-comms-cashu-mint")\n'
        'log.info("Nostr identity %s (%s key); relays: %s", a, b, c)\n'
        'C = f"mint {url} is unreachable: {exc}"\n')
    (tmp_path / "ok.md").write_text(DOC.replace("… configured", "…"))
    (tmp_path / "gone.md").write_text(DOC.replace("connected = false", "linked = false"))
    report = runbooks.check_references(tmp_path, ["ok.md", "gone.md", "missing.md"], ["src"])
    assert not report.ok
    assert report.evidence[0] == "ok.md: 3 status field(s), 2 log line(s), 1 error answer(s), all found in the code"
    assert "'linked'" in report.evidence[1] and report.evidence[2] == "missing.md: missing"


def test_every_runbook_reads():
    for path in sorted((ROOT / "docs" / "runbooks").glob("*.md")):
        if path.name != "README.md":
            assert runbooks.read(path), path.name
