"""``raggio.util.metrics``: Ray's API and errors, recorded anywhere, exported by its node."""

from __future__ import annotations

import pytest
from metrics_scraping import samples, scrape

import raggio as ray
from raggio.test_utils import wait_until
from raggio.util.metrics import Counter, Gauge, Histogram


@pytest.mark.parametrize("make, error, words", [
    (lambda: Counter(""), ValueError, "Empty name"),
    (lambda: Counter("2fast"), ValueError, "Invalid metric name"),
    (lambda: Gauge("with space"), ValueError, "Invalid metric name"),
    (lambda: Counter("ok_list_keys", tag_keys=["a"]), TypeError, "tuple"),
    (lambda: Counter("ok_int_key", tag_keys=(1,)), TypeError, "Tag keys must be str"),
    (lambda: Histogram("no_bounds"), ValueError, "boundaries argument should be provided"),
    (lambda: Histogram("neg_bounds", boundaries=[1.0, -2.0]), ValueError, "index 1"),
    (lambda: [Counter("same_name_twice"), Gauge("same_name_twice")], ValueError,
     "already a counter"),
])
def test_bad_declarations_raise_rays_errors(make, error, words):
    with pytest.raises(error, match=words):
        make()


def test_bad_records_raise_and_name_the_key():
    counter = Counter("api_checks", tag_keys=("route", "method"))
    with pytest.raises(ValueError, match=r"Missing value for tag key\(s\): method"):
        counter.inc(tags={"route": "/"})
    with pytest.raises(ValueError, match="Unrecognized tag key colour"):
        counter.inc(tags={"route": "/", "method": "GET", "colour": "red"})
    with pytest.raises(ValueError, match="Unrecognized tag key colour"):
        counter.set_default_tags({"colour": "red"})
    with pytest.raises(TypeError, match="Tag values must be str"):
        counter.inc(tags={"route": "/", "method": 1})
    with pytest.raises(ValueError, match="value must be >0"):
        counter.inc(0, tags={"route": "/", "method": "GET"})
    with pytest.raises(TypeError, match="value must be int or float"):
        Gauge("api_level").set("high")
    assert counter.set_default_tags({"method": "GET"}) is counter
    counter.inc(tags={"route": "/"})  # the default fills in the method
    assert counter.info == {"name": "api_checks", "description": "",
                            "tag_keys": ("route", "method"), "default_tags": {"method": "GET"}}


def _node_samples(cluster, node: dict, name: str) -> list:
    families = samples(scrape(node["MetricsExportPort"], cluster._token))
    return [s for family in families.values() for s in family if s.name == name]


def test_values_from_driver_tasks_and_actors_are_exported_by_their_own_node(two_nodes):
    requests = Counter("shop_requests", "Requests served.", tag_keys=("route",))
    queue = Gauge("shop_queue", "Items waiting.", tag_keys=("shop",))
    latency = Histogram("shop_latency_s", "Latency.", boundaries=[0.1, 1.0],
                        tag_keys=("route",))

    @ray.remote(num_cpus=0, resources={"other": 0.01})
    class Shop:  # on the second node (the only one with "other")
        def serve(self, n):
            for _ in range(n):
                requests.inc(tags={"route": "/buy"})
                latency.observe(0.5, tags={"route": "/buy"})
            queue.set(7, tags={"shop": "far"})
            return n

    @ray.remote(num_cpus=1)
    def browse():
        requests.inc(2, tags={"route": "/look"})

    shop = Shop.remote()
    assert ray.get(shop.serve.remote(3)) == 3
    ray.get([browse.remote() for _ in range(2)])
    requests.inc(tags={"route": "/driver"})
    nodes = ray.nodes()
    far = next(n for n in nodes if "other" in n["Resources"])

    def shop_counted():
        buys = [s for s in _node_samples(two_nodes, far, "ray_shop_requests_total")
                if s.labels["route"] == "/buy"]
        return buys and buys[0].value == 3 and buys
    buys = wait_until(shop_counted, timeout_s=30, what="the actor's counter on its node")
    assert buys[0].labels["NodeId"] == far["NodeID"]
    gauges = _node_samples(two_nodes, far, "ray_shop_queue")
    assert [(g.labels["shop"], g.value) for g in gauges] == [("far", 7)]
    assert gauges[0].labels["WorkerId"]  # a gauge is one series per process
    buckets = {s.labels["le"]: s.value for s in _node_samples(two_nodes, far,
                                                              "ray_shop_latency_s_bucket")}
    assert buckets == {"0.1": 0, "1.0": 3, "+Inf": 3}
    # Every node's share, summed over the cluster: 2 tasks of 2 each, wherever they ran.
    def total(route):
        return sum(s.value for node in nodes
                   for s in _node_samples(two_nodes, node, "ray_shop_requests_total")
                   if s.labels["route"] == route)
    wait_until(lambda: total("/look") == 4 and total("/driver") == 1, timeout_s=30,
               what="the tasks' and the driver's counts")
    # A count stays when the process that counted it is gone; its gauge goes with it.
    ray.kill(shop)
    wait_until(lambda: not _node_samples(two_nodes, far, "ray_shop_queue"), timeout_s=30,
               what="the dead actor's gauge to go")
    assert [s.value for s in _node_samples(two_nodes, far, "ray_shop_requests_total")
            if s.labels["route"] == "/buy"] == [3]
