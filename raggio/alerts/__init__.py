"""Alerts: rules over the cluster's state, posted to Slack and to a generic webhook.

Runs in the dashboard's process (``dashboard/main.py`` starts ``manager.run_alerting``),
never in the control store's: a slow or failing webhook costs the cluster nothing.
It reads the cluster only through the control store's RPC surface and the node
managers' (``get_node_stats``), over connections the dashboard gives it.

``config`` (the ``alerting:`` section: schema, defaults, loading), ``rules`` (what
fires, from snapshots of the tables; no I/O), ``gate`` (deduplication and the rate
limit; no I/O), ``payloads`` (Slack's and the generic JSON), ``webhooks`` (one
bounded queue and sender per webhook: retries with backoff), ``manager`` (the
polling loop that ties them together). ``raggio alerts test`` (``cli/alerts.py``)
sends one alert through ``webhooks``.
"""
