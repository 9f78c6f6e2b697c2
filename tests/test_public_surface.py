"""raggio's public names against Ray 2.60's, module by module.

``tests/data/ray_2_60_public_names.json`` holds the public names of each Ray module a Ray
user imports (``ray``, ``ray.actor``, ``ray.util.state``, ...), written by
``tests/data/make_ray_public_names.py`` in Ray's own virtualenv. For each name, the raggio
module at the same path (``ray.util.state`` -> ``raggio.util.state``) must have it: in its
``__all__`` where Ray's module declares one, of the same kind (a class is a class, a function
is callable, a module is a module) and, for a constant, with the same value.

Unless ``DEPARTURES`` lists it. That dict is the one place where raggio departs from Ray's
surface, and each entry says why, starting with its category. A departure that raggio no
longer needs fails too, so the list never hides a name raggio has: when issue #14 brings
``ray.util.metrics``, its entry goes and its names are checked from then on.
"""

from __future__ import annotations

import importlib
import json
import types
import typing
from pathlib import Path

import pytest

RAY = json.loads((Path(__file__).parent / "data" / "ray_2_60_public_names.json").read_text())
MODULES: dict[str, dict] = RAY["modules"]

#: Why a departure departs: the first words of its reason.
CATEGORIES = (
    "internal",        # Ray's own machinery, not something a program calls
    "deprecated",      # deprecated or removed in Ray
    "not applicable",  # a Ray library or platform raggio does not aim to be
    "not yet",         # a real gap that no open issue covers yet
    "issue #",         # an open issue brings it (issue #14 metrics, #15 jobs and remote
                       # drivers, #16 the launcher, #17 the autoscaler, #13 the dashboard)
    "own value",       # raggio has the name; its value is raggio's own
)

_CROSS_LANGUAGE = "not applicable: raggio runs Python workers only (no Java or C++ workers)"
_COMPILED_GRAPHS = ("not applicable: Ray's compiled graphs and GPU direct transport are a "
                    "library raggio does not aim to be")
_ID_TYPES = ("internal: an id type of Ray's internals; no API takes or returns it "
             "(raggio has the ids a program meets: JobID, NodeID, WorkerID, ActorID, TaskID, "
             "ObjectRef, PlacementGroupID)")
_RAY_CLIENT = ("deprecated: Ray's client builder and connect() give way to init('ray://...'), "
               "which raggio has (raggio/client/)")
_LAUNCHER = "issue #16 brings the cluster launcher, which this call drives"
_STATE_INTERNAL = ("internal: a helper of Ray's state API server; the public functions of "
                   "raggio.util.state take and return the same values without it")
_SUMMARY_CLASSES = ("internal: Ray builds its summarize_* dicts from these classes; raggio's "
                    "summarize_* return the same dicts")

