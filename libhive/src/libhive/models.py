"""Validation models declared like pydantic models, built into pydantic models on first use.

Importing pydantic and creating the first model costs a Hive plugin about 110 ms of CPU and 9 MB at start, while
most of the ~130 parameter, contract and message models are first needed seconds or hours later, if ever.  A
class derived from :class:`Model` is written exactly like a pydantic ``BaseModel`` (annotations, ``Field(...)``
defaults, methods, pydantic's validator decorators, a ``model_config`` dict) but stays a plain class until it is
used: the first call, instance check or attribute lookup that needs pydantic (``Model.model_validate(...)``,
``Model(...)``, ``Model.model_fields`` ...) builds the real pydantic class once, and every such use is
delegated to it.  Instances are instances of the built class (``isinstance(obj, Model)`` still holds).  A
model used inside another's annotations (``list[Member]``) is built when the outer one is.

``Field``, ``model_validator`` and ``field_validator`` here record their arguments and become pydantic's when the
model is built, so that a module declaring models does not import pydantic.  ``ValidationError`` is pydantic's, loaded on first access.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, TypeVar

# The defaults of every Hive model: strict types, unknown fields refused, immutable.  A class's own
# ``model_config`` (a plain dict) is merged over its bases'.
DEFAULT_CONFIG: dict[str, Any] = {"extra": "forbid", "strict": True, "frozen": True}
_SKIP = frozenset({"__dict__", "__weakref__", "__lazy_built__", "__lazy_config__"})
_lock = threading.RLock()


class FieldSpec:
    """The arguments of a ``Field(...)`` call, replayed into ``pydantic.Field`` when the model is built."""
    __slots__ = ("args", "kwargs")

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.args, self.kwargs = args, kwargs

    def build(self) -> Any:
        from pydantic import Field as PydanticField
        return PydanticField(*self.args, **self.kwargs)


def Field(*args: Any, **kwargs: Any) -> Any:   # noqa: N802 - the name pydantic users know
    """``pydantic.Field``, deferred: same arguments."""
    return FieldSpec(args, kwargs)


class ValidatorSpec:
    """A validator decorator call (``model_validator(mode="after")``, ``field_validator("x")``) replayed on the
    function when the model is built."""
    __slots__ = ("kind", "args", "kwargs", "fn")

    def __init__(self, kind: str, args: tuple[Any, ...], kwargs: dict[str, Any], fn: Any) -> None:
        self.kind, self.args, self.kwargs, self.fn = kind, args, kwargs, fn

    def build(self) -> Any:
        import pydantic
        return getattr(pydantic, self.kind)(*self.args, **self.kwargs)(self.fn)


def model_validator(*args: Any, **kwargs: Any) -> Any:
    """``pydantic.model_validator``, deferred: same arguments."""
    return lambda fn: ValidatorSpec("model_validator", args, kwargs, fn)


def field_validator(*args: Any, **kwargs: Any) -> Any:
    """``pydantic.field_validator``, deferred: same arguments."""
    return lambda fn: ValidatorSpec("field_validator", args, kwargs, fn)


class _LazyMeta(type):
    """Delegates what pydantic provides to the built class."""

    def built(cls) -> Any:
        """The pydantic class for this declaration (built on the first call)."""
        found = cls.__dict__.get("__lazy_built__")
        if found is not None:
            return found
        with _lock:
            found = cls.__dict__.get("__lazy_built__")
            if found is None:
                found = _build(cls)
                type.__setattr__(cls, "__lazy_built__", found)
            return found

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls.built()(*args, **kwargs)

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return getattr(cls.built(), name)

    def __instancecheck__(cls, obj: Any) -> bool:
        return type.__instancecheck__(cls, obj) or isinstance(obj, cls.built())

    def __subclasscheck__(cls, sub: Any) -> bool:
        return type.__subclasscheck__(cls, sub) or (isinstance(sub, type) and issubclass(sub, cls.built()))


class Model(metaclass=_LazyMeta):
    """Base of every Hive validation model (see the module docstring)."""

    @classmethod
    def field_names(cls) -> list[str]:
        """The fields, in pydantic's order (bases first), read from the declaration: nothing is built."""
        names: list[str] = []
        for klass in reversed(cls.__mro__):
            for name, annotation in klass.__dict__.get("__annotations__", {}).items():
                if "ClassVar" not in str(annotation) and not name.startswith("_") and name not in names:
                    names.append(name)
        return names

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        return handler(cls.built())        # used inside another model's annotations: validate as the built one


def _build(cls: type) -> Any:
    from pydantic import BaseModel, ConfigDict

    lazy_bases = [b for b in cls.__bases__ if isinstance(b, _LazyMeta) and b is not Model]
    if len(lazy_bases) != len(cls.__bases__) - (Model in cls.__bases__):
        raise TypeError(f"{cls.__name__}: a Hive model may only derive from other Hive models")
    bases = tuple(b.built() for b in lazy_bases) or (BaseModel,)
    config: dict[str, Any] = {} if lazy_bases else dict(DEFAULT_CONFIG)
    config.update(cls.__dict__.get("model_config") or {})
    namespace: dict[str, Any] = {}
    for key, value in cls.__dict__.items():
        if key in _SKIP or key == "model_config":
            continue
        namespace[key] = value.build() if isinstance(value, (FieldSpec, ValidatorSpec)) else value
    namespace["model_config"] = ConfigDict(**config)
    namespace.pop("__get_pydantic_core_schema__", None)
    built = type(BaseModel)(cls.__name__, bases, namespace)
    # string annotations (from __future__ import annotations) resolve in the declaring module, where other
    # models are the lazy declarations: their __get_pydantic_core_schema__ hands over the built ones
    built.model_rebuild(_types_namespace=_module_namespace(cls))
    return built


def _module_namespace(cls: type) -> dict[str, Any]:
    import sys
    module = sys.modules.get(cls.__module__)
    return dict(vars(module)) if module else {}


def describe(exc: Any, root: str = "(params)", limit: int | None = 10) -> str:
    """A pydantic ``ValidationError`` as one line a caller can act on: ``field.path: message; ...`` (``root``
    names a problem with the whole object; at most ``limit`` errors, so untrusted input cannot produce an endless
    message).  pydantic's messages do not repeat the input; long field names are shortened."""
    from .errors import short_name
    errors = exc.errors()
    shown = errors[:limit] if limit else errors
    parts = []
    for e in shown:
        where = ".".join(str(p) for p in e["loc"]) or root
        message = e["msg"].removeprefix("Value error, ")      # our own validators' messages, as written
        parts.append(f"{short_name(where)}: {message}")
    more = f"; ... ({len(errors) - len(shown)} more)" if len(errors) > len(shown) else ""
    return "; ".join(parts) + more


M = TypeVar("M")


def parse(model: type[M], data: Any, error: Callable[[str], Exception], what: str, root: str = "(params)",
          limit: int | None = 10) -> M:
    """``model.model_validate(data)``, or ``error(f"{what}: <describe>")`` raised (never pydantic's own error):
    the one way a plugin turns untrusted data into a model."""
    from pydantic import ValidationError
    try:
        return model.model_validate(data)          # type: ignore[attr-defined]
    except ValidationError as exc:
        raise error(f"{what}: {describe(exc, root, limit)}") from None


def __getattr__(name: str) -> Any:
    if name == "ValidationError":
        from pydantic import ValidationError
        return ValidationError
    raise AttributeError(f"module 'libhive.models' has no attribute {name!r}")
