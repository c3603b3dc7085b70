"""cl-hive-archon's unit tests use the gatekeeper stand-in in the repository's tests/archon_gatekeeper."""
import sys
from pathlib import Path

TESTS = str(Path(__file__).resolve().parents[2] / "tests")
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)
