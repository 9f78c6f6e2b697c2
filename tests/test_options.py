"""``@remote`` and ``.options()`` arguments are checked as Ray checks them.

The type and range of every option, with Ray's error types and messages; the
rules between options; the deprecated placement-group options; the size limit
of a pickled function; and placement groups' bundles and the requests that
must fit in them. Checks of arguments run without a cluster; what runs tasks
shares one cluster.
"""

import logging
import re

import pytest

import raggio as ray
from raggio.util import placement_group, remove_placement_group
from raggio.util.scheduling_strategies import (In, NodeLabelSchedulingStrategy,
                                               PlacementGroupSchedulingStrategy)


def f():
    return 1


class A:
    def node(self):
        return ray.get_runtime_context().get_node_id()


def type_error(keyword, types):
    return re.escape(f"The type of keyword '{keyword}' must be {types}, but received type "
                     f"{float}")


@pytest.mark.parametrize("keyword", ["max_retries", "max_calls"])
def test_counting_task_options_take_integers(keyword):
    with pytest.raises(TypeError, match=type_error(keyword, (int, type(None)))):
        ray.remote(**{keyword: 0.5})(f)


@pytest.mark.parametrize("keyword", ["max_restarts", "max_task_retries", "max_concurrency",
                                     "max_pending_calls"])
def test_counting_actor_options_take_integers(keyword):
    with pytest.raises(TypeError, match=type_error(keyword, (int, type(None)))):
        ray.remote(**{keyword: 0.5})(A)


def test_counting_options_ranges():
    with pytest.raises(ValueError, match="The keyword 'max_calls' only accepts None, 0 or a "
                                         "positive integer."):
        ray.remote(max_calls=-1)(f)
    infinite = ("The keyword '{}' only accepts None, 0, -1 or a positive integer, where -1 "
                "represents infinity.")
    with pytest.raises(ValueError, match=re.escape(infinite.format("max_retries"))):
        ray.remote(max_retries=-2)(f)
    for keyword in ("max_restarts", "max_task_retries", "max_pending_calls"):
        with pytest.raises(ValueError, match=re.escape(infinite.format(keyword))):
            ray.remote(**{keyword: -2})(A)
        ray.remote(**{keyword: -1})(A)
    with pytest.raises(ValueError, match="max_concurrency must be >= 1"):
        ray.remote(max_concurrency=0)(A)


@pytest.mark.parametrize("keyword", ["num_cpus", "num_gpus", "memory"])
def test_resource_quantities(keyword):
    with pytest.raises(TypeError, match=re.escape(
            f"The type of keyword '{keyword}' must be {(float, int, type(None))}")):
        ray.remote(**{keyword: "1"})(f)
    with pytest.raises(ValueError, match=f"The quantity of resource {keyword} cannot be "
                                         "negative"):
        ray.remote(**{keyword: -1})(f)
    with pytest.raises(ValueError, match="cannot go beyond 0.0001"):
        ray.remote(**{keyword: 0.00001})(f)
    ray.remote(**{keyword: 0.5})(f)


def test_custom_resources():
    with pytest.raises(ValueError, match="Use the 'num_cpus' and 'num_gpus' keyword instead"):
        ray.remote(resources={"CPU": 1})(f)
    with pytest.raises(ValueError, match="Use the 'num_cpus' and 'num_gpus' keyword instead"):
        ray.remote(resources={"GPU": 1})(A)
    with pytest.raises(ValueError, match="must not contain the key 'memory'"):
        ray.remote(resources={"memory": 1})(f)
    with pytest.raises(ValueError, match="`bundle` which is reserved for Ray"):
        ray.remote(resources={"bundle": 1})(f)
    with pytest.raises(ValueError, match="The quantity of resource custom cannot be negative"):
        ray.remote(resources={"custom": -1})(f)
    with pytest.raises(TypeError, match="custom"):
        ray.remote(resources={"custom": "lots"})(f)
    with pytest.raises(TypeError, match="'resources'"):
        ray.remote(resources=[("custom", 1)])(f)


