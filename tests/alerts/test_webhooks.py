"""Posting to webhooks over real HTTP (the ``receiver`` of ``conftest.py``): retries with
backoff, answers that are final, and queues that keep a hanging webhook from holding up
another or growing without bound."""

from __future__ import annotations

import asyncio
import socket

import aiohttp

from raggio.alerts.payloads import generic, slack
from raggio.alerts.rules import CRITICAL, Alert
from raggio.alerts.webhooks import Webhook, deliver, send_now

DELIVERY = {"timeout_s": 5.0, "max_attempts": 4, "backoff_s": 0.05, "max_backoff_s": 1.0,
            "queue_size": 3}


def alert(key: str = "node_died:ab") -> Alert:
    return Alert("node_died", CRITICAL, key, "Node 127.0.0.1 (abcdef01) died: gone.",
                 node="abcdef0123", details={"node_ip": "127.0.0.1"})


async def post(url: str, **delivery):
    async with aiohttp.ClientSession() as session:
        return await deliver(session, url, generic(alert(), "c"), dict(DELIVERY, **delivery))


def test_a_failing_webhook_is_tried_again_until_it_answers(receiver):
    receiver.failures = 2  # 500, 500, then 200
    result = asyncio.run(post(receiver.url + "/flaky"))
    assert (result.ok, result.attempts, result.status) == (True, 3, 200)
    assert result.describe() == "delivered (HTTP 200) after 3 attempts"
    sent = receiver.received("flaky")
    assert len(sent) == 3 and all(body == sent[0] for body in sent)
    first, second, third = receiver.times("flaky")
    assert third - second > second - first  # the wait doubles


def test_a_webhook_that_keeps_failing_is_given_up_after_max_attempts(receiver):
    receiver.failures = 100
    result = asyncio.run(post(receiver.url + "/flaky", max_attempts=3))
    assert (result.ok, result.attempts) == (False, 3)
    assert result.describe() == "not delivered after 3 attempts: HTTP 500 Internal Server " \
                                "Error: try again"


def test_a_refusal_is_final(receiver):
    result = asyncio.run(post(receiver.url + "/refuse"))
    assert (result.ok, result.attempts, result.status) == (False, 1, 403)
    assert len(receiver.received("refuse")) == 1


def test_an_unreachable_webhook_says_why():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = asyncio.run(post(f"http://127.0.0.1:{port}/x", max_attempts=2))
    assert (result.ok, result.attempts, result.status) == (False, 2, None)
    assert "ClientConnectorError" in result.error


def test_a_hanging_webhook_delays_neither_another_nor_its_sender(receiver):
    async def scenario():
        async with aiohttp.ClientSession() as session:
            hanging = Webhook("slack", receiver.url + "/hang", lambda a: slack(a, "c"),
                              session, dict(DELIVERY, timeout_s=60.0))
            healthy = Webhook("webhook", receiver.url + "/webhook",
                              lambda a: generic(a, "c"), session, dict(DELIVERY, queue_size=10))
            tasks = [asyncio.create_task(w.run()) for w in (hanging, healthy)]
            try:
                for number in range(6):
                    for webhook in (hanging, healthy):
                        webhook.offer_nowait(alert(f"node_died:{number}"))
                    if number == 0:  # the hanging webhook holds the first one from now on
                        await wait_for(lambda: receiver.received("hang"))
                await wait_for(lambda: len(receiver.received("webhook")) == 6)
                return hanging, healthy
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    hanging, healthy = asyncio.run(scenario())
    assert healthy.sent == 6 and healthy.dropped == 0
    # One in flight (still unanswered), three queued: of the five after it, the two oldest
    # were dropped.
    assert len(receiver.received("hang")) == 1 and hanging.sent == 0
    assert hanging.dropped == 2


def test_send_now_reports_each_webhook_on_its_own(receiver):
    results = asyncio.run(send_now(
        {"slack": receiver.url + "/slack", "webhook": receiver.url + "/refuse"}, alert(),
        "prod", DELIVERY))
    assert results["slack"].ok and not results["webhook"].ok
    (body,) = receiver.received("slack")
    assert body["text"].startswith(":red_circle: [CRITICAL] prod: Node 127.0.0.1")


async def wait_for(condition, timeout_s: float = 20.0) -> None:
    async def poll():
        while not condition():
            await asyncio.sleep(0.02)
    await asyncio.wait_for(poll(), timeout_s)
