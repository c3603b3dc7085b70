"""The gates read what pytest recorded, for the tree checked out now; a test that is missing, skipped, failed or
stale never counts as passed."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hive_ops import gates
from hive_ops.testrecord import Record
from hive_ops.tree import source_tree

SUITE = '''
import pytest

def test_ok():
    pass

def test_bad():
    assert 1 == 2

@pytest.mark.skip(reason="not here")
def test_skipped():
    pass

@pytest.mark.realnode
def test_real_ok():
    pass

@pytest.mark.realnode
@pytest.mark.skip(reason="no lightningd")
def test_real_skipped():
    pass

@pytest.mark.parametrize("x", ["lightningd-a b", "devnet"])
def test_param(x):
    pass
'''


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@example.invalid", "-c", "user.name=t", *args], cwd=repo, check=True,
                   capture_output=True)


@pytest.fixture
def repo(tmp_path, monkeypatch):
    monkeypatch.delenv("HIVE_TEST_RESULTS", raising=False)
    (tmp_path / "test_sample.py").write_text(SUITE)
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\nmarkers =\n    realnode: x\n")
    (tmp_path / ".gitignore").write_text(".test-results/\n__pycache__/\n")
    git(tmp_path, "init", "-q", ".")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "sample")
    return tmp_path


def run_pytest(repo: Path, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "HIVE_TEST_RESULTS"}
    subprocess.run([sys.executable, "-m", "pytest", "-q", *args], cwd=repo, env=env, capture_output=True)


def check(repo: Path, select: list[str], realnode: bool = False) -> gates.Result:
    ctx = gates.Context(repo, Record(repo, source_tree(repo)))
    return gates.check_tests(ctx, {"select": select, "realnode": realnode})


def test_outcomes_are_recorded_with_the_tree_and_the_real_node_mark(repo):
    run_pytest(repo)
    data = json.loads((repo / ".test-results" / "results.json").read_text())
    tests = data["tests"]
    assert tests["test_sample.py::test_ok"]["outcome"] == "passed"
    assert tests["test_sample.py::test_bad"]["outcome"] == "failed"
    assert tests["test_sample.py::test_skipped"]["outcome"] == "skipped"
    assert tests["test_sample.py::test_real_ok"]["realnode"] is True
    assert {t["tree"] for t in tests.values()} == {source_tree(repo).tree}
    assert data["runs"][-1]["counts"] == {"passed": 4, "failed": 1, "skipped": 2}


def test_passed_tests_pass_and_a_missing_test_is_not_found(repo):
    run_pytest(repo)
    assert check(repo, ["test_sample.py::test_ok", "test_sample.py::test_param[devnet]"]).status == gates.PASS
    assert check(repo, ["test_sample.py::test_param[lightningd-a b]"]).status == gates.PASS   # [ ] are literal
    missing = check(repo, ["test_sample.py::test_ok", "tests/not_merged_yet.py::*"])
    assert missing.status == gates.FAIL
    assert "not found: no test matches tests/not_merged_yet.py::*" in missing.evidence


def test_failed_skipped_and_real_node_requirements(repo):
    run_pytest(repo)
    assert check(repo, ["test_sample.py::test_bad"]).status == gates.FAIL
    skipped = check(repo, ["test_sample.py::test_real_*"], realnode=True)
    assert skipped.status == gates.FAIL and any("1 skipped" in line for line in skipped.evidence)
    assert check(repo, ["test_sample.py::test_real_ok"], realnode=True).status == gates.PASS
    no_real = check(repo, ["test_sample.py::test_ok"], realnode=True)
    assert no_real.status == gates.FAIL and "no real-lightningd variant among them" in no_real.evidence


def test_results_of_another_tree_do_not_count(repo):
    run_pytest(repo)
    assert check(repo, ["test_sample.py::test_ok"]).status == gates.PASS
    (repo / "README").write_text("an edit, not even committed\n")
    stale = check(repo, ["test_sample.py::test_ok"])
    assert stale.status == gates.FAIL and any("not run on this tree" in line for line in stale.evidence)
    run_pytest(repo, "test_sample.py::test_ok")            # a partial run on the new tree counts for its tests
    assert check(repo, ["test_sample.py::test_ok"]).status == gates.PASS
    assert check(repo, ["test_sample.py::test_param[devnet]"]).status == gates.FAIL


def test_the_suite_gate_needs_every_collected_test(repo):
    run_pytest(repo, "-k", "not bad and not skipped")
    ctx = gates.Context(repo, Record(repo, source_tree(repo)))
    result = gates.check_suite(ctx, {})
    assert result.status == gates.FAIL
    text = "\n".join(result.evidence)
    assert "4 of 7 collected tests passed" in text and "1 of 2 real-lightningd variants" in text


def test_outside_a_checkout_nothing_is_evaluated_as_passed(tmp_path):
    (tmp_path / "test_x.py").write_text("def test_x():\n    pass\n")
    ctx = gates.Context(tmp_path, Record(tmp_path, source_tree(tmp_path)))
    assert gates.check_tests(ctx, {"select": ["test_x.py::test_x"]}).status == gates.NOT_EVALUATED


def test_a_failing_gate_prints_its_evidence_and_exits_non_zero(repo, capsys):
    run_pytest(repo)
    (repo / "gates.toml").write_text(textwrap.dedent('''
        [[gate]]
        id = "B"
        title = "sample"
        [[gate.check]]
        name = "passes"
        kind = "tests"
        select = ["test_sample.py::test_ok"]
        [[gate.check]]
        name = "not merged yet"
        kind = "tests"
        select = ["tests/elsewhere.py::*"]
        '''))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "spec")
    run_pytest(repo)                         # the commit changed the tree: run again on it
    with pytest.raises(SystemExit) as exit_:
        gates.main(["--root", str(repo), "--spec", str(repo / "gates.toml")])
    out = capsys.readouterr().out
    assert exit_.value.code == 1
    assert "[PASS] passes" in out and "[FAIL] not merged yet" in out
    assert "not found: no test matches tests/elsewhere.py::*" in out and "Gates: B FAIL" in out


def test_a_skip_counts_only_for_a_reason_the_gate_list_accepts(repo):
    run_pytest(repo)
    assert check(repo, ["test_sample.py::test_skipped"]).status == gates.FAIL
    ctx = gates.Context(repo, Record(repo, source_tree(repo)))
    accepted = gates.check_tests(ctx, {"select": ["test_sample.py::test_ok", "test_sample.py::test_skipped"],
                                       "allowed_skips": ["not here"]})
    assert accepted.status == gates.PASS
    real = gates.check_tests(ctx, {"select": ["test_sample.py::test_real_skipped"], "allowed_skips": ["not here"]})
    assert real.status == gates.FAIL                      # "no lightningd" is not an accepted reason
