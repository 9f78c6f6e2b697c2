"""Why a test that passes on Ray fails on raggio: a table read from the failures, plus rules.

``classify(test_id, entry)`` returns ``(area, reason)``. ``area`` is ``"internal"`` when the
test reads Ray's internals (a fair reason to fail on raggio); otherwise it names the part of
raggio the gap belongs to (the areas the team works in), and the failure counts as public.
A failure that neither the table nor a rule explains counts as public under
``"unclassified"``, with its own message as the reason.

The table was filled by reading each failure of the baseline run (bench/RESULTS.md); a test
id is ``file::name[params]``.
"""

from __future__ import annotations

INTERNAL = "internal"
LIFETIME = "actor lifetime"
OPTIONS = "options & argument validation, actor class attributes, node labels"
GENERATORS = "generators"
ERRORS = "errors, cancel, runtime context, second driver"
NAMES = "module names, state API objects, driver logs, init() keywords"
OTHER = "other public behaviour"

_WRONG_ARGS = "TypeError not raised at .remote() for arguments that do not fit the signature"
_SECOND_DRIVER = ("a second driver (ray.init(address=...) in a subprocess) is refused: "
                  "'wrong or missing cluster token' (Ray needs no token)")
_CONTEXT_DICT = ("get_runtime_context().get() has 'actor_id': None outside actors "
                 "(Ray omits the key)")

