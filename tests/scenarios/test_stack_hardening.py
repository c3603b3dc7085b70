"""Issue 10 (outside review), what every plugin refuses, swept over all three and every method they register:

* finding 13: ``lightning-cli help`` shows no ``self`` parameter, for any method;
* finding 7: an integer beyond 64 bits (2**70) in any parameter is -32602, never -32603;
* finding 10: an error never quotes more than a little of its input, whatever the parameter or its name;
* finding 11: ``contract_version=true`` is not version 1, on every method that takes a contract version;
* lone surrogates (which lightningd passes through, finding 15) are -32602, never a crash or a hang;
* findings 4 and 9: a database path that is another database, a text file, a directory, a symlink or in a
  missing directory disables the plugin at init with the reason, without touching the file; so does an archon
  backup directory that is a symlink, a file or under a missing directory.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import stat

import pytest
from pyln.client import RpcError

from hive_devnet.fleet import DevnetFleet, plugin_path, wait_for

ALL = ("cl-hive", "cl-hive-comms", "cl-hive-archon")
STATUS = {"cl-hive": "hive-status", "cl-hive-comms": "hive-comms-status", "cl-hive-archon": "hive-archon-status"}
DB_OPTION = {"cl-hive": "hive-db-path", "cl-hive-comms": "hive-comms-db-path", "cl-hive-archon": "hive-archon-db-path"}
MAX_MESSAGE = 2100          # libhive caps every error message at 2000 characters (plus a short suffix)


def hive_methods(node) -> dict[str, list[str]]:
    """Every method the three plugins registered, with the parameter names ``help`` shows."""
    out = {}
    for entry in node.rpc.call("help")["help"]:
        name, *usage = entry["command"].split("\n")[0].split()
        if name.startswith("hive-"):
            out[name] = [u.strip("[]") for u in usage]
    return out


@pytest.fixture
def stack(fleet):
    node = fleet.add_node("n", plugins=list(ALL))
    for plugin in ALL:
        wait_for(lambda: node.rpc.call(STATUS[plugin])["node_id"], what=f"{plugin} up")
    return node


def raw_call(node, method: str, params_json: str) -> dict:
    """One request written by hand (pyln's client cannot send a lone surrogate)."""
    body = f'{{"jsonrpc":"2.0","id":"raw-1","method":"{method}","params":{params_json}}}'.encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(30)
        s.connect(str(node.rpc.socket_path))
        s.sendall(body)
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            try:
                return json.loads(buf)
            except ValueError:
                continue
    raise AssertionError(f"no answer to {method}")


def answer(node, method, params):
    try:
        return {"result": node.rpc.call(method, params)}
    except RpcError as exc:
        return {"error": exc.error}


def test_f13_help_shows_no_self_and_every_usage_can_be_called(stack):
    methods = hive_methods(stack)
    assert len(methods) > 100
    assert [m for m, params in methods.items() if "self" in params] == []
    for status in STATUS.values():
        assert methods[status] == ["contract_version"]
        assert stack.rpc.call(status, [])["node_id"] == stack.node_id          # as help shows it: no argument
    for method in ("hive-comms-identity", "hive-comms-transports", "hive-comms-outbox", "hive-comms-bindings"):
        assert "error" not in answer(stack, method, [])                       # positional, like lightning-cli


def test_f7_f10_f11_every_parameter_of_every_method(stack):
    """One call per (method, parameter) with a 2**70 integer, one with a 200 kB string, one with a huge
    parameter name: never -32603, never a message that repeats the input."""
    big = "x" * 200_000
    failures = []
    for method, params in hive_methods(stack).items():
        for param in params:
            out = answer(stack, method, {param: 2 ** 70})
            if out.get("error", {}).get("code") != -32602:
                failures.append((method, param, "2**70", out))
            out = answer(stack, method, {param: big})
            err = out.get("error")
            if err and (err["code"] == -32603 or len(err["message"]) > MAX_MESSAGE):
                failures.append((method, param, "200 kB", err["code"], len(err["message"])))
            if param == "contract_version":
                out = answer(stack, method, {param: True})
                if out.get("error", {}).get("code") != 1701:
                    failures.append((method, param, "true", out))
        out = answer(stack, method, {"x" * 100_000: 1})
        if out.get("error", {}).get("code") != -32602 or len(out["error"]["message"]) > MAX_MESSAGE:
            failures.append((method, "<huge name>", out.get("error", {}).get("code")))
    assert failures == []
    assert not stack.log_contains(r"OverflowError|Traceback")


def test_lone_surrogates_are_refused_not_crashed_on(stack):
    for method, params in hive_methods(stack).items():
        for param in params[:3]:
            out = raw_call(stack, method, f'{{"{param}":"\\ud800"}}')
            assert out["error"]["code"] == -32602 and "Unicode" in out["error"]["message"], (method, param, out)
        out = raw_call(stack, method, '{"\\udc00":1}')
        assert out["error"]["code"] == -32602, (method, out)
    assert all(stack.rpc.call(s)["node_id"] for s in STATUS.values())          # all three still fine


# ---- path options ------------------------------------------------------------------------------------
def snapshot(path):
    st = os.lstat(path)
    data = b"" if stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode) else open(path, "rb").read()
    return stat.S_IMODE(st.st_mode), hashlib.sha256(data).hexdigest(), sorted(
        p for p in os.listdir(os.path.dirname(path)))


