"""The head process: control store and node manager on one event loop.

``init()`` with no cluster to join runs ``python -m raggio.head`` tied to the
driver: the head prints one JSON line with its addresses when it is ready
and exits when the driver's pipe (its stdin) closes. Both servers keep their
own RPC surfaces and talk over loopback, as on a multi-node cluster; sharing
a process saves a Python interpreter (~30 MB and ~100 ms of start-up).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import signal
import sys

from raggio.config import get_config
from raggio.gcs.server import GcsServer
from raggio.node.manager import NodeManager, NodeOptions
from raggio.node.node_info import default_resources, new_session_dir


async def run_head(args: argparse.Namespace) -> None:
    token = get_config().auth_token or secrets.token_hex(16)
    session_dir, session_name = new_session_dir(args.temp_dir)
    token_path = os.path.join(session_dir, "token")
    fd = os.open(token_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token)
    resources, object_store_memory = default_resources(
        num_cpus=args.num_cpus, num_gpus=args.num_gpus, resources=json.loads(args.resources),
        object_store_memory=args.object_store_memory, node_ip=args.node_ip, is_head=True)
    gcs = GcsServer(listen=f"{args.node_ip}:{args.port}", token=token, session_dir=session_dir)
    await gcs.start()
    node = NodeManager(NodeOptions(
        node_id=os.urandom(28), node_ip=args.node_ip, gcs_address=gcs.address, token=token,
        session_dir=session_dir, session_name=session_name, resources=resources,
        object_store_memory=object_store_memory, is_head=True))
    try:
        await node.start()
        ready = {"gcs_address": gcs.address, "node_address": node.local_server.address,
                 "session_dir": session_dir, "token": token, "pid": os.getpid()}
        sys.stdout.write(json.dumps(ready) + "\n")
        sys.stdout.flush()
        await _wait_for_exit(args.tied)
    finally:
        await node.close()
        await gcs.close()


async def _wait_for_exit(tied: bool) -> None:
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    if tied:
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

        async def watch_parent():
            await reader.read()  # returns at EOF: the driver is gone
            if not stop.done():
                stop.set_result(None)
        watcher = loop.create_task(watch_parent())
        try:
            await stop
        finally:
            watcher.cancel()
    else:
        await stop


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m raggio.head")
    parser.add_argument("--node-ip", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--num-cpus", type=float, default=None)
    parser.add_argument("--num-gpus", type=float, default=None)
    parser.add_argument("--resources", default="{}")
    parser.add_argument("--object-store-memory", type=int, default=None)
    parser.add_argument("--temp-dir", default="/tmp/raggio")
    parser.add_argument("--tied", action="store_true",
                        help="exit when stdin closes (a private head owned by a driver)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=get_config().logging_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        import uvloop
        uvloop.run(run_head(args))
    except ImportError:
        asyncio.run(run_head(args))


if __name__ == "__main__":
    main()
