"""Why a test that passes on Ray fails on raggio: a table read from the failures, plus rules.

``classify(test_id, entry)`` returns ``(area, reason)``. ``area`` is ``"internal"`` when the
test reads Ray's internals (a fair reason to fail on raggio), otherwise the raggio area the
gap belongs to. A failure that neither the table nor a rule explains counts as public, with
its own message as the reason.
"""

from __future__ import annotations

#: test id (file::name, parameters included) -> (area, reason), from reading the failure.
TABLE: dict[str, tuple[str, str]] = {}

#: (substring of the failure message, area, reason), tried in order when the id is not in TABLE.
RULES: list[tuple[str, str, str]] = [
    ("internal:", "internal", "uses Ray internals (stubbed by the shim)"),
]


def classify(test_id: str, entry: dict) -> tuple[str, str]:
    if test_id in TABLE:
        return TABLE[test_id]
    message = entry.get("message", "")
    for needle, area, reason in RULES:
        if needle in message:
            return area, reason
    first_line = message.splitlines()[0] if message else entry.get("outcome", "")
    return "unclassified", first_line[:160]