def foreign_database(node, path):
    """lightningd's own database when there is one (real lightningd), else a SQLite file of another program."""
    source = node.lightning_dir / "lightningd.sqlite3"
    if source.exists():
        src = sqlite3.connect(source)
        dst = sqlite3.connect(path)
        src.backup(dst)
        src.close()
        dst.close()
    else:
        conn = sqlite3.connect(path)
        conn.executescript("CREATE TABLE peers (id BLOB); CREATE TABLE channels (id INTEGER); "
                           "INSERT INTO peers VALUES (x'02');")
        conn.close()
    os.chmod(path, 0o644)


def bad_paths(node, tmp_path, plugin):
    """name -> (path to give, what the refusal says)"""
    d = tmp_path / plugin
    d.mkdir()
    foreign_database(node, d / "lightningd-copy.sqlite3")
    (d / "notes.txt").write_text("my notes\n")
    os.chmod(d / "notes.txt", 0o644)
    sibling = next(p for p in ALL if p != plugin)
    node.rpc.call(STATUS[sibling])
    sibling_db = d / "sibling.sqlite3"
    src = sqlite3.connect(node.lightning_dir / f"{sibling}.sqlite3")
    dst = sqlite3.connect(sibling_db)
    src.backup(dst)
    src.close()
    dst.close()
    (d / "a-directory").mkdir()
    os.symlink(d / "target.sqlite3", d / "link.sqlite3")
    return {
        "foreign": (d / "lightningd-copy.sqlite3", f"not {plugin}'s"),
        "text": (d / "notes.txt", "is not a SQLite database"),
        "sibling": (sibling_db, f"belongs to {sibling}"),
        "directory": (d / "a-directory", "is a directory"),
        "symlink": (d / "link.sqlite3", "is a symbolic link"),
        "missing dir": (d / "nowhere" / "db.sqlite3", "does not exist"),
    }


@pytest.mark.parametrize("plugin", ALL)
def test_f4_f9_db_path_refused_at_init_without_touching_the_file(fleet, tmp_path, plugin):
    """Finding 4: hive-db-path at a copy of lightningd.sqlite3 made it 0600, WAL, with 24 hive tables, and a text
    file was chmod-ed before being refused.  Finding 9: a missing directory, a directory or a symlink made init
    raise while the plugin stayed active.  Each is now a clean disable with the reason, the file untouched."""
    others = [p for p in ALL if p != plugin]
    node = fleet.add_node("n", plugins=others)
    for case, (path, reason) in bad_paths(node, tmp_path, plugin).items():
        before = snapshot(path) if os.path.lexists(path) else None
        with pytest.raises(RpcError) as err:
            node.plugin_start(plugin, **{DB_OPTION[plugin]: str(path)})
        assert "disabled itself" in err.value.error["message"] and reason in err.value.error["message"], case
        assert plugin not in node.active_plugins(), case
        if before is not None:
            assert snapshot(path) == before, case                          # mode, bytes, no -wal/-shm
        for other in others:
            assert not node.rpc.call(STATUS[other])["siblings"][plugin]["active"], case
    # on the plugin line at startup too
    (tmp_path / "startup").mkdir()
    path, reason = bad_paths(node, tmp_path / "startup", plugin)["foreign"]
    before = snapshot(path)
    started = fleet.add_node("m", plugins=list(ALL), options={DB_OPTION[plugin]: str(path)})
    wait_for(lambda: started.log_contains(rf"{plugin}: cannot use .*{reason}"), what="the reason in the log")
    assert plugin not in started.active_plugins()
    assert snapshot(path) == before


def test_f9_archon_backup_dir_option_is_checked_at_init(fleet, tmp_path):
    node = fleet.add_node("n", plugins=["cl-hive-comms"])
    (tmp_path / "a-file").write_text("x")
    os.symlink(tmp_path, tmp_path / "a-link")
    for path, reason in ((tmp_path / "a-file", "is not a directory"), (tmp_path / "a-link", "symbolic link"),
                         (tmp_path / "missing" / "backups", "does not exist")):
        with pytest.raises(RpcError) as err:
            node.plugin_start("cl-hive-archon", **{"hive-archon-backup-dir": str(path)})
        assert "disabled itself" in err.value.error["message"] and reason in err.value.error["message"]
        assert "cl-hive-archon" not in node.active_plugins()
    assert not (tmp_path / "missing").exists()
    node.plugin_start("cl-hive-archon", **{"hive-archon-backup-dir": str(tmp_path / "backups")})
    made = node.rpc.call("hive-archon-backup")
    assert os.path.dirname(made["path"]) == str(tmp_path / "backups")
    assert stat.S_IMODE(os.stat(tmp_path / "backups").st_mode) == 0o700
