"""A pytest plugin that writes each test's outcome to a JSON file (``--results-json``).

The file is rewritten after every test, so a run killed part-way still leaves what it did.
Layout: ``{"tests": {nodeid: {"outcome", "message", "duration_s"}}}``, where outcome is
passed, failed (in the test), error (in a fixture, or the file did not import), skipped or
xfailed, and message is the failure's one-line summary (or the skip reason).
"""

from __future__ import annotations

import json
import os

import pytest

_MESSAGE_CHARS = 600


def pytest_addoption(parser):
    parser.addoption("--results-json", default=None,
                     help="write each test's outcome to this JSON file")


def _summary(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # a skip: (path, line, reason)
        return str(longrepr[2])
    crash = getattr(longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(longrepr or "")
    return text.strip()[:_MESSAGE_CHARS]


class ResultsRecorder:
    def __init__(self, path: str):
        self.path = path
        self.tests: dict[str, dict] = {}

    def _record(self, nodeid: str, outcome: str, message: str, duration_s: float) -> None:
        entry = self.tests.setdefault(nodeid, {"outcome": "passed", "message": "",
                                               "duration_s": 0.0})
        entry["duration_s"] = round(entry["duration_s"] + duration_s, 3)
        if entry["outcome"] == "passed" and outcome != "passed":
            entry["outcome"], entry["message"] = outcome, message

    def _write(self) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        with open(self.path + ".tmp", "w") as f:
            json.dump({"tests": self.tests}, f, indent=1)
        os.replace(self.path + ".tmp", self.path)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        """Keep the tail of a failed driver script's output (``run_string_as_driver``)."""
        outcome = yield
        output = getattr(call.excinfo.value, "output", None) if call.excinfo else None
        if isinstance(output, bytes):
            output = output.decode(errors="replace")
        if output:
            lines = [line for line in output.splitlines() if line.strip()]
            outcome.get_result().user_properties.append(("output_tail", lines[-1][:300]))

    def pytest_runtest_logreport(self, report) -> None:
        if report.failed:
            outcome = "failed" if report.when == "call" else "error"
        elif report.skipped:
            outcome = "xfailed" if hasattr(report, "wasxfail") else "skipped"
        else:
            outcome = "passed"
        message = _summary(report) if outcome != "passed" else ""
        for key, value in report.user_properties:
            if key == "output_tail":
                message += f" | output: {value}"
        self._record(report.nodeid, outcome, message, report.duration)
        if report.when == "teardown":
            self._write()

    def pytest_collectreport(self, report) -> None:
        if report.failed:
            self._record(report.nodeid, "error", _summary(report), 0.0)
            self._write()

    def pytest_sessionfinish(self) -> None:
        self._write()


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    path = config.getoption("--results-json")
    if path:
        config.pluginmanager.register(ResultsRecorder(path), "ray-results-recorder")
