"""Issue 10 (outside review), cl-hive-archon: restoring a stopped sibling where it reads (finding 6), only the
databases asked for (finding 5's class), where backups may go (finding 8), and a credential manifest that would
outgrow what the gatekeeper takes (finding 16)."""
from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest
from archon_gatekeeper.scenario import gatekeeper, start_archon_node  # noqa: F401
from hive_devnet.fleet import wait_for
from pyln.client import RpcError

from cl_hive_archon import operations
from cl_hive_archon.keys import DID_KEY_LABEL, SigningKey

PLUGINS = ("cl-hive", "cl-hive-archon")


def error_of(call):
    with pytest.raises(RpcError) as info:
        call()
    return info.value.error


def bound_node(fleet, name, gatekeeper):
    node = start_archon_node(fleet, name, gatekeeper, plugins=PLUGINS)
    assert node.rpc.call("hive-archon-bind-node")["publish_status"] == "done"
    return node


def fill_document(gatekeeper, node, headroom: int) -> None:
    """Grow the node's DID document (a valid update signed with its own DID key) until the next update could
    add only ``headroom`` more characters."""
    key = SigningKey(bytes.fromhex(node.rpc.call("makesecret", {"string": DID_KEY_LABEL})["secret"]))
    doc = gatekeeper.resolve(node.did)
    previd = doc["didDocumentMetadata"]["versionId"]

    def update(n: int) -> dict:
        data = {**doc["didDocumentData"], "padding": "p" * n}
        return operations.update(key, node.did, node.did, previd, {"didDocumentData": data})

    probe = operations.op_size(update(0))
    op = update(operations.MAX_OP_BYTES - headroom - probe)
    assert gatekeeper.submit(op) is True


def test_f16_a_manifest_that_would_outgrow_the_gatekeeper_is_refused_before_anything_changes(fleet, gatekeeper):
    """Every credential a holder accepts goes into its DID document's manifest, one update operation of at most
    64 KiB signed.  An accept that would outgrow it is refused with 1809 before anything is stored or queued;
    with publish=false the credential is kept, unpublished; the DID document is untouched either way."""
    issuer, holder = bound_node(fleet, "a", gatekeeper), bound_node(fleet, "b", gatekeeper)
    vc_did = issuer.rpc.call("hive-archon-credential-issue", {"subject_did": holder.did, "kind": "membership",
                                                              "node_id": holder.node_id,
                                                              "tier": "member"})["credential_did"]
    fill_document(gatekeeper, holder, headroom=300)          # a credential in the manifest needs more than that
    versions = len(gatekeeper.operations(holder.did))
    outbox = holder.rpc.call("hive-archon-outbox")["counts"]

    err = error_of(lambda: holder.rpc.call("hive-archon-credential-accept", {"did": vc_did}))
    assert err["code"] == 1809
    assert "over the gatekeeper's limit of 65536" in err["message"] and "publish=false" in err["message"]
    assert holder.rpc.call("hive-archon-credential-list", {"role": "held"})["credentials"] == []
    assert holder.rpc.call("hive-archon-outbox")["counts"] == outbox                  # nothing queued
    assert len(gatekeeper.operations(holder.did)) == versions                          # nothing published

    kept = holder.rpc.call("hive-archon-credential-accept", {"did": vc_did, "publish": False})
    assert kept["status"] == "active" and kept["published"] is False
    assert [c["credential_did"] for c in holder.rpc.call("hive-archon-credential-list", {"role": "held"})[
        "credentials"]] == [vc_did]
    assert "manifest" not in gatekeeper.resolve(holder.did)["didDocumentData"]
    assert len(gatekeeper.operations(holder.did)) == versions


