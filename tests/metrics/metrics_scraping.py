"""Reading a node's metrics endpoint in the metrics tests: scrape, parse, pick a value."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def scrape(port: int, token: str | None, host: str = "127.0.0.1") -> str:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    request = urllib.request.Request(f"http://{host}:{port}/metrics", headers=headers)
    with _OPENER.open(request, timeout=30) as answer:
        return answer.read().decode()


def samples(text: str) -> dict[str, list]:
    """Family name -> its samples; fails on a family exported twice (Prometheus would)."""
    families: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        assert family.name not in families, f"{family.name} is exported twice"
        families[family.name] = family.samples
    return families


def value(families: dict, name: str, **labels) -> float:
    """The one sample called ``name`` with ``labels``."""
    matching = [s.value for family in families.values() for s in family
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(matching) == 1, (name, labels, matching)
    return matching[0]