#: Ray name or module (dotted path) -> why raggio does not have it. A module's entry covers
#: every name in it.
DEPARTURES: dict[str, str] = {
    # ray
    "ray.ActorClassID": _ID_TYPES,
    "ray.FunctionID": _ID_TYPES,
    "ray.UniqueID": _ID_TYPES,
    "ray.ClientBuilder": _RAY_CLIENT,
    "ray.client": _RAY_CLIENT,
    "ray.Language": _CROSS_LANGUAGE,
    "ray.java_actor_class": _CROSS_LANGUAGE,
    "ray.java_function": _CROSS_LANGUAGE,
    "ray.LoggingConfig": ("not yet: structured logging; init(logging_config=...) is refused "
                          "with that reason"),
    "ray._config": "internal: Ray's C++ system config object (raggio's is raggio.config)",
    "ray.internal": "internal: Ray's internal helpers (free, memory summaries)",
    "ray.__version__": "own value: raggio's version, not Ray's",
    "ray.data": "not applicable: Ray Data is a library raggio does not aim to be",
    "ray.workflow": "not applicable: Ray Workflows (deprecated in Ray) is out of raggio's scope",
    "ray.widgets": "not applicable: Jupyter widgets of Ray's libraries",
    # ray.exceptions
    "ray.exceptions.CrossLanguageError": _CROSS_LANGUAGE,
    "ray.exceptions.RayCgraphCapacityExceeded": _COMPILED_GRAPHS,
    "ray.exceptions.RayChannelError": _COMPILED_GRAPHS,
    "ray.exceptions.RayChannelTimeoutError": _COMPILED_GRAPHS,
    "ray.exceptions.RayDirectTransportError": _COMPILED_GRAPHS,
    "ray.exceptions.UserCodeException": ("not applicable: Ray Data wraps the errors of its "
                                         "user functions in it"),
    "ray.exceptions.ObjectFreedError": ("internal: raised only after Ray's internal "
                                        "ray._private.internal_api.free, which raggio has not"),
    "ray.exceptions.ObjectRefStreamEndOfStreamError": (
        "internal: Ray's generator machinery raises it inside; a program sees StopIteration"),
    "ray.exceptions.OufOfBandObjectRefSerializationException": (
        "not applicable: raised when RAY_allow_out_of_band_object_ref_serialization=0 "
        "forbids pickling refs; raggio always allows it (the object stays until its owner "
        "exits, see docs/ARCHITECTURE.md)"),
    "ray.exceptions.RAY_EXCEPTION_TYPES": "internal: a list Ray's error serializer reads",
    # ray.util
    "ray.util.collective": "not applicable: NCCL/gloo collective communication",
    "ray.util.connect": _RAY_CLIENT,
    "ray.util.disconnect": _RAY_CLIENT,
    "ray.util.iter": "deprecated: Ray's parallel iterators, deprecated since Ray 2.0",
    "ray.util.pdb": "not yet: Ray's distributed debugger (breakpoints in tasks, `ray debug`)",
    "ray.util.ray_debugpy": "not yet: Ray's distributed debugger over debugpy",
    "ray.util.accelerators.tpu": "not applicable: helpers for Google Cloud TPU pod slices",
    "ray.util.multiprocessing": ("not yet: Ray's multiprocessing.Pool on actors; no issue "
                                 "covers it"),
    "ray.util.placement_group.NODE_ID_LABEL_KEY": (
        "internal: the label key Ray's placement-group code matches bundles with"),
    "ray.util.placement_group.check_placement_group_index": (
        "internal: an argument check of Ray's option parsing"),
    "ray.util.serialization.StandaloneSerializationContext": (
        "internal: Ray's serialization context outside a worker"),
    # ray.util.state
    "ray.util.state.list_cluster_events": ("issue #13 brings cluster events (node deaths, "
                                           "actor restarts) with the dashboard"),
    "ray.util.state.list_runtime_envs": "issue #15 brings runtime environments",
    "ray.util.state.common.ClusterEventState": "issue #13 brings cluster events",
    "ray.util.state.common.RuntimeEnvState": "issue #15 brings runtime environments",
    **{f"ray.util.state.common.{name}": _STATE_INTERNAL for name in (
        "AVAILABLE_STATES", "DEFAULT_DOWNLOAD_FILENAME", "DRIVER_TASK_ID_PREFIX",
        "GetLogOptions", "Humanify", "Link", "ListApiResponse", "PredicateType",
        "RAY_MAX_LIMIT_FROM_API_SERVER", "RAY_MAX_LIMIT_FROM_DATA_SOURCE",
        "SummaryApiResponse", "dict_to_state", "filter_fields", "protobuf_message_to_dict",
        "protobuf_to_task_state_dict", "remove_ansi_escape_codes", "resource_to_schema",
        "state_column")},
    **{f"ray.util.state.common.{name}": _SUMMARY_CLASSES for name in (
        "ActorSummaries", "ActorSummaryPerClass", "NestedTaskSummary", "ObjectSummaries",
        "ObjectSummaryPerKey", "StateSummary", "TaskSummaries",
        "TaskSummaryPerFuncOrClassName")},
    "ray.util.state.exception.DataSourceUnavailable": (
        "internal: raised inside Ray's dashboard state server; a caller of the state API "
        "sees RayStateApiException"),
    # what later issues bring
    **{f"ray.autoscaler.sdk.{name}": _LAUNCHER for name in (
        "bootstrap_config", "configure_logging", "create_or_update_cluster",
        "fillout_defaults", "get_docker_host_mount_location", "get_head_node_ip",
        "get_worker_node_ips", "register_callback_handler", "rsync", "run_on_cluster",
        "teardown_cluster")},
}

_MISSING = object()


def raggio_path(ray_path: str) -> str:
    return "raggio" + ray_path[len("ray"):]


def departure(module: str, name: str) -> str | None:
    return DEPARTURES.get(f"{module}.{name}") or DEPARTURES.get(module)


def skipped(module: str, name: str) -> bool:
    """A listed departure (a name with its own value must still be here)."""
    reason = departure(module, name)
    return reason is not None and not reason.startswith("own value")


