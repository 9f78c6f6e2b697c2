"""One conformance suite for every control-store backend: memory, SQLite, a real Redis."""

import os
import shutil
import socket
import sqlite3
import stat
import subprocess
import time

import pytest

from raggio.config import get_config
from raggio.gcs.storage import MemoryStorage, RedisStorage, SqliteStorage, open_storage
from raggio.gcs.table_storage import TableStorage
from raggio.launch import wait_ready
from raggio.node_spec import NodeSpec


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def redis_url(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (.ci/run installs it)")
    port = _free_port()
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                               "--save", "", "--dir", str(workdir)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 30
    while True:
        try:
            RedisStorage(url).close()
            break
        except ValueError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise
            time.sleep(0.05)
    yield url
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def make_storage(request, tmp_path):
    """A factory: calling it twice gives two clients of the same store."""
    if request.param == "memory":
        storage = MemoryStorage()
        yield lambda: storage
    elif request.param == "sqlite":
        path = str(tmp_path / "store.sqlite")
        opened = []
        yield lambda: opened.append(SqliteStorage(path)) or opened[-1]
        for storage in opened:
            storage.close()
    else:
        url = request.getfixturevalue("redis_url")
        first = RedisStorage(url)
        first._client.flushdb()
        opened = [first]
        yield lambda: opened.pop() if opened else RedisStorage(url)


def test_put_get_delete_items(make_storage):
    storage = make_storage()
    storage.put("kv", b"a", b"1")
    storage.put("kv", b"b", b"2")
    storage.put("jobs", b"a", b"other table")
    storage.put("kv", b"a", b"1 again")
    assert storage.get("kv", b"a") == b"1 again"
    assert storage.get("kv", b"missing") is None
    assert sorted(storage.items("kv")) == [(b"a", b"1 again"), (b"b", b"2")]
    storage.delete("kv", b"a")
    storage.delete("kv", b"never there")
    assert storage.items("kv") == [(b"b", b"2")]
    assert storage.items("jobs") == [(b"a", b"other table")]
    assert storage.items("empty") == []


def test_a_second_client_sees_the_records(make_storage):
    first = make_storage()
    TableStorage(first).save("actors", b"\x01" * 16, {"state": "ALIVE", "spec": {"x": [1, b"y"]}})
    second = TableStorage(make_storage())
    assert second.load("actors") == [{"state": "ALIVE", "spec": {"x": [1, b"y"]}}]


def test_a_corrupt_sqlite_file_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "store.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="cannot be read.*left untouched"):
        open_storage(str(path))
    assert path.read_bytes() == before


def test_another_programs_sqlite_file_is_refused(tmp_path):
    path = str(tmp_path / "theirs.sqlite")
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE invoices (id INTEGER)")
    db.commit()
    db.close()
    with pytest.raises(ValueError, match="not a raggio control store"):
        open_storage(path)


def test_an_unreachable_redis_is_a_clear_error():
    port = _free_port()  # nothing listens there
    with pytest.raises(ValueError, match=f"Cannot reach Redis at redis://127.0.0.1:{port}"):
        open_storage(f"redis://127.0.0.1:{port}")


def test_sqlite_backup_is_a_complete_copy(tmp_path):
    source = SqliteStorage(str(tmp_path / "a.sqlite"))
    source.put("kv", b"k", b"v")
    source.backup(str(tmp_path / "b.sqlite"))
    copy = SqliteStorage(str(tmp_path / "b.sqlite"))
    assert copy.items("kv") == [(b"k", b"v")]
    source.close()
    copy.close()
    assert os.path.getsize(tmp_path / "b.sqlite") > 0
    assert stat.S_IMODE(os.stat(tmp_path / "b.sqlite").st_mode) == 0o600  # it has the token


def test_a_sqlite_store_s_files_are_its_owner_s_only(tmp_path):
    # The store holds the cluster token, as <session dir>/token (0600) does.
    path = str(tmp_path / "store.sqlite")
    head = NodeSpec(head=True, no_node=True, tied=True, storage=path,
                    temp_dir=str(tmp_path)).start_process(umask=0o022)
    try:
        wait_ready(head, get_config().head_start_timeout_s, "the head")  # it stored the token
        files = sorted(name for name in os.listdir(tmp_path) if name.startswith("store.sqlite"))
        assert files == ["store.sqlite", "store.sqlite-shm", "store.sqlite-wal"]
        modes = {name: oct(stat.S_IMODE(os.stat(tmp_path / name).st_mode)) for name in files}
        assert set(modes.values()) == {"0o600"}, modes
    finally:
        head.stdin.close()  # tied: it exits
        head.wait(timeout=30)
        head.stdout.close()
