#!/usr/bin/env python3
"""Recorder plugin for the devnet conformance suite (modelled on the transcripts' rec1.py / rec2.py).

The suite copies this file into a temporary directory as ``rec1.py``, ``rec2.py``, ``rec3.py`` with the venv's
interpreter in the shebang.  Everything is named after the file: options ``<p>-str|int|bool|flag|multi``,
methods ``<p>-emit`` etc., where ``<p>`` is the basename without ``.py``.

Every frame lightningd writes to our stdin is appended, parsed and raw, to ``<basename>.frames.jsonl`` in the
plugin's cwd (lightningd's ``<lightning-dir>/<network>``) before pyln dispatches it; so is the manifest we answer
(``{"event": "manifest"}``) and each process start (``{"event": "start"}``, with its pid).  ``<p>-record`` answers
only after every earlier frame was recorded, so a test calls it as a barrier before reading the file.

Per-name behaviour, as in the transcripts: rec2 declares no notification topic (so its ``rec_event`` is
dropped); rec1 also accepts the even custom message type 0x4850; ``chain`` also subscribes to channel_opened and
channel_state_changed.  On ``shutdown`` it records whether lightningd's RPC still answers, then exits.  A file ``<basename>.init-delay`` in the cwd
makes ``init`` sleep that many seconds.
"""
import inspect
import json
import os
import sys
import threading
import time

from pyln.client import Plugin, RpcException

NAME = os.path.basename(sys.argv[0])
P = NAME.rsplit(".", 1)[0]
FRAMES = os.path.join(os.getcwd(), NAME + ".frames.jsonl")
DECLARES_TOPIC = P != "rec2"
CUSTOM_MSGS = [32769] + ([0x4850] if P == "rec1" else [])

_lock = threading.Lock()


def record(entry):
    entry = dict(entry, pid=os.getpid(), t=time.time())
    with _lock, open(FRAMES, "a") as f:
        f.write(json.dumps(entry) + "\n")


class TeeStdin:
    """What pyln iterates (``stdin.buffer``): lines of our stdin; complete frames are recorded on the way."""

    def __init__(self, raw):
        self.buffer = self
        self._raw = raw
        self._partial = b""

    def __iter__(self):
        return self

    def __next__(self):
        line = self._raw.readline()
        if not line:
            raise StopIteration
        self._partial += line
        *frames, self._partial = self._partial.split(b"\n\n")
        for raw in frames:
            if raw.strip():
                text = raw.decode()
                record({"dir": "in", "raw": text, "frame": json.loads(text)})
        return line


class TeeStdout:
    """What pyln writes to (``stdout.buffer``): our manifest is recorded on the way out (a test compares it)."""

    def __init__(self, out):
        self.buffer = self
        self._out = out

    def write(self, data):
        try:
            frame = json.loads(data)
        except ValueError:
            frame = None
        if isinstance(frame, dict) and isinstance(frame.get("result"), dict) and "rpcmethods" in frame["result"]:
            record({"event": "manifest", "manifest": frame["result"]})
        return self._out.write(data)

    def flush(self):
        self._out.flush()


record({"event": "start", "cwd": os.getcwd(), "argv0": sys.argv[0],
        "env": {k: os.environ.get(k) for k in ("LIGHTNINGD_PLUGIN", "LIGHTNINGD_VERSION")}})

plugin = Plugin(custom_msgs=CUSTOM_MSGS)
plugin.stdin = TeeStdin(sys.stdin.buffer)
plugin.stdout = TeeStdout(plugin.stdout.buffer)   # the real stdout (pyln has patched sys.stdout)
plugin.add_option(f"{P}-str", "dflt", "a string option")
plugin.add_option(f"{P}-int", 7, "an int option", opt_type="int")
plugin.add_option(f"{P}-bool", False, "a bool option", opt_type="bool")
plugin.add_flag_option(f"{P}-flag", "a flag option")
plugin.add_option(f"{P}-multi", None, "a multi string option", multi=True)
if DECLARES_TOPIC:
    plugin.add_notification_topic("rec_event")

plugin.received_options = {}
plugin.behaviour = {"peer_connected": "continue", "error_message": "", "hook_delay": 0.0}


@plugin.init()
def init(options, configuration, plugin, **kwargs):
    plugin.received_options = options
    delay_file = os.path.join(os.getcwd(), NAME + ".init-delay")
    if os.path.exists(delay_file):
        with open(delay_file) as f:
            time.sleep(float(f.read().strip() or 0))


def emit(plugin, tag="hello"):
    """Emit rec_event custom notifications."""
    plugin.notify("rec_event", {"tag": tag, "n": 1})
    plugin._write_locked({"jsonrpc": "2.0", "method": "rec_event", "params": {"tag": tag, "raw": True}})
    return {"emitted": tag, "options": plugin.received_options}


def record_barrier(plugin):
    """Answer once every frame received before this call is in the frames file."""
    return {"file": FRAMES, "pid": os.getpid()}


def fail(plugin, code, message):
    """Fail with the given JSON-RPC error code and message."""
    raise RpcException(message, code=int(code))


def die(plugin):
    """Exit without answering."""
    os._exit(7)


def echo(plugin, a, b=None):
    """Return the parameters (for positional/keyword calls)."""
    return {"a": a, "b": b}


def set_behaviour(plugin, peer_connected=None, error_message=None, hook_delay=None):
    """Change what the peer_connected hook answers and how long hooks take."""
    for key, value in (("peer_connected", peer_connected), ("error_message", error_message),
                       ("hook_delay", hook_delay)):
        if value is not None:
            plugin.behaviour[key] = float(value) if key == "hook_delay" else value
    return dict(plugin.behaviour)


def sleep(seconds, plugin=None, request=None):
    """Answer after ``seconds``, from a thread (so calls overlap)."""
    def later():
        time.sleep(float(seconds))
        request.set_result({"slept": float(seconds)})
    threading.Thread(target=later, daemon=True).start()


for suffix, fn in (("emit", emit), ("record", record_barrier), ("fail", fail), ("die", die), ("echo", echo),
                   ("set", set_behaviour)):
    plugin.add_method(f"{P}-{suffix}", fn, description=inspect.getdoc(fn))
plugin.add_method(f"{P}-sleep", sleep, background=True, description=inspect.getdoc(sleep))


@plugin.hook("custommsg")
def on_custommsg(peer_id, payload, plugin, **kwargs):
    time.sleep(plugin.behaviour["hook_delay"])
    return {"result": "continue"}


@plugin.hook("peer_connected")
def on_peer_connected(peer, plugin, **kwargs):
    time.sleep(plugin.behaviour["hook_delay"])
    if plugin.behaviour["peer_connected"] == "disconnect":
        return {"result": "disconnect", "error_message": plugin.behaviour["error_message"]}
    return {"result": "continue"}


def ignore(plugin, **kwargs):
    pass


for topic in ("connect", "disconnect", "plugin_started", "plugin_stopped", "forward_event", "invoice_payment",
              "rec_event") + (("channel_opened", "channel_state_changed") if P == "chain" else ()):
    plugin.add_subscription(topic, ignore)


@plugin.subscribe("shutdown")
def on_shutdown(plugin, **kwargs):
    """Try lightningd's RPC once more (record whether it still answers), then exit."""
    try:
        plugin.rpc.getinfo()
        record({"event": "rpc-at-shutdown", "answered": True})
    except Exception as exc:  # noqa: BLE001 - recorded
        record({"event": "rpc-at-shutdown", "answered": False, "error": type(exc).__name__})
    os._exit(0)


plugin.run()
