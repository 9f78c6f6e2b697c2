"""The control store's task history (``gcs/task_events.py``), driven directly."""

import collections

from raggio.common.states import FINISHED, RUNNING, STATE_NAMES
from raggio.common.task_records import R_INFO
from raggio.gcs.table_storage import TableStorage
from raggio.gcs.task_events import TaskEventStore, current_state


def test_a_late_event_of_a_dropped_attempt_is_not_taken_back():
    store = TaskEventStore(TableStorage(), max_tasks=2)
    for ts, task_id in enumerate((b"a" * 24, b"b" * 24, b"c" * 24)):
        store.add(task_id, 0, RUNNING, float(ts))  # open attempts, reported while running
    assert store.dropped == 1  # the oldest, a's
    store.add(b"a" * 24, 0, FINISHED, 3.0)  # a's end arrives after it was dropped
    assert store.dropped == 1
    assert [record[0] for record in store.records.values()] == [b"b" * 24, b"c" * 24]


def test_a_page_is_newest_first_filtered_and_counts_states_under_the_other_filters():
    store = TaskEventStore(TableStorage(), max_tasks=100)
    actor = b"x" * 16
    for ts in range(6):  # tasks 0..5: even ones are the actor's calls; 0 and 1 finished
        info = {"name": f"call{ts}", "job_id": 1, "type": "ACTOR_TASK" if ts % 2 == 0
                else "NORMAL_TASK", "actor_id": actor if ts % 2 == 0 else None}
        store.add(bytes([ts]) * 24, 0, RUNNING, float(ts), info=info)
    for ts in (0, 1):
        store.add(bytes([ts]) * 24, 0, FINISHED, 10.0 + ts)

    page = store.page({}, offset=1, limit=2)
    assert [task["info"]["name"] for task in page["tasks"]] == ["call4", "call3"]
    assert page["matched"] == 6 and page["state_counts"] == {"RUNNING": 4, "FINISHED": 2}

    calls = store.page({"actor_id": actor, "state": "RUNNING"}, offset=0, limit=10)
    assert [task["info"]["name"] for task in calls["tasks"]] == ["call4", "call2"]
    # The counts are the actor's calls in every state, so the page can offer the others.
    assert calls["matched"] == 2 and calls["state_counts"] == {"RUNNING": 2, "FINISHED": 1}
    assert store.page({"name": "CALL5"}, 0, 10)["matched"] == 1
    assert store.page({"name": "call"}, 0, 10)["matched"] == 6
    assert store.page({"name_is": "call"}, 0, 10)["matched"] == 0
    assert store.page({"name_is": "Call3"}, 0, 10)["matched"] == 1


def test_state_counts_follow_changes_merges_and_evictions_without_a_scan():
    store = TaskEventStore(TableStorage(), max_tasks=3)
    info = {"name": "work", "job_id": 1}
    for ts in range(3):
        store.add(bytes([ts]) * 24, 0, RUNNING, float(ts), info=info)
    store.add(bytes([0]) * 24, 0, FINISHED, 5.0)
    assert sorted(store.state_counts()) == [["FINISHED", "work", 1, 1], ["RUNNING", "work", 1, 2]]
    # A submitter's record of attempt 1 (merged over the RUNNING its worker reported)...
    store.add(bytes([1]) * 24, 0, FINISHED, 6.0)
    # ...and a fourth attempt evicts the oldest (0, FINISHED).
    store.add(bytes([3]) * 24, 0, RUNNING, 7.0, info=info)
    assert sorted(store.state_counts()) == [["FINISHED", "work", 1, 1], ["RUNNING", "work", 1, 2]]
    scanned = collections.Counter(
        (STATE_NAMES[current_state(r)], r[R_INFO]["name"], r[R_INFO]["job_id"])
        for r in store.records.values())
    assert {tuple(row[:3]): row[3] for row in store.state_counts()} == scanned