def lookup(module: str, name: str):
    """raggio's value for Ray's ``module.name``, or ``_MISSING``."""
    try:
        raggio_module = importlib.import_module(raggio_path(module))
    except ImportError:
        return _MISSING
    return getattr(raggio_module, name, _MISSING)


def problems_with(module: str, name: str, ray_entry: dict) -> str | None:
    """What is wrong with raggio's counterpart of Ray's ``module.name``, if anything."""
    value = lookup(module, name)
    if value is _MISSING:
        return "missing"
    if MODULES[module]["source"] == "__all__":
        exported = getattr(importlib.import_module(raggio_path(module)), "__all__", ())
        if name not in exported:
            return "not in __all__"
    kind = ray_entry["kind"]
    if kind == "class" and not isinstance(value, type):
        return f"a class in Ray, a {type(value).__name__} here"
    if kind == "function" and not callable(value):
        return f"callable in Ray, a {type(value).__name__} here"
    if kind == "module" and not isinstance(value, types.ModuleType):
        return f"a module in Ray, a {type(value).__name__} here"
    own_value = (departure(module, name) or "").startswith("own value")
    if "value" in ray_entry and not own_value and value != ray_entry["value"]:
        return f"{value!r} here, {ray_entry['value']!r} in Ray"
    return None


@pytest.mark.parametrize("module", list(MODULES))
def test_every_ray_name_is_here_or_a_listed_departure(module):
    checked = {name: entry for name, entry in MODULES[module]["names"].items()
               if entry["kind"] != "absent"  # in Ray's __all__ but not in Ray either
               and not skipped(module, name)}
    wrong = [f"{module}.{name}: {problem}" for name, entry in checked.items()
             if (problem := problems_with(module, name, entry))]
    assert not wrong, ("add these to raggio, or list them in DEPARTURES with the reason:\n"
                       + "\n".join(wrong))


def ray_paths() -> set[str]:
    return set(MODULES) | {f"{module}.{name}" for module, data in MODULES.items()
                           for name in data["names"]}


@pytest.mark.parametrize("path", sorted(DEPARTURES))
def test_a_departure_names_a_ray_name_and_says_why(path):
    assert path in ray_paths(), "not one of Ray's names in tests/data; remove the entry"
    reason = DEPARTURES[path]
    assert reason.startswith(CATEGORIES), f"start the reason with one of {CATEGORIES}"
    assert len(reason.split(":", 1)[-1].split()) >= 3, "say why in a few words"


@pytest.mark.parametrize("path", sorted(path for path, reason in DEPARTURES.items()
                                        if not reason.startswith("own value")))
def test_a_departure_is_removed_once_raggio_has_the_name(path):
    if path in MODULES:
        try:
            importlib.import_module(raggio_path(path))
        except ImportError:
            return
        pytest.fail(f"{raggio_path(path)} exists now: list only its missing names")
    module, name = path.rsplit(".", 1)
    value = lookup(module, name)
    # A subpackage that only shares the name is not Ray's export: ``raggio.client`` is the
    # ray:// package (DESIGN §5), an attribute of raggio once imported, never in __all__.
    internal_package = isinstance(value, types.ModuleType) and name not in getattr(
        importlib.import_module(raggio_path(module)), "__all__", (name,))
    assert value is _MISSING or internal_package, (
        f"raggio has {raggio_path(path)} now: remove its departure, so that it is checked")


@pytest.mark.parametrize("module", list(MODULES))
def test_raggio_exports_only_names_it_has(module):
    try:
        raggio_module = importlib.import_module(raggio_path(module))
    except ImportError:
        pytest.skip(f"no {raggio_path(module)} yet (its names are departures)")
    for name in getattr(raggio_module, "__all__", ()):
        assert hasattr(raggio_module, name), name


def test_names_behave_as_rays_where_a_program_relies_on_it():
    import raggio.types
    import raggio.util.queue
    import raggio.util.state

    assert typing.get_origin(raggio.types.ObjectRef[int]) is raggio.types.ObjectRef
    assert issubclass(raggio.util.queue.Empty, Exception)
    assert raggio.ObjectID is raggio.ObjectRef  # Ray's old alias
    # Submodules are attributes of their package without an import of their own.
    assert raggio.util.state.list_actors is raggio.util.state.api.list_actors
    assert raggio.util.accelerators.NVIDIA_TESLA_V100 == "V100"
