"""raggio: Ray's programming model and cluster management, in pure Python.

``import raggio as ray`` gives Ray's public API; this module only re-exports
it from the internal packages (see docs/ARCHITECTURE.md for the layout).
The names are loaded on first use (PEP 562), so the daemons, which import
``raggio.head`` or ``raggio.node.main`` and never the API, start without it:
that is a third of their start-up time and of their memory.
"""

import importlib

from raggio.core import context as _context

__version__ = "0.1.0"

SCRIPT_MODE = 0
WORKER_MODE = 1

#: Public name -> (module, attribute in it; None for the module itself).
_EXPORTS = {
    "actor": ("raggio.actor", None),
    "autoscaler": ("raggio.autoscaler", None),
    "exceptions": ("raggio.exceptions", None),
    "util": ("raggio.util", None),
    "ActorClass": ("raggio.core.actor", "ActorClass"),
    "ActorHandle": ("raggio.core.actor", "ActorHandle"),
    "method": ("raggio.core.actor", "method"),
    "get_actor": ("raggio.core.actor", "get_actor"),
    "ObjectRef": ("raggio.core.object_ref", "ObjectRef"),
    "ObjectRefGenerator": ("raggio.core.generators", "ObjectRefGenerator"),
    "DynamicObjectRefGenerator": ("raggio.core.generators", "DynamicObjectRefGenerator"),
    "ObjectID": ("raggio.core.object_ref", "ObjectRef"),  # Ray's alias, for old programs
    "RemoteFunction": ("raggio.core.remote_function", "RemoteFunction"),
    "PlacementGroupID": ("raggio.util.placement_group", "PlacementGroupID"),
    "timeline": ("raggio.util.state.timeline", "timeline"),
    "get_runtime_context": ("raggio.runtime_context", "get_runtime_context"),
    **{name: ("raggio.common.ids", name)
       for name in ("ActorID", "JobID", "NodeID", "TaskID", "WorkerID")},
    **{name: ("raggio.core.api", name)
       for name in ("available_resources", "cancel", "cluster_resources", "get", "get_gpu_ids",
                    "init", "is_initialized", "kill", "nodes", "put", "remote", "shutdown",
                    "wait")},
}

__all__ = sorted([*_EXPORTS, "SCRIPT_MODE", "WORKER_MODE", "__version__"])

#: Modules that are attributes of ``ray`` without being in Ray's ``__all__``.
_MODULES = {"job_config": ("raggio.job_config", None), "types": ("raggio.types", None)}


def __getattr__(name: str):
    try:
        module_name, attribute = _EXPORTS.get(name) or _MODULES[name]
    except KeyError:
        raise AttributeError(f"module 'raggio' has no attribute {name!r}") from None
    value = importlib.import_module(module_name)
    if attribute is not None:
        value = getattr(value, attribute)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | set(_MODULES))


def _auto_init() -> None:
    """``init()`` on the first API call that needs a cluster (as in Ray), from whichever
    module made it: they sit below the API and do not import it."""
    importlib.import_module("raggio.core.api").init()


_context.set_auto_init(_auto_init)


def _connect_client(address: str, **options):
    """``init("ray://...")``'s client core; the client package sits above ``core``."""
    return importlib.import_module("raggio.client.client_core").connect_client(address,
                                                                               **options)


_context.set_client_connector(_connect_client)
