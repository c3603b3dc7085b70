"""Validation of RPC parameters with pydantic, turned into clear JSON-RPC errors (code -32602).

* What the bootstrap refuses in *every* method's parameters before any handler runs is in ``screening``
  (without pydantic, so a plugin's start does not need it).
* ``Params`` models are strict (a JSON ``true`` is not the integer 1, ``"5"`` is not 5) and refuse unknown
  fields; ``ActionParams`` also refuses a parameter the chosen ``action`` does not read (never ignored in
  silence).
"""
from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from .errors import HiveError
from .models import Model, model_validator, parse

INVALID_PARAMS = -32602


class InvalidParams(HiveError):
    code = INVALID_PARAMS


class Params(Model):
    """Base for RPC parameter models: strict types, unknown fields refused, immutable (libhive.models' defaults;
    built into a pydantic model on first use)."""


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


P = TypeVar("P")


def validate(model: type[P], **params: Any) -> P:
    """Build ``model`` from handler arguments; ``None`` means "not given" and takes the model's default."""
    return parse(model, {k: v for k, v in params.items() if v is not None}, InvalidParams, "invalid parameters")
