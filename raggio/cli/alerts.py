"""``raggio alerts test``: send one test alert through the cluster's webhooks.

The webhooks are the running cluster's (the alerting section its head stored
in the control store's KV), or those of ``--alerting-config FILE``. Each gets
the alert at once, with the configured retries, and the command prints per
webhook whether it was delivered (the HTTP status) or why not; it exits 1 if
any was not.
"""

from __future__ import annotations

import asyncio
import urllib.parse

import click

from raggio.alerts.config import CONFIG_KEY, AlertingConfig, load_file
from raggio.alerts.rules import INFO, Alert
from raggio.alerts.webhooks import send_now
from raggio.cli import gcs_client


def _config(address: str | None, config_path: str | None,
            temp_dir: str | None) -> tuple[AlertingConfig, str]:
    """The alerting section to test, and the cluster's name for the alert."""
    if config_path:
        try:
            config = load_file(config_path)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--alerting-config") from None
        return config, config.cluster_name or "raggio"
    cluster = gcs_client.resolve(address, temp_dir)
    (value,) = gcs_client.query(cluster, ("kv_get", CONFIG_KEY))
    if value is None:
        raise click.ClickException(
            f"The cluster at {cluster['gcs_address']} has no alerting config. Start its head "
            "with `raggio start --head --alerting-config FILE`, or pass --alerting-config "
            "FILE to test that file's webhooks.")
    config = AlertingConfig.from_json(value)
    return config, config.cluster_name or cluster["gcs_address"]


def _where(url: str) -> str:
    """The webhook's host: its URL may be its password (Slack's are)."""
    return urllib.parse.urlsplit(url).netloc


def test(address: str | None, config_path: str | None, temp_dir: str | None) -> None:
    config, cluster = _config(address, config_path, temp_dir)
    if not config.destinations:
        raise click.ClickException("The alerting config names no webhook: set "
                                   "alerting.slack_webhook or alerting.webhook_url.")
    alert = Alert("test", INFO, "test", "This is a test alert from `raggio alerts test`: "
                  "alerts of this cluster reach this channel.", details={"test": True})
    results = asyncio.run(send_now(config.destinations, alert, cluster, config.delivery))
    for kind, delivery in results.items():
        click.echo(f"{kind} ({_where(config.destinations[kind])}): {delivery.describe()}")
    if not all(delivery.ok for delivery in results.values()):
        raise SystemExit(1)
