"""``init()``'s keywords: each honoured, or refused with what raggio does instead."""

import logging

import pytest

import raggio as ray
from raggio.util import state


def test_node_settings_of_the_private_head(shutdown_only):
    ray.init(num_cpus=1, labels={"zone": "a"}, _memory=2 * 1024**3, include_dashboard=False,
             dashboard_host="0.0.0.0", dashboard_port=8266, _skip_env_hook=True,
             _enable_object_reconstruction=True, log_to_driver=None)
    (node,) = state.list_nodes()
    assert node.labels.get("zone") == "a"
    assert node.resources_total["memory"] == 2 * 1024**3


def test_system_config_reaches_the_driver_and_the_private_head(shutdown_only):
    ray.init(num_cpus=1, _system_config={"task_events_report_interval_ms": 0,
                                         "max_direct_call_object_size": 1000})
    from raggio.core import context
    assert context.get_core().cfg.max_inline_bytes == 1000

    @ray.remote
    def one():
        from raggio.config import get_config
        return get_config().task_events_report_interval_s

    assert ray.get(one.remote()) == 0.0  # the worker's, from the head's environment
    assert state.list_tasks() == []  # the task history is off, as asked


@pytest.mark.parametrize("kwargs, error, match", [
    ({"local_mode": True}, RuntimeError, "`local_mode` is no longer supported"),
    ({"_colour": 1}, RuntimeError, "Unknown keyword argument\\(s\\): _colour"),
    ({"_plasma_directory": "/tmp"}, ValueError, "object store is a file in /dev/shm"),
    ({"storage": "s3://x"}, ValueError, "storage URI was removed"),
    ({"_redis_password": "x"}, ValueError, "raggio start --storage"),
    ({"logging_config": object()}, ValueError, "structured logging"),
    ({"enable_resource_isolation": True}, ValueError, "cgroups"),
    ({"system_reserved_cpu": 1}, ValueError, "resource isolation"),
    ({"_enable_object_reconstruction": False}, ValueError, "max_retries=0"),
    ({"_system_config": {"health_check_period_ms": "x"}}, ValueError, "must be a float"),
    ({"dashboard_port": "8265"}, TypeError, "dashboard_port must be an int"),
    ({"dashboard_port": 70000}, ValueError, "dashboard_port must be a port number"),
    ({"include_dashboard": "yes"}, TypeError, "include_dashboard must be None, True or False"),
    ({"dashboard_host": None}, TypeError, "dashboard_host must be an address"),
    ({"namespace": 123}, TypeError, "namespace must be None or a string"),
    ({"namespace": ""}, ValueError, "not a valid namespace"),
])
def test_what_raggio_cannot_honour_is_refused(shutdown_only, kwargs, error, match):
    with pytest.raises(error, match=match):
        ray.init(num_cpus=1, **kwargs)
    assert not ray.is_initialized()


def test_a_system_config_key_raggio_lacks_is_named_in_a_warning(shutdown_only):
    """Ray's internal tunings (passed by many Ray programs and tests) are not applied, and a
    warning says which; the keys raggio has still apply."""
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logging.getLogger("raggio").addHandler(handler)
    try:
        ray.init(num_cpus=1, _system_config={"task_retry_delay_ms": 100,
                                             "health_check_period_ms": 2000})
    finally:
        logging.getLogger("raggio").removeHandler(handler)
    assert any("not applied: task_retry_delay_ms." in m for m in messages), messages
    assert ray.get(ray.remote(lambda: 1).remote()) == 1


def test_namespaces_of_actors_and_lookups_are_checked(shutdown_only):
    ray.init(num_cpus=1, namespace="checked")

    @ray.remote
    class Named:
        pass

    for bad, error in ((123, TypeError), ("", ValueError)):
        with pytest.raises(error):
            Named.options(namespace=bad).remote()
        with pytest.raises(error):
            ray.get_actor("named", namespace=bad)


def test_node_settings_are_refused_when_joining(ray_start_cluster):
    cluster = ray_start_cluster
    cluster.add_node(num_cpus=1)
    with pytest.raises(ValueError, match="num_cpus, _system_config must not be provided"):
        ray.init(address=cluster.address, num_cpus=2, _system_config={"lease_linger_s": 0.1})
    assert not ray.is_initialized()
    # Ray ignores the dashboard's keywords when joining; raggio says so.
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logging.getLogger("raggio").addHandler(handler)
    try:
        ctx = ray.init(address=cluster.address, include_dashboard=True, dashboard_port=8265)
    finally:
        logging.getLogger("raggio").removeHandler(handler)
    assert any(m.startswith("include_dashboard, dashboard_port: ignored when connecting")
               for m in messages), messages
    assert ctx.dashboard_url is None  # the cluster's head runs none
    assert ray.cluster_resources()["CPU"] == 1


def test_a_dashboard_on_another_host_than_loopback_is_warned_of():
    """The private head's spec, as init(dashboard_host=...) builds it (the test binds no
    address but loopback)."""
    from raggio.node_spec import NodeSpec
    spec = NodeSpec(head=True)
    assert spec.dashboard_warning() is None  # no dashboard
    spec.set_dashboard("127.0.0.1", None)
    assert spec.dashboard_warning() is None
    assert (spec.dashboard_port, spec.dashboard_port_search) == (8265, True)
    spec.set_dashboard("0.0.0.0", 0)
    assert "reachable from the network" in spec.dashboard_warning()
    assert (spec.dashboard_port, spec.dashboard_port_search) == (0, False)


@pytest.mark.parametrize("ray_start_cluster", [{
    "num_cpus": 1, "_system_config": {"task_events_report_interval_ms": 0,
                                      "object_timeout_milliseconds": 200}}], indirect=True)
def test_a_clusters_system_config_reaches_every_node(ray_start_cluster):
    cluster = ray_start_cluster  # a Ray-only key (object_timeout_milliseconds) is skipped
    cluster.add_node(num_cpus=1, resources={"second": 1})
    ray.init(address=cluster.address)

    @ray.remote(resources={"second": 1})
    def interval():
        from raggio.config import get_config
        return get_config().task_events_report_interval_s

    assert ray.get(interval.remote()) == 0.0
