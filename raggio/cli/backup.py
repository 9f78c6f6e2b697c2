"""``raggio backup FILE`` and ``raggio restore FILE``: the control store's data, saved and put back.

``backup`` asks the running control store to copy every table into a new SQLite
file (consistent, while the cluster runs). ``restore`` checks such a file and
installs it as the store the next ``raggio start --head`` recovers from; it
refuses while a head runs, and never changes the file it is given.
"""

from __future__ import annotations

import os
import shutil

import click

from raggio import cluster_file
from raggio.cli import gcs_client
from raggio.gcs.storage import SqliteStorage


def backup(path: str, address: str | None, temp_dir: str | None) -> None:
    path = os.path.abspath(path)
    if os.path.exists(path):
        raise click.ClickException(f"{path} already exists; pick a new file name.")
    cluster = gcs_client.resolve(address, temp_dir)
    (count,) = gcs_client.query(cluster, ("backup", path))
    click.echo(f"Saved {count} control-store records to {path}.")


def restore(path: str, temp_dir: str, storage: str | None) -> None:
    current = cluster_file.read(temp_dir)
    if cluster_file.daemon_running(current):
        raise click.ClickException("A raggio head is running on this machine; stop it "
                                   "(`raggio stop`) before restoring its control store.")
    if not os.path.exists(path):
        raise click.ClickException(f"{path} does not exist.")
    try:
        SqliteStorage(path).close()  # checks the file read-only before anything else
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    target = storage or cluster_file.default_store_path(temp_dir)
    os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
    for suffix in ("-wal", "-shm"):
        if os.path.exists(target + suffix):
            os.unlink(target + suffix)
    shutil.copyfile(path, target)
    click.echo(f"Restored {path} into {target}; `raggio start --head` now recovers from it.")