#: test id -> (area, reason), from reading the failure.
TABLE: dict[str, tuple[str, str]] = {
    # test_basic.py
    "test_basic.py::test_release_resources_race": (
        OTHER, "1000 tasks reading local refs start 6 workers (Ray: at most 2)"),
    "test_basic.py::test_omp_threads_set": (NAMES, "init() does not set OMP_NUM_THREADS=1"),
    "test_basic.py::test_submit_api": (OPTIONS, "no RemoteFunction._remote / ActorClass._remote"),
    "test_basic.py::test_invalid_arguments": (
        OPTIONS, "option errors word differently: Ray says \"The keyword 'num_returns' only "
                 "accepts 0 or a positive integer\""),
    "test_basic.py::test_user_setup_function": (
        INTERNAL, "RAY_USER_SETUP_FUNCTION and ray._private.runtime_env"),
    "test_basic.py::test_fetch_local[ray_start_cluster_head0]": (
        INTERNAL, "needs _system_config automatic_object_spilling_enabled=False and a full store"),
    "test_basic.py::test_keyword_args": (OPTIONS, _WRONG_ARGS),
    "test_basic.py::test_args_starkwargs": (OPTIONS, _WRONG_ARGS),
    "test_basic.py::test_args_named_and_star": (OPTIONS, _WRONG_ARGS),
    "test_basic.py::test_oversized_function": (
        OPTIONS, "no ValueError 'The remote function ... is too large' for a huge closure"),
    "test_basic.py::test_object_id_backward_compatibility": (
        NAMES, "ray.ObjectID is an id class, Ray makes it an alias of ray.ObjectRef"),
    # test_basic_2.py
    "test_basic_2.py::test_variable_number_of_args": (OPTIONS, _WRONG_ARGS),
    "test_basic_2.py::test_system_config_when_connecting": (
        NAMES, "init(address=..., _system_config=...) does not raise ValueError"),
    "test_basic_2.py::test_wait": (
        OPTIONS, "ray.wait([]) raises ValueError (Ray returns ([], []))"),
    "test_basic_2.py::test_get_correct_node_ip": (
        INTERNAL, "patches ray._private.worker (raggio also lacks ray.util.get_node_ip_address)"),
    "test_basic_2.py::test_load_code_from_local": (ERRORS, _SECOND_DRIVER),
    # test_actor.py
    "test_actor.py::test_actor_method_metadata_cache": (
        INTERNAL, "ray.actor.ActorClassMethodMetadata._cache (raggio also lacks module ray.actor)"),
    "test_actor.py::test_keyword_args": (OPTIONS, "actor constructor called with wrong arguments: "
                                                  "no error at .remote()"),
    "test_actor.py::test_actor_class_attributes": (
        OPTIONS, "class attributes (inherited too) not readable on the actor class inside methods"),
    "test_actor.py::test_actor_static_attributes": (
        OPTIONS, "class attributes (inherited too) not readable on the actor class inside methods"),
    "test_actor.py::test_decorator_args": (
        OPTIONS, "@ray.remote() and @ray.remote(invalid_kwarg=0) on a class do not raise"),
    "test_actor.py::test_actor_inheritance": (
        OPTIONS, "subclassing an actor class: TypeError 'Inheriting from actor classes is not "
                 "currently supported.' expected"),
    "test_actor.py::test_options_name": (
        NAMES, "process title is 'raggio::Class.method', Ray's is 'ray::<options name>'"),
    "test_actor.py::test_actor_deletion": (
        LIFETIME, "actor not terminated when its handles go out of scope"),
    "test_actor.py::test_distributed_actor_handle_deletion": (
        LIFETIME, "actor not terminated when its last handle (passed to a task) goes away"),
    "test_actor.py::test_actor_creation_latency": (
        OTHER, "100 actors created at once on a 1-CPU node: the node misses 3 health checks and "
               "is declared dead (later tests on the shared cluster then time out)"),
    "test_actor.py::test_atexit_handler[__ray_terminate__]": (
        LIFETIME, "actor handles have no __ray_terminate__ method"),
    "test_actor.py::test_atexit_handler[ray.actor.exit_actor]": (
        LIFETIME, "no ray.actor.exit_actor (module ray.actor missing), so atexit never runs"),
    "test_actor.py::test_atexit_handler[ray.kill]": (
        OTHER, "passes alone; in the file's run it times out on the shared cluster whose node "
               "test_actor_creation_latency left dead"),
    "test_actor.py::test_caching_actors": (
        OPTIONS, "ActorClass.remote() before init() does not raise"),
    # test_generators.py
    "test_generators.py::test_generator_oom": (
        GENERATORS, "a generator task with num_returns=100 of 100 MB values does not finish "
                    "(timeout)"),
    # test_traceback.py
    "test_traceback.py::test_actor_creation_stacktrace": (
        ERRORS, "error text: header has actor_id instead of ip, and the source lines are missing "
                "from the traceback"),
    "test_traceback.py::test_task_stacktrace": (
        ERRORS, "error text: the traceback lacks the source lines (code is '<dynamic-code>')"),
    "test_traceback.py::test_actor_task_stacktrace": (
        ERRORS, "error text: actor header has actor_id, Ray shows repr=<...>; no source lines"),
    "test_traceback.py::test_exception_chain": (
        ERRORS, "error text: a nested task failure is not shown as a chain (foo -> bar)"),
    "test_traceback.py::test_dep_failure": (
        ERRORS, "error text: a dependency failure lacks 'At least one of the input arguments "
                "for this task could not be computed:'"),
    "test_traceback.py::test_actor_repr_in_traceback": (
        ERRORS, "error text: no repr=<actor __repr__> label in the actor task header"),
    "test_traceback.py::test_unpickleable_stacktrace": (
        ERRORS, "an exception that cannot be unpickled: Ray raises the original "
                "'__init__() missing 1 required positional argument'"),
    "test_traceback.py::test_serialization_error_message": (
        ERRORS, "error text for an unpicklable argument/closure: Ray says 'There was an issue "
                "serializing the object ... for a task or actor ...'"),
    # test_actor_failures.py
    "test_actor_failures.py::test_actor_restart": (
        LIFETIME, "actor handles have no __ray_terminate__ method"),
    "test_actor_failures.py::test_actor_restart_with_retry": (
        LIFETIME, "actor handles have no __ray_terminate__ method"),
    "test_actor_failures.py::test_decorated_method": (
        INTERNAL, "__ray_invocation_decorator__ hook (undocumented)"),
    # test_cancel.py
    "test_cancel.py::test_remote_cancel[True]": (
        ERRORS, "ray.cancel() of a task submitted by another task does nothing"),
    "test_cancel.py::test_remote_cancel[False]": (
        ERRORS, "ray.cancel() of a task submitted by another task does nothing"),
    # test_asyncio.py
    "test_asyncio.py::test_asyncio_double_await": (OTHER, "no ObjectRef.as_future()"),
    "test_asyncio.py::test_asyncio_exit_actor": (
        LIFETIME, "ray.actor.exit_actor() in an async actor: later calls do not fail"),
    "test_asyncio.py::test_async_callback": (INTERNAL, "ObjectRef._on_completed"),
    "test_asyncio.py::test_async_function_errored": (
        OPTIONS, "@ray.remote on an async def function does not raise ValueError"),
    "test_asyncio.py::test_async_obj_unhandled_errors": (
        INTERNAL, "ray.worker._unhandled_error_handler"),
    # test_runtime_context.py
    "test_runtime_context.py::test_was_current_actor_reconstructed": (ERRORS, _CONTEXT_DICT),
    "test_runtime_context.py::test_get_context_dict": (ERRORS, _CONTEXT_DICT),
    "test_runtime_context.py::test_current_actor": (ERRORS, "no RuntimeContext.current_actor"),
    "test_runtime_context.py::test_get_assigned_resources": (
        ERRORS, "get_assigned_resources() lacks 'CPU' for a task/actor that holds CPUs"),
    "test_runtime_context.py::test_ids": (
        ERRORS, "deprecated node_id/job_id/... properties give no 'Use get_..._id() instead' "
                "warning"),
    "test_runtime_context.py::test_get_task_name": (ERRORS, "no RuntimeContext.get_task_name()"),
    "test_runtime_context.py::test_get_task_function_name": (
        ERRORS, "no RuntimeContext.get_task_function_name()"),
    "test_runtime_context.py::test_async_actor_task_id": (
        NAMES, "ray.util.state.list_tasks returns dicts, Ray returns objects (.task_id)"),
    "test_runtime_context.py::test_dashboard_url_default": (
        NAMES, "init()'s result has no address_info['webui_url']"),
    "test_runtime_context.py::test_dashboard_url_disabled": (
        ERRORS, "no RuntimeContext.get_dashboard_url()"),
    # test_placement_group.py
    "test_placement_group.py::test_placement_ready[False]": (
        OPTIONS, "placement_group(bundles=[{'bundle': 1}]) (a reserved resource name) does not "
                 "raise"),
    "test_placement_group.py::test_placement_ready[True]": (
        OPTIONS, "placement_group(bundles=[{'bundle': 1}]) (a reserved resource name) does not "
                 "raise"),
    "test_placement_group.py::test_check_bundle_index[False]": (
        OPTIONS, "placement_group_bundle_index out of range (3 of 2, -2) does not raise "
                 "ValueError at .remote()"),
    "test_placement_group.py::test_capture_child_actors[False]": (
        OTHER, "get_current_placement_group() is None inside an actor created with "
               "placement_group_capture_child_tasks=True"),
    "test_placement_group.py::test_capture_child_tasks[False]": (
        OTHER, "get_current_placement_group() is None inside a task created with "
               "placement_group_capture_child_tasks=True"),
    "test_placement_group.py::test_placement_group_strict_spread[False]": (
        INTERNAL, "reads ray.state.actors() (the actors start, one per node, before that)"),
    "test_placement_group.py::test_cuda_visible_devices[False]": (
        OTHER, "a GPU task in a placement group never runs (timeout)"),
    "test_placement_group.py::test_placement_group_gpu_set[False]": (
        OTHER, "a GPU task in a placement group never runs (timeout)"),
    "test_placement_group.py::test_placement_group_gpu_assigned[False]": (
        OTHER, "a GPU task in a placement group never runs (timeout)"),
    "test_placement_group.py::test_placement_group_gpu_unique_assigned[False]": (
        OTHER, "a GPU task in a placement group never runs (timeout)"),
    "test_placement_group.py::test_placement_group_gpu_unique_assigned[True]": (
        OTHER, "a GPU task in a placement group never runs (timeout)"),
    "test_placement_group.py::test_mini_integration[False]": (
        OTHER, "a GPU task in a placement group never runs (timeout)"),
    "test_placement_group.py::test_placement_group_reschedule_when_node_dead[False]": (
        OTHER, "a group's bundles are not placed again after their node is removed (timeout)"),
    "test_placement_group.py::test_atomic_creation[False]": (
        OTHER, "a group that could not be placed at first never becomes ready once resources "
               "free up (timeout)"),
    "test_placement_group.py::test_actor_scheduling_not_block_with_placement_group": (
        OTHER, "1000 actors in 1000 pending groups: creating them takes over 60 s"),
    "test_placement_group.py::test_automatic_cleanup_job": (
        NAMES, "init()'s result has no 'redis_address' key"),
    "test_placement_group.py::test_automatic_cleanup_detached_actors": (
        NAMES, "init()'s result has no 'redis_address' key"),
    "test_placement_group.py::test_detached_placement_group": (
        NAMES, "init()'s result has no 'redis_address' key"),
    "test_placement_group.py::test_named_placement_group": (
        NAMES, "init()'s result has no 'redis_address' key"),
    # test_namespace.py
    "test_namespace.py::test_isolation": (ERRORS, _SECOND_DRIVER),
    "test_namespace.py::test_placement_groups": (ERRORS, _SECOND_DRIVER),
    "test_namespace.py::test_default_namespace": (ERRORS, _SECOND_DRIVER),
    "test_namespace.py::test_namespace_in_job_config": (
        NAMES, "no module ray.job_config (JobConfig)"),
    "test_namespace.py::test_namespace_client": (
        OTHER, "no Ray Client (Cluster.add_node(ray_client_server_port=...), ray.util.connect)"),
    "test_namespace.py::test_namespace_validation": (
        OPTIONS, "init(namespace=123) / options(namespace=123) do not raise TypeError"),
}

