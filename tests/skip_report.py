"""pytest plugin (loaded by the root conftest.py): skipped tests are visible, and a skipped
FER2013 slice test fails the run when the FER2013 data directory exists.

* At the end of the run, one line: `skipped: 3 (reason A: 2; reason B: 1)`.
* tests/fer2013_data_test.py::test_fer2013_slice_ingests_cleanly_and_decodes skips when the
  archives are not there. That is fine on a machine without the data, but when the directory
  tests/fer2013.FER2013_DIR exists (archives missing, unreadable, or the test skipped for any
  other reason) a skip would hide that the real-data test did not run: the run fails, with a
  one-line reason. A deselected test (not collected: a subset of paths, `-k`, `-m`) is not a
  skip and does not count.
"""
from __future__ import annotations

import collections
import os
from typing import Iterable, List, Tuple

import pytest

from tests import fer2013

FER2013_SLICE_TEST = ("tests/fer2013_data_test.py::"
                      "test_fer2013_slice_ingests_cleanly_and_decodes")


def skip_reason(report: pytest.TestReport) -> str:
    """The reason of a skipped test report, without pytest's 'Skipped: ' prefix."""
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return reason[len("Skipped: "):] if reason.startswith("Skipped: ") else reason


def skipped_summary(skipped: Iterable[Tuple[str, str]]) -> str:
    """One line for (node id, reason) pairs: `skipped: N (reason: n; ...)`, most common
    first; '' when nothing was skipped."""
    by_reason = collections.Counter(reason for _, reason in skipped)
    total = sum(by_reason.values())
    if not total:
        return ""
    reasons = "; ".join(f"{reason}: {n}" for reason, n in by_reason.most_common())
    return f"skipped: {total} ({reasons})"


def skip_rule_failures(skipped: Iterable[Tuple[str, str]], data_dir_exists: bool,
                       data_dir: str = fer2013.FER2013_DIR) -> List[str]:
    """One-line failures for skips that must not pass quietly: the FER2013 slice test skipped
    while the FER2013 directory exists. `skipped`: (node id, reason) of the tests that were
    collected and skipped."""
    if not data_dir_exists:
        return []
    return [f"{nodeid} was skipped although {data_dir} exists ({reason}): put the archives "
            f"{', '.join(fer2013.ARCHIVES)} there, readable, or remove the directory"
            for nodeid, reason in skipped if nodeid == FER2013_SLICE_TEST]


class _SkipReport:
    """Collects the skipped tests of a run (as (node id, reason)) and applies the rule."""

    def __init__(self):
        self.skipped: List[Tuple[str, str]] = []
        self.failures: List[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # A skip is reported by the phase that skipped (normally setup); an xfail is no skip.
        if report.skipped and not hasattr(report, "wasxfail"):
            self.skipped.append((report.nodeid, skip_reason(report)))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.failures = skip_rule_failures(self.skipped, os.path.isdir(fer2013.FER2013_DIR),
                                           fer2013.FER2013_DIR)
        if self.failures and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter) -> None:
        line = skipped_summary(self.skipped)
        if line:
            terminalreporter.write_line(line, yellow=True)
        for failure in self.failures:
            terminalreporter.write_line(f"FAILED (skip rule): {failure}", red=True, bold=True)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_SkipReport(), "fer_skip_report")
