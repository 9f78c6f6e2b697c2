"""A node manager process: ``python -m raggio.node.main``.

Runs one node manager (with its zygote and workers) that joins the control
store at ``--gcs-address``. ``raggio start --address=...`` and
``cluster_utils.Cluster.add_node`` start it; the head process reuses the
argument and start-up helpers here; ``raggio start --head`` starts it with
``--gcs-address=-`` beside the control store and sends it the address and
token on stdin once the control store is up. When ready it prints one JSON line on
stdout (its addresses); it exits on SIGTERM, or when stdin closes if
``--tied`` (a node owned by the process that started it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys

from raggio.config import get_config
from raggio.exceptions import RayError
from raggio.launch import print_ready
from raggio.node.manager import NodeManager, NodeOptions
from raggio.node.node_info import default_labels, default_resources, new_session_dir


def add_node_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--node-ip", default="127.0.0.1")
    parser.add_argument("--num-cpus", type=float, default=None)
    parser.add_argument("--num-gpus", type=float, default=None)
    parser.add_argument("--resources", default="{}")
    parser.add_argument("--labels", default="{}")
    parser.add_argument("--memory", type=int, default=None)
    parser.add_argument("--object-store-memory", type=int, default=None)
    parser.add_argument("--temp-dir", default=get_config().temp_dir)
    parser.add_argument("--session-dir", default=None,
                        help="use this session directory instead of making a new one")
    parser.add_argument("--tied", action="store_true",
                        help="exit when stdin closes (a node owned by the process that started it)")


def session_for(args: argparse.Namespace) -> tuple[str, str]:
    if args.session_dir:
        os.makedirs(os.path.join(args.session_dir, "logs"), exist_ok=True)
        return args.session_dir, os.path.basename(args.session_dir.rstrip("/"))
    return new_session_dir(args.temp_dir)


async def start_node_manager(args: argparse.Namespace, *, gcs_address: str, token: str,
                             session_dir: str, session_name: str, is_head: bool) -> NodeManager:
    resources, object_store_memory = default_resources(
        num_cpus=args.num_cpus, num_gpus=args.num_gpus, resources=json.loads(args.resources),
        memory=args.memory, object_store_memory=args.object_store_memory,
        node_ip=args.node_ip, is_head=is_head)
    node = NodeManager(NodeOptions(
        node_id=os.urandom(28), node_ip=args.node_ip, gcs_address=gcs_address, token=token,
        session_dir=session_dir, session_name=session_name, resources=resources,
        object_store_memory=object_store_memory, is_head=is_head,
        labels=dict(default_labels(get_config()), **json.loads(args.labels)),
        connect_timeout_s=get_config().connect_timeout_s,
        prestart_workers=get_config().prestart_workers,
        prefault_bytes=get_config().object_store_prefault_bytes,
        release_after_s=get_config().object_store_release_after_s,
        reconnect_timeout_s=get_config().gcs_reconnect_timeout_s,
        memory_usage_threshold=get_config().memory_usage_threshold,
        memory_monitor_period_s=get_config().memory_monitor_period_s))
    try:
        await node.start()
    except BaseException:
        await node.close()
        raise
    return node


async def wait_for_exit(tied: bool) -> None:
    """Return on SIGTERM/SIGINT, or when stdin reaches EOF if ``tied``."""
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    watcher = None
    if tied:
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

        async def watch_parent():
            await reader.read()  # returns at EOF: the owner is gone
            if not stop.done():
                stop.set_result(None)
        watcher = loop.create_task(watch_parent())
    try:
        await stop
    finally:
        if watcher is not None:
            watcher.cancel()


async def run_node(args: argparse.Namespace) -> None:
    token = args.token or get_config().auth_token
    session_dir, session_name = session_for(args)
    node = await start_node_manager(args, gcs_address=args.gcs_address, token=token,
                                    session_dir=session_dir, session_name=session_name,
                                    is_head=args.head_node)
    try:
        print_ready({"node_id": node.node_id.hex(), "node_address": node.server.address,
                     "session_dir": session_dir, "pid": os.getpid()})
        exit_requested = asyncio.ensure_future(wait_for_exit(args.tied))
        await asyncio.wait([exit_requested, node.left_cluster],
                           return_when=asyncio.FIRST_COMPLETED)
        exit_requested.cancel()
    finally:
        await node.close()


def run_main(coro_fn, args: argparse.Namespace) -> None:
    """Run a process's main coroutine on uvloop; a RayError exits 1 with its message."""
    logging.basicConfig(level=get_config().logging_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        import uvloop
        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    try:
        runner(coro_fn(args))
    except (RayError, ValueError) as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m raggio.node.main")
    parser.add_argument("--gcs-address", required=True,
                        help='HOST:PORT, or "-": read {"gcs_address", "token"} as one JSON line '
                             "on stdin (so the node can start while its head does)")
    parser.add_argument("--head-node", action="store_true",
                        help="the head's node (its control store runs in another process)")
    add_node_arguments(parser)
    args = parser.parse_args(argv)
    args.token = None
    if args.gcs_address == "-":
        handoff = sys.stdin.readline()
        if not handoff:
            sys.exit(0)  # the starter gave up (its head did not start)
        handoff = json.loads(handoff)
        args.gcs_address, args.token = handoff["gcs_address"], handoff["token"]
    run_main(run_node, args)


if __name__ == "__main__":
    main()
