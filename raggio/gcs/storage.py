"""Where the control store keeps its tables: in memory, in a SQLite file, or in Redis.

Each backend stores ``(table, key) -> value`` records, with bytes keys and
values, and offers the same calls (``put``, ``get``, ``delete``, ``items``,
``close``, and ``put_many``/``delete_many`` for a batch in one transaction), so the control store writes through to any of them and
reloads its tables from them at start. ``open_storage`` picks the backend from
a URL: ``memory``, a file path or ``sqlite:///path``, or ``redis://host:port``.
A file that is not a raggio store, or a Redis that cannot be reached, raises
``ValueError`` at once, and the file is left as it was. The store holds the cluster token
(``head.cluster_token``): a SQLite store's files, and its backups, are readable by their
owner only (0600), as ``<session dir>/token`` is.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Iterable


class MemoryStorage:
    """Records in a dict: gone when the process ends."""

    def __init__(self):
        self._tables: dict[str, dict[bytes, bytes]] = {}

    def put(self, table: str, key: bytes, value: bytes) -> None:
        self._tables.setdefault(table, {})[key] = value

    def get(self, table: str, key: bytes) -> bytes | None:
        return self._tables.get(table, {}).get(key)

    def delete(self, table: str, key: bytes) -> None:
        self._tables.get(table, {}).pop(key, None)

    def put_many(self, table: str, items: list[tuple[bytes, bytes]]) -> None:
        self._tables.setdefault(table, {}).update(items)

    def delete_many(self, table: str, keys: list[bytes]) -> None:
        for key in keys:
            self.delete(table, key)

    def items(self, table: str) -> list[tuple[bytes, bytes]]:
        return list(self._tables.get(table, {}).items())

    def close(self) -> None:
        pass


_SCHEMA = "CREATE TABLE IF NOT EXISTS records (tbl TEXT, key BLOB, value BLOB, PRIMARY KEY (tbl, key))"
_OWNER_ONLY = 0o600


def _create_private(path: str) -> None:
    """Make ``path`` a file only its owner reads (creating it empty, which SQLite takes for
    an empty database), and its ``-wal`` and ``-shm`` too where they are: SQLite creates
    those with the main file's mode, and would create the main file 0644."""
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT, _OWNER_ONLY))
    for name in (path, path + "-wal", path + "-shm"):
        try:
            os.chmod(name, _OWNER_ONLY)
        except FileNotFoundError:
            pass  # no -wal or -shm yet
        except PermissionError:
            pass  # another user's file, shared on purpose: its owner chose its mode


class SqliteStorage:
    """Records in one SQLite file (WAL mode): survives restarts of the control store."""

    def __init__(self, path: str):
        self.path = path
        if os.path.exists(path):
            _check_sqlite_file(path)
        _create_private(path)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes
        self._db.execute(_SCHEMA)

    def put(self, table: str, key: bytes, value: bytes) -> None:
        self._db.execute("INSERT OR REPLACE INTO records VALUES (?, ?, ?)", (table, key, value))

    def get(self, table: str, key: bytes) -> bytes | None:
        row = self._db.execute("SELECT value FROM records WHERE tbl=? AND key=?",
                               (table, key)).fetchone()
        return None if row is None else row[0]

    def delete(self, table: str, key: bytes) -> None:
        self._db.execute("DELETE FROM records WHERE tbl=? AND key=?", (table, key))

    def put_many(self, table: str, items: list[tuple[bytes, bytes]]) -> None:
        with self._db:  # one transaction
            self._db.executemany("INSERT OR REPLACE INTO records VALUES (?, ?, ?)",
                                 [(table, key, value) for key, value in items])

    def delete_many(self, table: str, keys: list[bytes]) -> None:
        with self._db:
            self._db.executemany("DELETE FROM records WHERE tbl=? AND key=?",
                                 [(table, key) for key in keys])

    def items(self, table: str) -> list[tuple[bytes, bytes]]:
        return self._db.execute("SELECT key, value FROM records WHERE tbl=?",
                                (table,)).fetchall()

    def backup(self, destination: str) -> None:
        """A consistent copy of the whole store, taken while it runs."""
        _create_private(destination)
        target = sqlite3.connect(destination)
        try:
            self._db.backup(target)
        finally:
            target.close()

    def close(self) -> None:
        self._db.close()


def _check_sqlite_file(path: str) -> None:
    """Refuse a file that is not a readable raggio store, without writing to it."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = {row[0] for row in db.execute(
                "SELECT name FROM sqlite_master WHERE type='table'")}
            if tables and "records" not in tables:
                raise ValueError(f"{path} is a SQLite database but not a raggio control store "
                                 f"(its tables: {sorted(tables)}).")
            if tables:
                db.execute("SELECT count(*) FROM records").fetchone()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise ValueError(
            f"The control-store file {path} cannot be read ({exc}). It was left untouched: "
            "restore it from a backup (`raggio restore FILE`), or move it away to start with "
            "an empty store.") from exc


class RedisStorage:
    """Records in Redis hashes, one per table: for a control store that moves between hosts."""

    def __init__(self, url: str, prefix: str = "raggio"):
        try:
            import redis
        except ImportError:
            raise ValueError("The Redis backend needs the redis client: "
                             "pip install 'raggio[redis]'.") from None
        self._prefix = prefix
        self._client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10)
        try:
            self._client.ping()
        except redis.RedisError as exc:
            raise ValueError(f"Cannot reach Redis at {url} ({exc}). Start it, or pass the right "
                             "--storage address.") from exc

    def _hash(self, table: str) -> str:
        return f"{self._prefix}:{table}"

    def put(self, table: str, key: bytes, value: bytes) -> None:
        self._client.hset(self._hash(table), key, value)

    def get(self, table: str, key: bytes) -> bytes | None:
        return self._client.hget(self._hash(table), key)

    def delete(self, table: str, key: bytes) -> None:
        self._client.hdel(self._hash(table), key)

    def put_many(self, table: str, items: list[tuple[bytes, bytes]]) -> None:
        if items:
            self._client.hset(self._hash(table), mapping=dict(items))

    def delete_many(self, table: str, keys: list[bytes]) -> None:
        if keys:
            self._client.hdel(self._hash(table), *keys)

    def items(self, table: str) -> list[tuple[bytes, bytes]]:
        return list(self._client.hgetall(self._hash(table)).items())

    def close(self) -> None:
        self._client.close()


def open_storage(url: str | None):
    """The backend a ``--storage`` URL names (memory when None or "memory")."""
    if not url or url == "memory":
        return MemoryStorage()
    if url.startswith("redis://") or url.startswith("rediss://"):
        return RedisStorage(url)
    path = url.removeprefix("sqlite://")
    return SqliteStorage(os.path.abspath(path))


def copy_records(source, destination, tables: Iterable[str]) -> int:
    """Copy every record of ``tables`` (for backup and restore); return how many."""
    count = 0
    for table in tables:
        for key, value in source.items(table):
            destination.put(table, key, value)
            count += 1
    return count
