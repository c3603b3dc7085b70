import subprocess
import sys

import pytest

from libhive.lazy import lazy_import


def test_lazy_module_imports_on_first_attribute_access() -> None:
    code = ("import sys; from libhive.lazy import lazy_import; m = lazy_import('fractions'); "
            "before = 'fractions' in sys.modules; print(before, m.Fraction(1, 2), 'fractions' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "1/2", "True"]


def test_lazy_module_is_read_only_and_reports_missing_names() -> None:
    m = lazy_import("json")
    with pytest.raises(AttributeError):
        m.dumps = None
    with pytest.raises(AttributeError):
        m.no_such_name  # noqa: B018
    assert m.module() is sys.modules["json"]
