"""A node manager process: ``python -m raggio.node.main``.

Runs one node manager (with its zygote and workers) that joins the control
store at ``--gcs-address``; its flags are a ``NodeSpec``'s (``node_spec.py``),
which ``raggio start --address=...`` and ``cluster_utils.Cluster.add_node``
build. The head process reuses the start-up helpers here; ``raggio start
--head`` starts it with ``--head --gcs-address=-`` beside the control store
and sends it the address and token on stdin once the control store is up.
When ready it prints one JSON line on stdout (its addresses; a starter gone by
then does not end it); it exits on SIGTERM, or when stdin closes if ``--tied``
(a node owned by the process that started it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import signal
import sys

from raggio.common.ids import NodeID
from raggio.config import Config, get_config
from raggio.exceptions import RayError
from raggio.launch import print_error, print_ready
from raggio.node.manager import NodeManager, NodeOptions
from raggio.node.node_info import (default_labels, default_resources, new_session_dir,
                                   overridden_resources)
from raggio.node_spec import FROM_STDIN, NODE_MODULE, NodeSpec


def session_for(spec: NodeSpec) -> tuple[str, str]:
    """The node's session directory and name: the spec's, else a new one."""
    if spec.session_dir:
        os.makedirs(os.path.join(spec.session_dir, "logs"), exist_ok=True)
        return spec.session_dir, os.path.basename(spec.session_dir.rstrip("/"))
    return new_session_dir(spec.temp_dir)


async def start_node_manager(spec: NodeSpec, cfg: Config, *, gcs_address: str, token: str,
                             session_dir: str, session_name: str) -> NodeManager:
    given = overridden_resources(spec, cfg)
    resources, object_store_memory = default_resources(
        cfg, num_cpus=given.num_cpus, num_gpus=given.num_gpus, resources=given.resources,
        memory=given.memory, object_store_memory=given.object_store_memory,
        node_ip=spec.node_ip_address, is_head=spec.head)
    node = NodeManager(NodeOptions(
        node_id=(NodeID.from_hex(spec.node_id) if spec.node_id else NodeID.from_random()).binary(),
        node_ip=spec.node_ip_address, gcs_address=gcs_address,
        token=token, session_dir=session_dir, session_name=session_name, resources=resources,
        object_store_memory=object_store_memory, is_head=spec.head,
        labels=dict(default_labels(cfg), **spec.labels),
        metrics_export_port=spec.metrics_export_port,
        node_manager_port=spec.node_manager_port), cfg)
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


def announce(ready: dict) -> None:
    """Print the ready line. A starter that is gone (an autoscaler killed mid-launch) does not
    end the node: the provider's record of it, made before it started, still holds it."""
    try:
        print_ready(ready)
    except BrokenPipeError:
        # Python's advice: stdout to /dev/null, so that the flush at exit does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


async def run_node(spec: NodeSpec) -> None:
    """Run the node until it is told to exit (or, tied, its owner is gone)."""
    cfg = get_config()
    session_dir, session_name = session_for(spec)
    node = await start_node_manager(spec, cfg, gcs_address=spec.gcs_address,
                                    token=spec.token or cfg.auth_token,
                                    session_dir=session_dir, session_name=session_name)
    try:
        announce({"node_id": node.node_id.hex(), "node_address": node.server.address,
                  "session_dir": session_dir, "pid": os.getpid()})
        exit_requested = asyncio.ensure_future(wait_for_exit(spec.tied))
        await asyncio.wait([exit_requested, node.left_cluster],
                           return_when=asyncio.FIRST_COMPLETED)
        exit_requested.cancel()
    finally:
        await node.close()


def run_main(coro_fn, spec: NodeSpec) -> None:
    """Run a process's main coroutine on uvloop; a RayError exits 1 with its message."""
    logging.basicConfig(level=get_config().logging_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        import uvloop
        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    try:
        runner(_cancelled_by_stop_signals(coro_fn(spec)))
    except (RayError, ValueError) as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        print_error(str(getattr(exc, "client_exc", exc)))  # RaySystemError's own words
        sys.exit(1)
    except asyncio.CancelledError:
        print("stopped while starting", file=sys.stderr, flush=True)
        sys.exit(128 + signal.SIGTERM)


async def _cancelled_by_stop_signals(main_coro) -> None:
    """Run the main coroutine; SIGTERM or SIGINT before it waits for its exit (while it
    starts: ``wait_for_exit`` then takes the signals over) cancel it, so that its clean-up
    runs: a node stopped as it starts (an autoscaler giving up on it) leaves no arena."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, asyncio.current_task().cancel)
    await main_coro


def main(argv: list[str] | None = None) -> None:
    spec = NodeSpec.from_argv(sys.argv[1:] if argv is None else argv, NODE_MODULE)
    if spec.gcs_address == FROM_STDIN:
        handoff = sys.stdin.readline()
        if not handoff:
            sys.exit(0)  # the starter gave up (its head did not start)
        handoff = json.loads(handoff)
        spec = dataclasses.replace(spec, gcs_address=handoff["gcs_address"],
                                   token=handoff["token"])
    run_main(run_node, spec)


if __name__ == "__main__":
    main()
