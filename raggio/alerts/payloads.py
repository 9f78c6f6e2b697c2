"""An alert as each kind of webhook takes it: Slack's message JSON, or plain JSON. No I/O.

Slack (``slack_webhook``): ``{"text": ..., "blocks": [...]}``; ``text`` is the
whole alert in one line (notifications and clients without blocks show it),
the blocks a header, the message and a context line (cluster, node, time),
as Slack's incoming webhooks and the services that copy them (Mattermost,
Rocket.Chat, Discord's ``/slack`` endpoint) accept.

Generic (``webhook_url``): ``{"name", "severity", "message", "cluster", "node",
"time", "details"}``, ``time`` in ISO 8601 (UTC), ``details`` the rule's own
fields (ids, counts, reasons).
"""

from __future__ import annotations

import datetime

from raggio.alerts.rules import Alert

#: Slack refuses a section's text over 3,000 characters.
SLACK_SECTION_MAX = 3000

_ICONS = {"critical": ":red_circle:", "error": ":large_orange_circle:",
          "warning": ":warning:", "info": ":information_source:"}


def _iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isoformat(
        timespec="seconds")


def _title(alert: Alert) -> str:
    return alert.name.replace("_", " ").capitalize()


def slack(alert: Alert, cluster: str) -> dict:
    icon = _ICONS.get(alert.severity, "")
    context = [f"cluster *{cluster}*", f"severity {alert.severity}"]
    if alert.node:
        context.append(f"node `{alert.node[:16]}`")
    context.append(_iso(alert.time))
    return {
        "text": f"{icon} [{alert.severity.upper()}] {cluster}: {alert.message}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": _title(alert)}},
            {"type": "section", "text": {"type": "mrkdwn",
                                         "text": f"{icon} {alert.message}"[:SLACK_SECTION_MAX]}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": " | ".join(context)}]},
        ],
    }


def generic(alert: Alert, cluster: str) -> dict:
    return {"name": alert.name, "severity": alert.severity, "message": alert.message,
            "cluster": cluster, "node": alert.node, "time": _iso(alert.time),
            "details": alert.details}


#: The payload of each kind of destination (``AlertingConfig.destinations``).
FORMATS = {"slack": slack, "webhook": generic}
