"""What the launcher asks a cluster's head over SSH: its addresses and its live nodes.

On the head, ``raggio head-info`` (a hidden command, ``cli/launcher.py``)
prints one JSON line: whether a head runs there, its control store,
dashboard and ray:// addresses, and the address of every node the control
store counts alive. On the launcher's side ``query`` runs it over an SSH
session. The launcher needs no route to the head's ports: SSH is the only
way in.
"""

from __future__ import annotations

import json

from raggio.launcher import ssh

COMMAND = "raggio head-info"


async def query(session: ssh.SshSession) -> dict:
    """What ``raggio head-info`` printed on the head; ``{"running": False, "error": ...}`` when it cannot say."""
    result = await session.run(COMMAND, timeout_s=30)
    lines = result.output.strip().splitlines()
    if result.exit_status == 0 and lines:
        try:
            return json.loads(lines[-1])
        except ValueError:
            pass
    return {"running": False, "error": result.output.strip()[-500:]}