def test_other_task_options():
    with pytest.raises(ValueError, match="The keyword 'num_returns' only accepts None"):
        ray.remote(num_returns=-1)(f)
    with pytest.raises(ValueError, match="retry_exceptions must be either a boolean or a list "
                                         "of exceptions"):
        ray.remote(retry_exceptions=[int])(f)
    ray.remote(retry_exceptions=[ValueError, KeyError])(f)
    with pytest.raises(TypeError, match="'accelerator_type'"):
        ray.remote(accelerator_type=1)(f)
    with pytest.raises(TypeError, match="'runtime_env'"):
        ray.remote(runtime_env="env")(f)
    with pytest.raises(TypeError, match="'enable_task_events'"):
        ray.remote(enable_task_events=None)(f)
    with pytest.raises(TypeError, match="'_metadata'"):
        ray.remote(_metadata=3.14)(f)
    with pytest.raises(TypeError, match="'scheduling_strategy'"):
        ray.remote(scheduling_strategy=3)(f)
    with pytest.raises(ValueError, match="Invalid scheduling_strategy value PACK"):
        ray.remote(scheduling_strategy="PACK")(f)
    with pytest.raises(ValueError, match="Setting 'object_store_memory' is not implemented for "
                                         "tasks"):
        ray.remote(object_store_memory=1)(f)


def test_other_actor_options():
    with pytest.raises(ValueError, match="actor `lifetime` argument must be one of"):
        ray.remote(lifetime="forever")(A)
    with pytest.raises(TypeError, match="'namespace'"):
        ray.remote(namespace=1)(A)
    with pytest.raises(TypeError, match="'get_if_exists'"):
        ray.remote(get_if_exists=1)(A)
    with pytest.raises(ValueError, match="The actor name must be specified to use "
                                         "`get_if_exists`."):
        ray.remote(get_if_exists=True)(A)
    with pytest.raises(TypeError, match="'concurrency_groups'"):
        ray.remote(concurrency_groups="io")(A)
    with pytest.warns(DeprecationWarning, match="object_store_memory"):
        ray.remote(object_store_memory=2**20)(A)


def test_unknown_options_name_the_valid_ones():
    with pytest.raises(ValueError, match="Invalid option keyword bogus for remote functions. "
                                         "Valid ones are .*'num_returns'"):
        ray.remote(bogus=1)(f)
    with pytest.raises(ValueError, match="Invalid option keyword num_returns for actors"):
        ray.remote(num_returns=1)(A)
    with pytest.raises(ValueError, match="Invalid option keyword max_restarts for remote "
                                         "functions"):
        ray.remote(f).options(max_restarts=1)


def test_options_only_rules():
    with pytest.raises(ValueError, match="Setting 'max_calls' is not supported in "
                                         r"'.options\(\)'."):
        ray.remote(f).options(max_calls=1)
    with pytest.raises(ValueError, match="Setting 'concurrency_groups' is not supported"):
        ray.remote(A).options(concurrency_groups={"io": 1})
    named = ray.remote(name="a")(A)
    named.options(get_if_exists=True)  # the name set at decoration counts


def test_label_options():
    ray.remote(label_selector={"region": "us", "gpu": "!A100", "zone": "in(a, b)",
                               "market": "!in(spot,preemptible)"})(f)
    with pytest.raises(ValueError, match="Invalid label selector value `-us`"):
        ray.remote(label_selector={"region": "-us"})(f)
    with pytest.raises(ValueError, match="Invalid label key name `-region`"):
        ray.remote(label_selector={"-region": "us"})(A)
    with pytest.raises(TypeError, match="'label_selector'"):
        ray.remote(label_selector=["region"])(f)
    ray.remote(fallback_strategy=[{"label_selector": {"region": "eu"}}])(f)
    with pytest.raises(ValueError, match="Empty dictionary found in `fallback_strategy`."):
        ray.remote(fallback_strategy=[{}])(f)
    with pytest.raises(ValueError, match="Unsupported option found: 'num_cpus'"):
        ray.remote(fallback_strategy=[{"num_cpus": 1}])(f)
    with pytest.raises(ValueError, match="Each element in fallback_strategy must be a "
                                         "dictionary."):
        ray.remote(fallback_strategy=["region=eu"])(f)
    ray.remote(scheduling_strategy=NodeLabelSchedulingStrategy({"region": In("us")}))(A)


def test_decorator_arguments():
    with pytest.raises(AssertionError, match="The @ray.remote decorator must be applied either "
                                             "with no arguments and no parentheses"):
        ray.remote()
    with pytest.raises(AssertionError):
        ray.remote(f, num_cpus=1)
    with pytest.raises(TypeError, match="The @ray.remote decorator must be applied to either a "
                                        "function or a class."):
        ray.remote(num_cpus=1)(len)


def test_options_set_to_none_take_the_default(ray_start_regular_shared):
    @ray.remote(num_cpus=2, num_returns=2)
    def pair():
        return 1, 2

    assert ray.get(pair.remote()) == [1, 2]
    assert ray.get(pair.options(num_returns=None, num_cpus=None).remote()) == (1, 2)


