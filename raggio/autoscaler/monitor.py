"""The monitor: the autoscaler's process on the head (``python -m raggio.autoscaler.monitor``).

The head starts it (``raggio/supervised.py``, output in the session's
``logs/monitor.log``, which ``raggio monitor`` follows) when it was given a
cluster file (``--autoscaling-config``), and starts it again if it exits. It
reads that file back from the control store's KV (``autoscaler:config``), so
a restarted monitor, or one under a recovered head, carries on; it reaches the
cluster through the control store's RPC surface only, with the cluster token
from its environment. Every ``autoscaler_update_interval_s`` it runs one
``Autoscaler.update`` round; a round that fails is logged and the next one
tries again; the next round comes sooner when an idle node reaches its idle timeout
before it. It exits when the head does.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os

from raggio.autoscaler.autoscaler import Autoscaler
from raggio.config import get_config
from raggio.launch import die_with_parent
from raggio.launcher import cluster_config
from raggio.launcher.node_provider import get_node_provider
from raggio.rpc.kept_connection import KeptConnection, Unavailable

logger = logging.getLogger("raggio.autoscaler")

#: How long past an idle node's timeout its round runs (its idle time then surely counts it).
TIMEOUT_SLACK_S = 0.01


async def _config(store: KeptConnection) -> cluster_config.ClusterConfig:
    """The cluster file the head keeps, once the control store answers."""
    while True:
        try:
            value = await store.call("kv_get", cluster_config.CONFIG_KEY)
        except Unavailable as exc:
            logger.warning("%s; asking again in 1 s", exc)
            await asyncio.sleep(1.0)
            continue
        if value is None:
            raise SystemExit("The control store keeps no autoscaling config "
                             f"({cluster_config.CONFIG_KEY}): the head was started without "
                             "--autoscaling-config.")
        return cluster_config.parse(value.decode(), "the head's --autoscaling-config")


async def run(gcs_address: str, session_dir: str, token_path: str, head_ip: str) -> None:
    cfg = get_config()
    store = KeptConnection(gcs_address, cfg.auth_token, "control store", role="autoscaler")
    config = await _config(store)
    provider = get_node_provider(
        dict(config.provider, gcs_address=gcs_address, session_dir=session_dir,
             token_path=token_path),
        config.cluster_name)
    autoscaler = Autoscaler(config, provider, store, token=cfg.auth_token, head_ip=head_ip,
                            logs_dir=os.path.join(session_dir, "logs"))
    logger.info("autoscaling cluster %r: provider %s, node types %s, max_workers %d",
                config.cluster_name, config.provider["type"], ", ".join(config.node_types),
                config.max_workers)
    while True:
        try:
            await autoscaler.update()
        except Unavailable as exc:
            logger.warning("skipped a round: %s", exc)
        except Exception:  # a bug or a provider's surprise must not end the autoscaler
            autoscaler.counters["update_loop_exceptions"] += 1
            logger.exception("an autoscaler round failed; the next one tries again")
        wait_s = cfg.autoscaler_update_interval_s
        if autoscaler.next_timeout_in_s is not None:  # a node's idle timeout comes first
            wait_s = min(wait_s, autoscaler.next_timeout_in_s + TIMEOUT_SLACK_S)
        await asyncio.sleep(wait_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gcs-address", required=True)
    parser.add_argument("--session-dir", required=True)
    parser.add_argument("--token-path", required=True)
    parser.add_argument("--head-ip", required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    args = parser.parse_args()
    die_with_parent(args.parent_pid)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(run(args.gcs_address, args.session_dir, args.token_path, args.head_ip))


if __name__ == "__main__":
    main()
