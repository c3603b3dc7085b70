"""The signals a runbook tells an operator to look for, in a form tests and the gates can check.

A runbook (``docs/runbooks/*.md``) shows what the operator sees in fenced blocks with the info string
``signals`` and, optionally, ``when=<situation>``::

    ```signals when=crashed
    status hive-status siblings.cl-hive-comms.active = false
    status hive-archon-status warnings[0] ~ runs degraded
    log cl-hive-archon: cl-hive-comms is not active: cl-hive-archon runs degraded
    log lightningd: plugin-cl-hive-comms: Killing plugin: exited during normal operation
    error hive-comms-cashu-mint {"amount_sat": 10, "idempotency_key": "probe-0001"} = 1975 ~ is unreachable
    ```

* ``status <method> <path> <op> <value>``: call ``<method>`` (no parameters) and read ``<path>`` (dotted keys,
  ``[n]`` for list items) of its answer; ``= <json>`` equal, ``~ <text>`` contains the text, ``!= <json>`` not
  equal.
* ``log <source>: <message>``: a line of the node's log holds the message; ``…`` stands for any text (what
  changes from one node to the next).  ``<source>`` is the plugin that logs it, ``libhive``, or something else
  (``lightningd``, ``sqlite``) whose words the code does not hold.
* ``error <method> <params> = <code> [~ <text>]``: calling ``<method>`` with the JSON object ``<params>`` answers
  that error code (and a message holding the text).

The scenario tests (``tests/ops/test_runbooks.py``) bring each situation about on a node and check every signal
of that situation.  The gates check statically that every method, status key and log message a runbook names
exists in the code (a string literal of the plugins or libhive), so a renamed field or reworded log line breaks
the gate even for a runbook no test here can play through (the stuck settlement).
"""
from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

WILDCARD = "…"
OUR_SOURCES = ("cl-hive", "cl-hive-comms", "cl-hive-archon", "libhive")
FENCE = re.compile(r"^```signals(?:\s+when=(?P<when>\S+))?\s*$")


@dataclass(frozen=True)
class Signal:
    kind: str              # status | log | error
    when: str | None
    method: str = ""       # status, error
    path: str = ""         # status
    op: str = ""           # status: = ~ !=
    value: str = ""        # status; error: the text the message holds
    params: str = ""       # error: a JSON object
    code: str = ""         # error
    source: str = ""       # log
    message: str = ""      # log
    line: str = ""

    def fragments(self) -> list[str]:
        return [f.strip() for f in self.message.split(WILDCARD) if f.strip()]


def parse(text: str) -> list[Signal]:
    signals, when, inside = [], None, False
    for raw in text.splitlines():
        if not inside:
            match = FENCE.match(raw.strip())
            if match:
                inside, when = True, match.group("when")
            continue
        line = raw.strip()
        if line.startswith("```"):
            inside = False
            continue
        if not line or line.startswith("#"):
            continue
        kind, _, rest = line.partition(" ")
        if kind == "status":
            match = re.match(r"(?P<method>\S+)\s+(?P<path>\S+)\s+(?P<op>=|~|!=)\s+(?P<value>.+)$", rest.strip())
            if not match:
                raise ValueError(f"unreadable status signal: {line!r}")
            signals.append(Signal("status", when, line=line, **match.groupdict()))
        elif kind == "error":
            match = re.match(r"(?P<method>\S+)\s+(?P<params>\{.*\})\s+=\s+(?P<code>-?\d+)(?:\s+~\s+(?P<value>.+))?$",
                             rest.strip())
            if not match:
                raise ValueError(f"unreadable error signal: {line!r}")
            json.loads(match.group("params"))
            signals.append(Signal("error", when, line=line, method=match.group("method"),
                                  params=match.group("params"), code=match.group("code"),
                                  value=(match.group("value") or "").strip()))
        elif kind == "log":
            source, _, message = rest.strip().partition(": ")
            if not message:
                raise ValueError(f"unreadable log signal: {line!r}")
            signals.append(Signal("log", when, source=source, message=message, line=line))
        else:
            raise ValueError(f"unknown signal kind in {line!r}")
    return signals


def read(path: Path) -> list[Signal]:
    return parse(path.read_text())


# ---- live checks (tests) ------------------------------------------------------------------------------------------
def path_keys(path: str) -> list[str | int]:
    keys: list[str | int] = []
    for part in path.split("."):
        name, *indexes = re.split(r"\[(\d+)\]", part)
        if name:
            keys.append(name)
        keys += [int(i) for i in indexes if i != ""]
    return keys