def test_metadata_is_merged_by_namespace():
    g = ray.remote(_metadata={"a": {"x": 1}})(f)
    assert g.options(_metadata={"a": {"y": 2}, "b": {}})._options["_metadata"] == {
        "a": {"x": 1, "y": 2}, "b": {}}


def test_bad_placement_group_bundles(ray_start_regular_shared):
    with pytest.raises(ValueError, match="Placement group bundles must be a list"):
        placement_group({"CPU": 1})
    with pytest.raises(ValueError, match="Bundles must be a non-empty list of resource "
                                         "dictionaries"):
        placement_group([])
    with pytest.raises(ValueError, match="Bundles cannot be an empty dictionary or resources "
                                         "with only 0 values"):
        placement_group([{"CPU": 1}, {}])
    with pytest.raises(ValueError, match="only 0 values"):
        placement_group([{"CPU": 0, "GPU": 0}])
    with pytest.raises(ValueError, match="bundle is a system reserved resource"):
        placement_group([{"CPU": 1, "bundle": 1}])
    with pytest.raises(ValueError, match="non-negative numbers"):
        placement_group([{"CPU": -1}])
    with pytest.raises(ValueError, match="Invalid placement group strategy SOMETIMES"):
        placement_group([{"CPU": 1}], strategy="SOMETIMES")
    with pytest.raises(ValueError, match="`lifetime` argument must be either `None` or "
                                         "'detached'"):
        placement_group([{"CPU": 1}], lifetime="forever")


def test_requests_that_fit_no_bundle_are_refused(ray_start_regular_shared):
    def f():  # defined here: the workers cannot import this test module
        return 1

    pg = placement_group([{"CPU": 1}, {"CPU": 0.5}])
    ray.get(pg.ready(), timeout=30)
    in_group = PlacementGroupSchedulingStrategy(pg)
    with pytest.raises(ValueError, match=r"Cannot schedule f with the placement group because "
                                         r"the resource request \{'CPU': 2.0\} cannot fit into "
                                         "any bundles"):
        ray.remote(f).options(num_cpus=2, scheduling_strategy=in_group).remote()
    with pytest.raises(ValueError, match="Cannot schedule A with the placement group"):
        ray.remote(A).options(resources={"custom": 1}, scheduling_strategy=in_group).remote()
    with pytest.raises(ValueError, match="bundle index 2 is invalid"):
        ray.remote(f).options(scheduling_strategy=PlacementGroupSchedulingStrategy(pg, 2)).remote()
    assert ray.get(ray.remote(f).options(num_cpus=1, scheduling_strategy=in_group).remote()) == 1
    remove_placement_group(pg)


def test_deprecated_placement_group_options_still_place(ray_start_regular_shared):
    pg = placement_group([{"CPU": 1}])
    ray.get(pg.ready(), timeout=30)

    @ray.remote(num_cpus=1)
    def group_of_task():
        return ray.util.get_current_placement_group()

    with pytest.warns(DeprecationWarning, match="placement_group parameter is deprecated"):
        old_style = group_of_task.options(placement_group=pg, placement_group_bundle_index=0,
                                          placement_group_capture_child_tasks=True)
    assert ray.get(old_style.remote(), timeout=30) == pg
    with pytest.raises(ValueError, match="Placement groups should be specified via the "
                                         "scheduling_strategy option"):
        group_of_task.options(placement_group=pg,
                              scheduling_strategy=PlacementGroupSchedulingStrategy(pg))
    remove_placement_group(pg)


class _Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_oversized_functions(ray_start_regular_shared):
    big = b"x" * (11 * 2**20)

    @ray.remote
    def large():
        return len(big)

    records = _Records()
    logger = logging.getLogger("raggio.core.remote_function")
    logger.addHandler(records)  # raggio's loggers print to stderr and do not propagate
    try:
        assert ray.get(large.remote()) == len(big)
    finally:
        logger.removeHandler(records)
    assert any("The remote function large is very large (11 MiB)" in message
               for message in records.messages)

    huge = b"x" * (101 * 2**20)

    @ray.remote
    class Huge:
        def size(self):
            return len(huge)

    with pytest.raises(ValueError, match=r"The actor Huge is too large \(101 MiB > "
                                         r"FUNCTION_SIZE_ERROR_THRESHOLD=95 MiB\)"):
        Huge.remote()
