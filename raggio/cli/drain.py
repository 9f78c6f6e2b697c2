"""``raggio drain-node``: Ray's ``ray drain-node``, for an operator taking a machine away.

Asks the control store to drain the node (``drain_node``: no more work goes there
and its objects move to other nodes, ``node/draining.py``) and says what
happened; the node itself keeps running until it is stopped (``raggio stop`` on
that machine, or its provider removes it).
"""

from __future__ import annotations

import click

from raggio.cli import gcs_client
from raggio.cluster_status import format_bytes
from raggio.common.states import DRAIN_DEADLINE_S
from raggio.common.ids import NodeID

#: How long past the drain's deadline the CLI waits for the control store's answer.
ANSWER_GRACE_S = 15.0


def drain_node(address: str | None, node_id: str, reason: str, reason_message: str,
               deadline_s: float | None, temp_dir: str | None) -> None:
    if not NodeID.is_hex(node_id):
        raise click.BadParameter(f"{node_id!r} is not a node id: pass the 56 hex digits "
                                 "`raggio list nodes` shows.", param_hint="--node-id")
    deadline_s = DRAIN_DEADLINE_S if deadline_s is None else deadline_s
    request = {"node_id": bytes.fromhex(node_id), "reason": reason,
               "reason_message": reason_message, "deadline_s": deadline_s}
    cluster = gcs_client.resolve(address, temp_dir)
    [reply] = gcs_client.query(cluster, ("drain_node", request),
                               timeout_s=deadline_s + ANSWER_GRACE_S)
    if not reply["is_accepted"]:
        raise click.ClickException(
            f"The drain request was not accepted: {reply['rejection_reason_message']}.")
    click.echo(f"Node {node_id} is drained: it takes no more work, and its "
               f"{reply['objects_moved']} object(s) ({format_bytes(reply['bytes_moved'])}) "
               "moved to other nodes. Stop it with `raggio stop` on its machine.")
