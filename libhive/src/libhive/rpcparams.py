"""Validation of RPC parameters with pydantic, turned into clear JSON-RPC errors (code -32602).

* ``screen`` is what the bootstrap refuses in *every* method's parameters before any handler runs: integers
  outside SQLite's signed 64-bit range and text that is not valid Unicode.
* ``Params`` models are strict (a JSON ``true`` is not the integer 1, ``"5"`` is not 5) and refuse unknown
  fields; ``ActionParams`` also refuses a parameter the chosen ``action`` does not read (never ignored in
  silence).
"""
from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from .errors import MAX_QUOTE_CHARS, HiveError

INVALID_PARAMS = -32602
INT64_MIN, INT64_MAX = -2 ** 63, 2 ** 63 - 1


class InvalidParams(HiveError):
    code = INVALID_PARAMS


class Params(BaseModel):
    """Base for RPC parameter models: strict types, unknown fields refused, immutable."""
    model_config = ConfigDict(defer_build=True, extra="forbid", strict=True, frozen=True)


class ActionParams(Params):
    """Parameters of a method with an ``action``.  ``USES`` maps each action to the other parameters it reads;
    one given for an action that does not read it is refused, so nothing a caller sends is silently ignored."""
    USES: ClassVar[dict[str, frozenset[str]]] = {}

    @model_validator(mode="after")
    def _only_what_the_action_reads(self) -> "ActionParams":
        action = getattr(self, "action")
        unused = sorted(self.model_fields_set - {"action"} - self.USES.get(action, frozenset()))
        if unused:
            raise ValueError(f"{', '.join(unused)} {'is' if len(unused) == 1 else 'are'} not used by "
                             f"action={action}")
        return self


def uses(**actions: str) -> dict[str, frozenset[str]]:
    """``uses(get="", set_preset="preset")`` -> the ``USES`` map of an ActionParams model (``_`` in a name is
    ``-``; a trailing ``_`` is dropped, for Python keywords such as ``import_``)."""
    return {name.rstrip("_").replace("_", "-"): frozenset(fields.split()) for name, fields in actions.items()}


def one_message_or_a_listing(*listing: str) -> Any:
    """A validator for "get one by ``message_id``, or list with ``listing`` filters" methods: giving both is
    refused (the filters would be ignored)."""
    @model_validator(mode="after")
    def check(self: Any) -> Any:
        ignored = sorted(set(listing) & self.model_fields_set) if "message_id" in self.model_fields_set else []
        if ignored:
            raise ValueError(f"{', '.join(ignored)} {'is' if len(ignored) == 1 else 'are'} not used with "
                             "message_id (one message is returned)")
        return self
    return check


P = TypeVar("P", bound=BaseModel)


def describe(exc: ValidationError, root: str = "(params)", limit: int | None = 10) -> str:
    """pydantic's errors as one line a caller can act on: ``field.path: message; ...`` (``root`` names a
    problem with the whole object; at most ``limit`` errors, so untrusted input cannot produce an endless
    message).  pydantic's messages do not repeat the input; long field names are shortened."""
    errors = exc.errors()
    shown = errors[:limit] if limit else errors
    parts = []
    for e in shown:
        where = ".".join(str(p) for p in e["loc"]) or root
        message = e["msg"].removeprefix("Value error, ")      # our own validators' messages, as written
        parts.append(f"{_short(where)}: {message}")
    more = f"; ... ({len(errors) - len(shown)} more)" if len(errors) > len(shown) else ""
    return "; ".join(parts) + more


def validate(model: type[P], **params: Any) -> P:
    """Build ``model`` from handler arguments; ``None`` means "not given" and takes the model's default."""
    given = {k: v for k, v in params.items() if v is not None}
    try:
        return model.model_validate(given)
    except ValidationError as exc:
        raise InvalidParams(f"invalid parameters: {describe(exc)}") from None


def screen(params: Any) -> str | None:
    """Why the bootstrap refuses these parameters, or None.

    Refused anywhere in the parameters (nested too): an integer outside -2**63 .. 2**63-1 (lightningd passes a
    JSON number of any size through; SQLite and most handlers cannot hold it, and 2**70 would otherwise end as
    an OverflowError deep in a handler), and a string or key that is not valid Unicode (lightningd passes a
    lone surrogate escape such as "\\ud800" through; it cannot be stored, signed or sent on)."""
    stack: list[tuple[str, Any]] = [("", params)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, bool) or value is None or isinstance(value, float):
            continue
        if isinstance(value, int):
            if not INT64_MIN <= value <= INT64_MAX:
                return f"{_short(path or '(params)')}: integer out of range (-2^63 .. 2^63-1)"
        elif isinstance(value, str):
            if not _is_unicode(value):
                return f"{_short(path or '(params)')}: not valid Unicode (a lone surrogate)"
        elif isinstance(value, dict):
            for key, item in value.items():
                if not _is_unicode(str(key)):
                    return f"{_short(path or '(params)')}: a key is not valid Unicode (a lone surrogate)"
                stack.append((f"{path}.{key}" if path else str(key), item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(value))
    return None


def _short(name: str) -> str:
    """A parameter name or path as a message shows it (names are caller input too)."""
    return name if len(name) <= MAX_QUOTE_CHARS else f"{name[:MAX_QUOTE_CHARS]}... ({len(name)} chars)"


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