def lookup(answer: Any, path: str) -> Any:
    value = answer
    for key in path_keys(path):
        value = value[key]
    return value


def status_holds(signal: Signal, answer: Any) -> tuple[bool, Any]:
    """Whether ``answer`` (the method's result) shows the signal; and the value found."""
    try:
        value = lookup(answer, signal.path)
    except (KeyError, IndexError, TypeError):
        return False, "<absent>"
    if signal.op == "~":
        return signal.value.strip() in json.dumps(value) if not isinstance(value, str) else \
            signal.value.strip() in value, value
    expected = json.loads(signal.value)
    return (value == expected) if signal.op == "=" else (value != expected), value


def log_pattern(signal: Signal) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(f) for f in signal.fragments()))


def check_live(signals: Iterable[Signal], call: Callable[..., Any], log_lines: list[str]) -> list[str]:
    """The signals that do not hold on a node right now (empty: all of them hold).  ``call(method, params)``
    calls the node and raises on an error answer (an ``.error`` dict with ``code`` and ``message``)."""
    failed = []
    answers: dict[str, Any] = {}
    for signal in signals:
        if signal.kind == "error":
            try:
                answer = call(signal.method, json.loads(signal.params))
            except Exception as exc:                   # pyln's RpcError: .error = {code, message}
                error = getattr(exc, "error", None) or {}
                if str(error.get("code")) != signal.code or signal.value not in str(error.get("message", "")):
                    failed.append(f"{signal.line}   (answered {json.dumps(error)[:200]})")
            else:
                failed.append(f"{signal.line}   (answered without an error: {json.dumps(answer)[:200]})")
        elif signal.kind == "status":
            if signal.method not in answers:
                answers[signal.method] = call(signal.method, {})
            ok, value = status_holds(signal, answers[signal.method])
            if not ok:
                failed.append(f"{signal.line}   (found {json.dumps(value)[:200]})")
        else:
            pattern = log_pattern(signal)
            if not any(pattern.search(line) for line in log_lines):
                failed.append(f"{signal.line}   (no such line in the node's log)")
    return failed


# ---- static checks (gates) ----------------------------------------------------------------------------------------
def string_constants(roots: Iterable[Path]) -> list[str]:
    """Every string literal of the Python sources under ``roots`` (implicit concatenations joined; f-strings as
    their constant parts joined by the wildcard)."""
    found = []
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            try:
                tree = ast.parse(path.read_text(), str(path))
            except (SyntaxError, UnicodeDecodeError):
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    found.append(node.value)
                elif isinstance(node, ast.JoinedStr):
                    found.append(WILDCARD.join(v.value if isinstance(v, ast.Constant) else ""
                                               for v in node.values))
    return found


def _in_code(fragment: str, constants: list[str]) -> bool:
    return any(fragment in constant for constant in constants)


@dataclass
class Report:
    ok: bool = True
    evidence: list[str] = field(default_factory=list)


def check_references(root: Path, runbooks: list[str], sources: list[str]) -> Report:
    """Every method, status key and log message the runbooks name is in the code."""
    constants = string_constants(root / s for s in sources)
    report = Report()
    for relative in runbooks:
        path = root / relative
        if not path.is_file():
            report.ok = False
            report.evidence.append(f"{relative}: missing")
            continue
        try:
            signals = read(path)
        except ValueError as exc:
            report.ok = False
            report.evidence.append(f"{relative}: {exc}")
            continue
        missing = []
        for signal in signals:
            if signal.kind == "status":
                names = [signal.method] + [k for k in path_keys(signal.path) if isinstance(k, str)]
                missing += [f"{signal.method} … {name!r}" for name in names if not _in_code(name, constants)]
            elif signal.kind == "error":
                names = [signal.method] + ([signal.value] if signal.value else [])
                missing += [f"error {name!r}" for name in names if not _in_code(name, constants)]
            elif signal.source in OUR_SOURCES:
                missing += [f"log {f!r}" for f in signal.fragments() if not _in_code(f, constants)]
        missing = list(dict.fromkeys(missing))
        if not signals:
            report.ok = False
            report.evidence.append(f"{relative}: names no signals")
        elif missing:
            report.ok = False
            report.evidence.append(f"{relative}: not found in the code: {'; '.join(missing[:8])}"
                                   + (f" (+{len(missing) - 8})" if len(missing) > 8 else ""))
        else:
            kinds = {k: sum(1 for s in signals if s.kind == k) for k in ("status", "log", "error")}
            report.evidence.append(f"{relative}: {kinds['status']} status field(s), {kinds['log']} log line(s), "
                                   f"{kinds['error']} error answer(s), all found in the code")
    return report
