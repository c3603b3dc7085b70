"""Validation of RPC parameters with pydantic, turned into clear JSON-RPC errors (code -32602)."""
from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import HiveError

INVALID_PARAMS = -32602


class InvalidParams(HiveError):
    code = INVALID_PARAMS


class Params(BaseModel):
    """Base for RPC parameter models: strict types, unknown fields refused, immutable."""
    model_config = ConfigDict(defer_build=True, extra="forbid", strict=True, frozen=True)


P = TypeVar("P", bound=BaseModel)


def describe(exc: ValidationError, root: str = "(params)", limit: int | None = None) -> str:
    """pydantic's errors as one line a caller can act on: ``field.path: message; ...`` (``root`` names a
    problem with the whole object; ``limit`` keeps untrusted input from producing an endless message)."""
    errors = exc.errors()[:limit] if limit else exc.errors()
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or root}: {e['msg']}" for e in errors)


def validate(model: type[P], **params: Any) -> P:
    """Build ``model`` from handler arguments; ``None`` means "not given" and takes the model's default."""
    given = {k: v for k, v in params.items() if v is not None}
    try:
        return model.model_validate(given)
    except ValidationError as exc:
        raise InvalidParams(f"invalid parameters: {describe(exc)}") from None
