"""libhive.models: declared like pydantic models, built on first use, behaving as the built pydantic class."""
from __future__ import annotations

import subprocess
import sys
from typing import Literal

import pytest

from libhive.models import Field, Model


class Inner(Model):
    present: bool
    path: str | None = None


class Outer(Model):
    model_config = {"extra": "allow"}
    kind: Literal["a", "b"]
    inner: dict[str, Inner]
    n: int = Field(0, ge=0, le=10)

    def doubled(self) -> int:
        return self.n * 2


class Child(Outer):
    tag: str = Field("x", max_length=3)


def test_declaring_models_does_not_import_pydantic():
    code = ("import sys\nfrom libhive.models import Field, Model\n"
            "class M(Model):\n    a: int = Field(1, ge=0)\n"
            "assert 'pydantic' not in sys.modules, 'pydantic imported at declaration'\n"
            "assert M.model_validate({'a': 2}).a == 2 and 'pydantic' in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_validation_nesting_methods_and_instance_checks():
    o = Outer.model_validate({"kind": "a", "inner": {"x": {"present": True}}, "n": 3, "other": 1})
    assert o.doubled() == 6 and o.model_extra == {"other": 1}
    assert isinstance(o, Outer) and isinstance(o.inner["x"], Inner)
    c = Child(kind="b", inner={}, n=1)
    assert isinstance(c, Outer) and isinstance(c, Child) and c.tag == "x"
    assert list(Child.model_fields) == ["kind", "inner", "n", "tag"]


def test_strict_forbid_frozen_and_field_constraints_hold():
    from libhive.models import ValidationError
    with pytest.raises(ValidationError):
        Inner.model_validate({"present": 1})                    # strict: no int for bool
    with pytest.raises(ValidationError):
        Inner.model_validate({"present": True, "nope": 1})      # unknown field
    with pytest.raises(ValidationError):
        Outer.model_validate({"kind": "a", "inner": {}, "n": 11})
    with pytest.raises(ValidationError):
        Child.model_validate({"kind": "a", "inner": {}, "tag": "long"})
    i = Inner(present=True)
    with pytest.raises(ValidationError):
        i.present = False                                        # frozen


def test_a_model_may_only_derive_from_models():
    class NotAModel:
        pass

    class Bad(Model, NotAModel):
        a: int
    with pytest.raises(TypeError, match="only derive from other Hive models"):
        Bad.model_validate({"a": 1})


def test_deferred_validators_run_as_pydantic_ones():
    from libhive.models import ValidationError, field_validator, model_validator

    class Pair(Model):
        low: int
        high: int

        @field_validator("low")
        @classmethod
        def _not_negative(cls, v: int) -> int:
            if v < 0:
                raise ValueError("low must not be negative")
            return v

        @model_validator(mode="after")
        def _ordered(self) -> "Pair":
            if self.low > self.high:
                raise ValueError("low above high")
            return self

    assert Pair.model_validate({"low": 1, "high": 2}).high == 2
    for bad in ({"low": -1, "high": 2}, {"low": 3, "high": 2}):
        with pytest.raises(ValidationError):
            Pair.model_validate(bad)


def test_field_names_come_from_the_declaration_in_pydantics_order():
    assert Child.field_names() == ["kind", "inner", "n", "tag"] == list(Child.model_fields)