def test_f6_restore_writes_a_stopped_sibling_database_where_the_sibling_reads_it(fleet, tmp_path):
    """Finding 6: ``hive-archon-restore plugins=[cl-hive]`` wrote ``<lightning-dir>/cl-hive.sqlite3`` while
    cl-hive used its ``hive-db-path``, and reported success.  Restore writes where the sibling will read (the
    path its status gave while it ran), or refuses when archon never saw it run."""
    custom = tmp_path / "elsewhere" / "hive.sqlite3"
    custom.parent.mkdir()
    node = fleet.add_node("n", plugins=["cl-hive", "cl-hive-comms", "cl-hive-archon"],
                          options={"hive-db-path": str(custom)})
    wait_for(lambda: node.rpc.call("hive-status")["db_path"] == str(custom), what="cl-hive on its own path")
    made = node.rpc.call("hive-archon-backup")
    assert next(m for m in made["plugins"] if m["plugin"] == "cl-hive")["source"] == str(custom)
    node.rpc.call("hive-genesis", {})                                   # cl-hive's state after the backup
    assert node.rpc.call("hive-status")["hive"]["tier"] == "member"
    node.plugin_stop("cl-hive")
    out = node.rpc.call("hive-archon-restore", {"path": made["path"], "plugins": ["cl-hive"]})
    assert [(r["plugin"], r["path"]) for r in out["restored"]] == [("cl-hive", str(custom))]
    assert not (node.lightning_dir / "cl-hive.sqlite3").exists()        # nothing written where nobody reads
    node.plugin_start("cl-hive", **{"hive-db-path": str(custom)})
    status = wait_for(lambda: node.rpc.call("hive-status"), what="cl-hive back")
    assert status["db_path"] == str(custom) and status["hive"]["tier"] is None     # the backup's state
    # a sibling archon has no record of: refused, nothing written
    node.plugin_stop("cl-hive")
    conn = sqlite3.connect(node.lightning_dir / "cl-hive-archon.sqlite3")
    with conn:
        conn.execute("DELETE FROM archon_meta WHERE key = 'sibling-db-path:cl-hive'")
    conn.close()
    before = custom.stat().st_mtime_ns
    err = error_of(lambda: node.rpc.call("hive-archon-restore", {"path": made["path"], "plugins": ["cl-hive"]}))
    assert err["code"] == 1807 and "never seen it running" in err["message"]
    assert custom.stat().st_mtime_ns == before


def test_restore_without_plugins_is_an_error_not_every_database(fleet):
    """Finding 5's class in archon: ``hive-archon-restore`` without ``plugins`` restored every database in the
    bundle.  Without it the call is -32602 and nothing is replaced; every database is restored only when
    ``plugins="all"`` is asked for."""
    node = fleet.add_node("n", plugins=["cl-hive", "cl-hive-comms", "cl-hive-archon"])
    wait_for(lambda: all(s["active"] for s in node.rpc.call("hive-archon-status")["siblings"].values()),
             what="archon sees both siblings")
    made = node.rpc.call("hive-archon-backup")
    node.rpc.call("hive-genesis", {})                                   # cl-hive's state after the backup
    for sibling in ("cl-hive", "cl-hive-comms"):
        node.plugin_stop(sibling)
    for params in ({"path": made["path"]}, [made["path"]]):              # by name, and as lightning-cli sends it
        err = error_of(lambda params=params: node.rpc.call("hive-archon-restore", params))
        assert err["code"] == -32602 and "plugins" in err["message"], err
    for bad in ([], "cl-hive", "everything"):
        err = error_of(lambda bad=bad: node.rpc.call("hive-archon-restore", {"path": made["path"], "plugins": bad}))
        assert err["code"] == -32602 and '"all"' in err["message"], err
    help_text = node.rpc.call("help", {"command": "hive-archon-restore"})["help"][0]["command"]
    assert help_text.startswith("hive-archon-restore path plugins")     # shown as required
    assert not list(node.lightning_dir.glob("*.pre-restore-*"))          # nothing was replaced
    out = node.rpc.call("hive-archon-restore", {"path": made["path"], "plugins": "all"})
    assert {r["plugin"] for r in out["restored"]} == {"cl-hive", "cl-hive-comms", "cl-hive-archon"}
    node.plugin_start("cl-hive")
    node.plugin_start("cl-hive-comms")
    status = wait_for(lambda: node.rpc.call("hive-status"), what="cl-hive back")
    assert status["hive"]["tier"] is None                               # the backup's state


@pytest.mark.parametrize("destination", ["../outside", "{absolute}", "a/../../b", ".hidden", "a\x00b", "a//b",
                                         "x" * 65, "a/b/c/d/e"])
def test_f8_backups_go_only_inside_the_backup_directory(fleet, tmp_path, destination):
    """Finding 8: ``destination`` took any path (``../``, absolute; a NUL byte gave -32603) and created parents
    with the umask.  It names a subdirectory of the backup directory; each level is created 0700."""
    node = start_archon_node(fleet, "n", None)
    destination = destination.replace("{absolute}", str(tmp_path / "outside"))
    err = error_of(lambda: node.rpc.call("hive-archon-backup", {"destination": destination}))
    assert err["code"] == -32602 and "subdirectory" in err["message"]
    assert not (node.lightning_dir / "outside").exists() and not (tmp_path / "outside").exists()
    assert not (node.lightning_dir / "archon-backups" / "a").exists()


def test_f8_a_backup_subdirectory_is_private(fleet):
    node = start_archon_node(fleet, "n", None)
    made = node.rpc.call("hive-archon-backup", {"destination": "weekly/2026"})
    base = node.lightning_dir / "archon-backups"
    assert Path(made["path"]).parent == base / "weekly" / "2026"
    for level in (base, base / "weekly", base / "weekly" / "2026"):
        assert stat.S_IMODE(level.stat().st_mode) == 0o700, level
    assert stat.S_IMODE(Path(made["path"]).stat().st_mode) == 0o600
