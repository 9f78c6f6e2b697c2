"""The dashboard's process: serve the app on the socket the head hands it.

``python -m raggio.dashboard --fd N --gcs-address HOST:PORT --session-dir DIR
--parent-pid PID``: the head (``supervisor.py``) binds the listening socket and
passes it as descriptor N, so this process takes no port of its own and may
be killed and started again on the same one. It reads the cluster token from
the session directory and exits with its head (the head also lowers its
priority: it is a view, never on a task's path). It also runs the head's
alerts, when the head has an alerting config (``raggio/alerts``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket

from aiohttp import web

from raggio.alerts.manager import run_alerting
from raggio.dashboard.app import make_app
from raggio.dashboard.control_store import ControlStore
from raggio.dashboard.node_managers import NodeManagers
from raggio.launch import die_with_parent

logger = logging.getLogger("raggio.dashboard")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m raggio.dashboard")
    parser.add_argument("--fd", type=int, required=True,
                        help="The listening socket, inherited from the head.")
    parser.add_argument("--gcs-address", required=True)
    parser.add_argument("--session-dir", required=True)
    parser.add_argument("--parent-pid", type=int, required=True,
                        help="The head's pid: the dashboard exits with it.")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    with open(os.path.join(args.session_dir, "token")) as f:
        token = f.read().strip()
    sock = socket.socket(fileno=args.fd)
    session = {"session_dir": args.session_dir, "gcs_address": args.gcs_address,
               "session_name": os.path.basename(args.session_dir.rstrip("/"))}
    store = ControlStore(args.gcs_address, token)
    app = make_app(store, token=token, session=session)
    runner = web.AppRunner(app, access_log=None, handle_signals=True)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    host, port = sock.getsockname()[:2]
    logger.info("serving http://%s:%s for the control store at %s", host, port,
                args.gcs_address)
    # The head's alerts (if it has an alerting config) run here, beside the pages, never
    # in the control store's process. Connections of their own to the node managers: the
    # routes' are dropped and dialled as pages come and go.
    node_managers = NodeManagers(token)
    alerting = asyncio.get_running_loop().create_task(
        run_alerting(store, node_managers, cluster_name=args.gcs_address))
    try:
        await asyncio.Event().wait()
    finally:
        alerting.cancel()
        await asyncio.gather(alerting, return_exceptions=True)
        node_managers.close()
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    die_with_parent(args.parent_pid)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass
