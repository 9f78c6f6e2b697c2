"""The current-cluster file: how processes on this machine find a running head.

``raggio start --head``, and the private head of a driver's ``init()``, record
the head's address, session directory and token path in
``<temp_dir>/raggio_current_cluster`` (Ray keeps the same in
``/tmp/ray/ray_current_cluster``); ``init(address="auto")``, ``init()`` and
the CLI read it. The head removes it when it exits cleanly.

The head also keeps its dashboard's URL in the control store's KV
(``DASHBOARD_URL_KEY``, as Ray keeps ``webui:url``), where a driver or the CLI
that joins the cluster by its address, from any machine, finds it.
"""

from __future__ import annotations

import json
import os

import psutil

FILE_NAME = "raggio_current_cluster"
#: The control store's KV key of the dashboard's URL ("http://HOST:PORT"); absent when the
#: cluster runs no dashboard.
DASHBOARD_URL_KEY = "dashboard:url"
#: The default control store of `raggio start --head`: it outlives a crashed head, so the next
#: `raggio start --head` recovers from it; `raggio stop` removes it (the cluster has ended).
STORE_NAME = "raggio_control_store.sqlite"


def path(temp_dir: str) -> str:
    return os.path.join(temp_dir, FILE_NAME)


def default_store_path(temp_dir: str) -> str:
    return os.path.join(temp_dir, STORE_NAME)


def write(temp_dir: str, info: dict) -> None:
    os.makedirs(temp_dir, exist_ok=True)
    tmp = path(temp_dir) + f".{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(info, f)
    os.replace(tmp, path(temp_dir))


def read(temp_dir: str) -> dict | None:
    try:
        with open(path(temp_dir)) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def remove(temp_dir: str, gcs_address: str) -> None:
    """Remove the file if it still names this head."""
    info = read(temp_dir)
    if info is not None and info.get("gcs_address") == gcs_address:
        try:
            os.unlink(path(temp_dir))
        except FileNotFoundError:
            pass


def head_running(info: dict | None) -> bool:
    """Whether the head a current-cluster record names still runs (a zombie does not)."""
    if info is None:
        return False
    try:
        return psutil.Process(info.get("pid", -1)).status() != psutil.STATUS_ZOMBIE
    except (psutil.Error, ValueError):
        return False


def daemon_running(info: dict | None) -> bool:
    """Whether a `raggio start --head` head runs (not a driver's private head, which ends
    with its driver and never stops another head from starting)."""
    return head_running(info) and not info.get("tied")


def read_token(info: dict) -> str | None:
    try:
        with open(info["token_path"]) as f:
            return f.read().strip()
    except (KeyError, OSError):
        return None


#: Tokens of clusters this process started itself (``cluster_utils.Cluster``), by address.
_known_tokens: dict[str, str] = {}


def remember_token(gcs_address: str, token: str) -> None:
    _known_tokens[gcs_address] = token


def known_token(gcs_address: str) -> str | None:
    return _known_tokens.get(gcs_address)
