"""Building the node manager or the control store touches nothing: no file, no port, no
pages in /dev/shm until ``start()``. So a test, the launcher or the autoscaler can build one,
read its settings and drop it without cleaning up after it."""

import asyncio
import dataclasses
import glob
import os
import socket

from raggio.config import get_config
from raggio.gcs.server import GcsServer
from raggio.gcs.storage import open_storage
from raggio.node.manager import NodeManager, NodeOptions


def _options(session_dir: str) -> NodeOptions:
    return NodeOptions(node_id=os.urandom(28), node_ip="127.0.0.1", gcs_address="127.0.0.1:1",
                       token="t", session_dir=session_dir, session_name="session_test",
                       resources={"CPU": 1.0}, object_store_memory=64 << 20)


def test_a_node_manager_writes_nothing_until_it_starts(tmp_path):
    session_dir = tmp_path / "session"
    arenas_before = set(glob.glob("/dev/shm/raggio-*"))

    async def build():  # it makes futures of its loop, so it is built on one
        return NodeManager(_options(str(session_dir)), get_config())

    node = asyncio.run(build())
    assert not session_dir.exists()
    assert set(glob.glob("/dev/shm/raggio-*")) == arenas_before
    assert not os.path.exists(node.store.path)
    node.store.close()  # closing a store never opened is a no-op


def test_a_node_manager_that_could_not_start_leaves_no_arena(tmp_path):
    """Its control store is unreachable: start() fails, close() removes what start made."""
    cfg = dataclasses.replace(get_config(), connect_timeout_s=1.0)

    async def start_then_close():
        node = NodeManager(_options(str(tmp_path / "session")), cfg)
        arena.append(node.store.path)
        try:
            await node.start()
        except Exception as error:
            return error
        finally:
            await node.close()

    arena = []
    assert asyncio.run(start_then_close()) is not None
    assert not os.path.exists(arena[0])


def test_a_control_store_binds_nothing_until_it_starts(tmp_path):
    with socket.socket() as probe:  # a free port, to see whether the constructor takes it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    session_dir = tmp_path / "session"
    GcsServer(listen=f"127.0.0.1:{port}", token="t", session_dir=str(session_dir),
              storage=open_storage(None), cfg=get_config())
    assert not session_dir.exists()
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))
