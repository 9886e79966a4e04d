"""Session-wide test hooks.

The interop gate: in CI (``CI=true``) or when ``SOFTPHONE_REQUIRE_INTEROP=1``, a run in which no
test marked ``interop`` passed ends with a failing exit status, so that a CI whose peers silently
went missing (every interop test skipped, or none collected) cannot look green.
``SOFTPHONE_REQUIRE_INTEROP=0`` turns the gate off explicitly (e.g. for a partial local run with CI=true).

numpy is imported here, before any test runs: a player started by a test imports it on a thread
(phone/preload.py), and pytest.approx (like hypothesis) looks numpy up in ``sys.modules`` without
importing it, so it could find the half-imported module and fail on a missing attribute.
"""

from __future__ import annotations

import os

import numpy  # noqa: F401  (see the module docstring)
import pytest


def interop_required() -> bool:
    flag = os.environ.get("SOFTPHONE_REQUIRE_INTEROP")
    if flag is not None and flag != "":
        return flag == "1"
    return os.environ.get("CI", "").lower() == "true"


class InteropGate:
    """Counts passed ``interop`` tests; fails the session when none passed and it is required."""

    def __init__(self) -> None:
        self.passed = 0
        self.seen = 0
        self.interop_ids: set[str] = set()
        self.message = ""

    @pytest.hookimpl(trylast=True)  # after -m has deselected what the run leaves out
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        # By marker, not by keyword: "interop" is also a keyword of every test in tests/interop/.
        self.interop_ids = {item.nodeid for item in items if item.get_closest_marker("interop")}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.nodeid not in self.interop_ids:
            return
        if report.when == "call":
            self.seen += 1
            if report.passed:
                self.passed += 1
        elif report.when == "setup" and not report.passed:
            self.seen += 1  # skipped or errored in a fixture (e.g. a missing peer)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        # A run that selected no interop test (`-m "not interop"`: make test runs them in a
        # pytest of their own) has nothing to gate; one that selected some needs a pass.
        if not interop_required() or self.passed > 0 or not self.interop_ids:
            return
        why = (
            f"interop gate: no test marked 'interop' passed ({self.seen} ran or were skipped/errored); "
            "CI=true or SOFTPHONE_REQUIRE_INTEROP=1 requires at least one. Install the peers with "
            "`make peers` and check the skip reasons above."
        )
        self.message = why
        if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        # Runs after pytest_sessionfinish, inside the terminal reporter's summary.
        if self.message:
            terminalreporter.section("interop gate", red=True, bold=True)
            terminalreporter.write_line(self.message, red=True)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(InteropGate(), "softphone-interop-gate")
