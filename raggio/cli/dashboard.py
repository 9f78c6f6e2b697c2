"""``raggio dashboard``: a URL that opens the running cluster's dashboard, logged in.

Finds the cluster as the other commands do (``--address``, RAGGIO_ADDRESS, or
this machine's current cluster) with its token, asks its control store for the
dashboard's URL (``cluster_file.DASHBOARD_URL_KEY``) and prints
``<url>/login#token=<token>``. The token rides in the fragment, which a
browser never sends to a server, so it reaches no log or proxy; the login page
reads it, posts it to ``/login`` and gets the session cookie. ``--open`` opens
the URL in a browser (Python's ``webbrowser``).
"""

from __future__ import annotations

import urllib.parse
import webbrowser

import click

from raggio import cluster_file
from raggio.cli import gcs_client


def login_url(dashboard_url: str, token: str) -> str:
    return f"{dashboard_url}/login#token={urllib.parse.quote(token, safe='')}"


def dashboard(address: str | None, temp_dir: str | None, open_browser: bool) -> None:
    cluster = gcs_client.resolve(address, temp_dir)
    (url,) = gcs_client.query(cluster, ("kv_get", cluster_file.DASHBOARD_URL_KEY))
    if not url:
        raise click.ClickException(
            f"The cluster at {cluster['gcs_address']} runs no dashboard: its head was started "
            "with --include-dashboard=false (or init(include_dashboard=False)). Start the "
            "head again without it to have one.")
    link = login_url(url.decode(), cluster["token"])
    click.echo(link)
    if open_browser and not webbrowser.open(link):
        raise click.ClickException("No browser could be started here; open the URL above "
                                   "in one (it holds the cluster token: keep it private).")
