"""Writing the control store's tables through to storage, and reading them back.

The tables (internal KV, jobs, nodes, actors, placement groups, task
history) live in memory in their owners (``GcsServer``, ``ActorDirectory``,
``PlacementGroupTable``, ``TaskEventStore``); each change is also written here, msgpack-encoded,
to the storage backend (``gcs/storage.py``). A control store that starts on
a store with records in it reloads them (``load``) and recovers: see
``GcsServer.recover``.
"""

from __future__ import annotations

import msgpack

from raggio.gcs.storage import MemoryStorage

TABLES = ("cluster", "kv", "jobs", "nodes", "actors", "placement_groups", "task_events",
          "task_events_meta")


def _key(key) -> bytes:
    if isinstance(key, bytes):
        return key
    if isinstance(key, int):
        return key.to_bytes(8, "big")
    return str(key).encode()


class TableStorage:
    """See the module docstring."""

    def __init__(self, storage=None):
        self.storage = storage if storage is not None else MemoryStorage()

    @property
    def durable(self) -> bool:
        return not isinstance(self.storage, MemoryStorage)

    def save(self, table: str, key, record) -> None:
        value = record if table == "kv" else msgpack.packb(record, use_bin_type=True)
        self.storage.put(table, _key(key), value)

    def delete(self, table: str, key) -> None:
        self.storage.delete(table, _key(key))

    def save_many(self, table: str, records: list[tuple]) -> None:
        """Several ``(key, record)`` at once (one transaction where the backend has them)."""
        if records:
            self.storage.put_many(table, [(_key(key), msgpack.packb(record, use_bin_type=True))
                                          for key, record in records])

    def delete_many(self, table: str, keys: list) -> None:
        if keys:
            self.storage.delete_many(table, [_key(key) for key in keys])

    def load(self, table: str) -> list:
        """The table's records (for kv: (key, value) pairs)."""
        rows = self.storage.items(table)
        if table == "kv":
            return [(key.decode(), value) for key, value in rows]
        return [msgpack.unpackb(value, raw=False, strict_map_key=False) for _, value in rows]

    def close(self) -> None:
        self.storage.close()