#: (substring of the failure message, area, reason), tried in order when the id is not in TABLE.
RULES: list[tuple[str, str, str]] = [
    ("only accepts an integer >= 0, got 'dynamic'", GENERATORS,
     "num_returns='dynamic' (dynamic generators) not supported"),
    ("but returned generator", GENERATORS,
     "a generator function with a static num_returns is not supported (values must be a tuple)"),
    ("internal:", INTERNAL, "uses Ray internals (stubbed by the shim)"),
    ("InternalName", INTERNAL, "passes a Ray internal constant on (stubbed by the shim)"),
    ("Ray Client", OTHER, "no Ray Client (connect_to_client=True)"),
    ("InternalRayAPI", INTERNAL, "uses Ray internals (stubbed by the shim)"),
    ("has no attribute 'kill_gcs_server'", INTERNAL,
     "restarts the GCS through Ray's node object (cluster.head_node.kill_gcs_server)"),
]


def classify(test_id: str, entry: dict) -> tuple[str, str]:
    """The ``(area, reason)`` for a test that passes on Ray and not on raggio."""
    key = test_id.removeprefix("upstream/")
    if key in TABLE:
        return TABLE[key]
    message = entry.get("message", "")
    for needle, area, reason in RULES:
        if needle in message:
            return area, reason
    first_line = message.splitlines()[0] if message else entry.get("outcome", "")
    return "unclassified", first_line[:160]
