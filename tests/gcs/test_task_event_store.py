"""The control store's task history (``gcs/task_events.py``), driven directly."""

from raggio.common.states import FINISHED, RUNNING
from raggio.gcs.table_storage import TableStorage
from raggio.gcs.task_events import TaskEventStore


def test_a_late_event_of_a_dropped_attempt_is_not_taken_back():
    store = TaskEventStore(TableStorage(), max_tasks=2)
    for ts, task_id in enumerate((b"a" * 24, b"b" * 24, b"c" * 24)):
        store.add(task_id, 0, RUNNING, float(ts))  # open attempts, reported while running
    assert store.dropped == 1  # the oldest, a's
    store.add(b"a" * 24, 0, FINISHED, 3.0)  # a's end arrives after it was dropped
    assert store.dropped == 1
    assert [record[0] for record in store.records.values()] == [b"b" * 24, b"c" * 24]
