"""``request_resources`` (Ray's ``ray.autoscaler.sdk``): Ray's argument checks, and the request
it leaves in the control store's KV for the autoscaler, from a driver and from a task."""

from __future__ import annotations

import json

import pytest

import raggio as ray
from raggio.autoscaler import sdk
from raggio.autoscaler.sdk import request_resources
from raggio.common.autoscaler_status import RESOURCE_REQUEST_KEY
from raggio.core import context


def standing_request() -> list[dict] | None:
    value = context.get_core().request("gcs", "kv_get", RESOURCE_REQUEST_KEY)
    return None if value is None else json.loads(value)


@pytest.mark.parametrize("kwargs, error", [
    ({"num_cpus": 1.5}, "num_cpus should be of type int."),
    ({"bundles": {"CPU": 1}}, "bundles should be of type List"),
    ({"bundles": [("CPU", 1)]}, "each bundle should be a Dict."),
    ({"bundles": [{"CPU": 0.5}]}, "each bundle key should be str and value as int."),
    ({"bundles": [{1: 1}]}, "each bundle key should be str and value as int."),
])
def test_rays_argument_checks(kwargs, error):
    with pytest.raises(TypeError, match=error):
        request_resources(**kwargs)


@pytest.mark.parametrize("kwargs", [{"num_cpus": -1}, {"bundles": [{"GPU": -2}]}])
def test_negative_amounts_are_refused(kwargs):
    with pytest.raises(ValueError, match="negative amount"):
        request_resources(**kwargs)


def test_needs_a_connected_driver():
    assert not ray.is_initialized()
    with pytest.raises(RuntimeError, match=r"call raggio.init\(\)"):
        request_resources(num_cpus=1)


def test_rays_module_path_exports_it():
    assert ray.autoscaler.sdk is sdk
    assert sdk.__all__ == ["request_resources"]


def test_each_request_replaces_the_last_and_an_empty_one_withdraws(ray_start_regular):
    assert standing_request() is None
    request_resources(num_cpus=3)
    assert standing_request() == [{"CPU": 1}] * 3
    request_resources(num_cpus=1, bundles=[{"GPU": 1, "CPU": 4}, {"custom": 2}])
    assert standing_request() == [{"CPU": 1}, {"GPU": 1, "CPU": 4}, {"custom": 2}]
    request_resources()
    assert standing_request() == []


def test_a_task_can_request(ray_start_regular):
    @ray.remote
    def ask():
        request_resources(bundles=[{"CPU": 2}])

    ray.get(ask.remote())
    assert standing_request() == [{"CPU": 2}]
