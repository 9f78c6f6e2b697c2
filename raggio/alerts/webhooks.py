"""Posting alerts to webhooks: one bounded queue and one sender per webhook.

``Webhook.offer_nowait`` never waits: the alert goes into the webhook's queue
(``queue_size`` at most; when it is full the oldest waiting alert is dropped,
counted and logged), and the webhook's own task posts them in order. So a
webhook that hangs or fails delays neither the rules nor another webhook, and
its backlog takes bounded memory.

``deliver`` posts one payload: a 2xx answer delivers it; a 5xx, a 408 or 429, a
timeout (``timeout_s`` for the whole request) or a connection error is tried
again after ``backoff_s``, doubled each time up to ``max_backoff_s`` (a 429's
``Retry-After`` when it says longer), at most ``max_attempts`` times; any other
4xx is final (the URL or the payload is wrong, and will stay so). ``raggio
alerts test`` calls it once per webhook and prints its ``Delivery``.

HTTP goes through aiohttp (the webhooks speak HTTP, not raggio's RPC), with the
environment's proxy settings, as curl would.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Callable

import aiohttp

from raggio.alerts.payloads import FORMATS
from raggio.alerts.rules import Alert

logger = logging.getLogger(__name__)

#: Answers worth trying again: the receiver is busy or failing, not refusing the alert.
_RETRIED = frozenset({408, 429})


@dataclass
class Delivery:
    """What became of one payload."""

    ok: bool
    attempts: int
    status: int | None = None  #: the last HTTP status, if an answer came
    error: str | None = None  #: why the last attempt failed, if it did

    def describe(self) -> str:
        tries = f" after {self.attempts} attempts" if self.attempts > 1 else ""
        if self.ok:
            return f"delivered (HTTP {self.status}){tries}"
        return f"not delivered{tries}: {self.error}"


async def deliver(session: aiohttp.ClientSession, url: str, payload: dict,
                  delivery: dict) -> Delivery:
    """POST ``payload`` to ``url`` as JSON, retried as the module docstring says.

    Args:
        delivery: the ``alerting.delivery`` settings (``timeout_s``, ``max_attempts``,
            ``backoff_s``, ``max_backoff_s``).
    """
    wait_s = delivery["backoff_s"]
    result = Delivery(False, 0)
    timeout = aiohttp.ClientTimeout(total=delivery["timeout_s"])
    for attempt in range(1, delivery["max_attempts"] + 1):
        result = Delivery(False, attempt)
        retry_after = None
        try:
            async with session.post(url, json=payload, timeout=timeout) as response:
                result.status = response.status
                body = (await response.text())[:200]
                if 200 <= response.status < 300:
                    result.ok = True
                    return result
                result.error = f"HTTP {response.status} {response.reason or ''}".rstrip() + (
                    f": {body.strip()}" if body.strip() else "")
                if response.status < 500 and response.status not in _RETRIED:
                    return result
                retry_after = _seconds(response.headers.get("Retry-After"))
        except asyncio.TimeoutError:
            result.error = f"no answer within {delivery['timeout_s']:g} s"
        except aiohttp.ClientError as exc:
            result.error = f"{type(exc).__name__}: {exc}"
        if attempt < delivery["max_attempts"]:
            await asyncio.sleep(min(max(wait_s, retry_after or 0), delivery["max_backoff_s"]))
            wait_s *= 2
    return result


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None  # an HTTP date: the backoff decides


class Webhook:
    """One webhook's queue and sender (see the module docstring)."""

    def __init__(self, kind: str, url: str, format_payload: Callable[[Alert], dict],
                 session: aiohttp.ClientSession, delivery: dict):
        self.kind = kind  #: "slack" or "webhook"
        self.url = url
        self._format = format_payload
        self._session = session
        self._delivery = delivery
        self._queue: asyncio.Queue[Alert] = asyncio.Queue(maxsize=delivery["queue_size"])
        self.dropped = 0  #: alerts dropped from a full queue
        self.sent = 0
        self.failed = 0  #: alerts given up on after every attempt

    def offer_nowait(self, alert: Alert) -> None:
        """Queue ``alert``; drop the oldest waiting one if the queue is full."""
        if self._queue.full():
            lost = self._queue.get_nowait()
            self.dropped += 1
            logger.warning("the %s webhook's queue is full (%d alerts): dropped %s (%s)",
                           self.kind, self._queue.maxsize, lost.key, lost.message)
        self._queue.put_nowait(alert)

    async def run(self) -> None:
        """Send the queued alerts, in order, until cancelled."""
        while True:
            alert = await self._queue.get()
            try:
                result = await deliver(self._session, self.url, self._format(alert),
                                       self._delivery)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not stop the sender: log it, send the next
                logger.exception("sending %s to the %s webhook failed", alert.key, self.kind)
                self.failed += 1
                continue
            if result.ok:
                self.sent += 1
            else:
                self.failed += 1
                # Not the URL: a Slack webhook's URL is its password.
                logger.warning("alert %s not delivered to the %s webhook: %s", alert.key,
                               self.kind, result.describe())


async def send_now(destinations: dict[str, str], alert: Alert, cluster: str,
                   delivery: dict) -> dict[str, Delivery]:
    """Post ``alert`` to every webhook of ``destinations`` (``{kind: url}``) at once, past
    any queue (``raggio alerts test``); what became of it at each, by kind."""
    async with aiohttp.ClientSession(trust_env=True) as session:
        results = await asyncio.gather(*(
            deliver(session, url, FORMATS[kind](alert, cluster), delivery)
            for kind, url in destinations.items()))
    return dict(zip(destinations, results))
