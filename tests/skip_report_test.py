"""The skip report (tests/skip_report.py): one summary line of skips, and a skipped FER2013
slice test fails the run while the FER2013 directory exists."""
import os
import textwrap

import pytest

from tests import fer2013, skip_report

pytest_plugins = ["pytester"]

SLICE = skip_report.FER2013_SLICE_TEST
ABSENT = "FER2013 archives not found in /x"


def test_summary_is_one_line_grouped_by_reason():
    line = skip_report.skipped_summary([("a::t1", "no GPU"), ("b::t2", ABSENT),
                                        ("b::t3", ABSENT)])
    assert line == f"skipped: 3 ({ABSENT}: 2; no GPU: 1)"
    assert skip_report.skipped_summary([]) == ""


def test_rule_fires_only_for_the_slice_test_skipped_while_the_directory_exists():
    skipped = [(SLICE, ABSENT), ("tests/other_test.py::t", "no GPU")]
    (failure,) = skip_report.skip_rule_failures(skipped, data_dir_exists=True, data_dir="/d")
    assert failure.startswith(f"{SLICE} was skipped although /d exists ({ABSENT})")
    assert "\n" not in failure
    assert skip_report.skip_rule_failures(skipped, data_dir_exists=False) == []
    assert skip_report.skip_rule_failures(skipped[1:], data_dir_exists=True) == []
    assert skip_report.skip_rule_failures([], data_dir_exists=True) == []


def test_a_directory_without_readable_archives_is_not_available(tmp_path, monkeypatch):
    monkeypatch.setattr(fer2013, "FER2013_DIR", str(tmp_path))
    assert not fer2013.available()
    assert fer2013.missing_archives() == list(fer2013.ARCHIVES)
    for name in fer2013.ARCHIVES:
        (tmp_path / name).write_bytes(b"")
    assert fer2013.available()
    os.chmod(tmp_path / fer2013.ARCHIVES[0], 0)
    if not os.access(tmp_path / fer2013.ARCHIVES[0], os.R_OK):  # root reads anything
        assert fer2013.missing_archives() == [fer2013.ARCHIVES[0]]


SLICE_TEST_FILE = textwrap.dedent(f"""
    import pytest
    from tests import fer2013

    pytestmark = pytest.mark.skipif(not fer2013.available(), reason="{ABSENT}")

    def test_fer2013_slice_ingests_cleanly_and_decodes():
        pass
    """)


@pytest.fixture
def run(pytester, monkeypatch, tmp_path):
    """Runs pytest (in process, with the plugin) on a stand-in tests/fer2013_data_test.py
    whose slice test skips unless the archives are there; `data_dir`: 'absent', 'empty' (the
    directory without archives) or 'full'."""
    pytester.makepyfile(**{"tests/fer2013_data_test": SLICE_TEST_FILE,
                           "tests/other_test": "def test_other():\n    pass\n"})

    def run(data_dir, *args):
        path = tmp_path / "fer2013"
        if data_dir != "absent":
            path.mkdir(exist_ok=True)
        if data_dir == "full":
            for name in fer2013.ARCHIVES:
                (path / name).write_bytes(b"")
        monkeypatch.setattr(fer2013, "FER2013_DIR", str(path))
        return pytester.runpytest_inprocess("-p", "tests.skip_report", *args)
    return run


def test_skipped_slice_test_fails_the_run_while_the_directory_exists(run):
    result = run("empty")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines([f"skipped: 1 ({ABSENT}: 1)",
                                 f"FAILED (skip rule): {SLICE} was skipped although *"])


def test_skipped_slice_test_passes_without_the_directory(run):
    result = run("absent")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines([f"skipped: 1 ({ABSENT}: 1)"])
    result.stdout.no_fnmatch_line("*skip rule*")


def test_deselected_or_run_slice_test_does_not_trip_the_rule(run):
    assert run("empty", "tests/other_test.py").ret == pytest.ExitCode.OK
    assert run("empty", "-k", "other").ret == pytest.ExitCode.OK
    result = run("full")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("skipped:*")
