"""What the bootstrap refuses in every method's parameters before any handler runs (no pydantic here: it is
loaded at a plugin's start).

Refused anywhere in the parameters, nested too, with JSON-RPC -32602:

* an integer outside -2**63 .. 2**63-1: lightningd passes a JSON number of any size through; SQLite and most
  handlers cannot hold it, and 2**70 would otherwise end as an OverflowError deep in a handler;
* a string or a key that is not valid Unicode: lightningd passes a lone surrogate escape such as "\\ud800"
  through; it cannot be stored, signed or sent on.
"""
from __future__ import annotations

from typing import Any

from .errors import short_name

INT64_MIN, INT64_MAX = -2 ** 63, 2 ** 63 - 1


def screen(params: Any) -> str | None:
    """Why the bootstrap refuses these parameters (see the module docstring), or None."""
    stack: list[tuple[str, Any]] = [("", params)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, bool) or value is None or isinstance(value, float):
            continue
        if isinstance(value, int):
            if not INT64_MIN <= value <= INT64_MAX:
                return f"{short_name(path or '(params)')}: integer out of range (-2^63 .. 2^63-1)"
        elif isinstance(value, str):
            if not _is_unicode(value):
                return f"{short_name(path or '(params)')}: not valid Unicode (a lone surrogate)"
        elif isinstance(value, dict):
            for key, item in value.items():
                if not _is_unicode(str(key)):
                    return f"{short_name(path or '(params)')}: a key is not valid Unicode (a lone surrogate)"
                stack.append((f"{path}.{key}" if path else str(key), item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(value))
    return None


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
