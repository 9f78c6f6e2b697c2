"""Write ``ray_2_60_public_names.json``: the public names of the Ray modules a Ray user imports.

Re-run it with Ray's own interpreter (never raggio's: Ray is installed in its own virtualenv),
from the repository root::

    RAY_USAGE_STATS_ENABLED=0 unshare -rn \
        /work/main/.venv-ray/bin/python tests/data/make_ray_public_names.py

``tests/test_public_surface.py`` reads the file and checks that raggio has each name (or lists
it as a departure with the reason). The script only imports Ray's modules and reads their
attributes (it never calls ``ray.init``); ``unshare -rn`` keeps even that off the network.

What "public" means here, module by module:

* a module with ``__all__`` (``ray``, ``ray.util``, ``ray.util.state``, ...): exactly its
  ``__all__``, as Ray itself declares it;
* a module without one (``ray.actor``, ``ray.exceptions``, ``ray.cluster_utils``, ...): the
  names its own source binds at top level (``def``, ``class``, assignments; not imports) that
  do not start with ``_``, leaving out loggers and typing helpers (``TypeVar``s, aliases such
  as ``Union[...]``). Names a module merely imports for its own use (``ray.actor.logging``,
  ``ray.exceptions.ActorID``) are not its surface.

Each name is recorded with its kind (``module``, ``class``, ``function`` for any other
callable, ``other``; ``absent`` for a name in ``__all__`` that Ray itself does
not define), Ray's stability annotation where it has one (``PublicAPI``,
``DeveloperAPI``, ``Deprecated``; see ``ray.util.annotations``) and, for a constant (a str,
int, float or bool), its value.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import json
import logging
import sys
import types
import typing
import warnings
from pathlib import Path

#: The modules a Ray user imports: Ray Core's API reference, plus what later raggio issues
#: bring (metrics #14, jobs and runtime envs #15, the launcher #16 and autoscaler #17).
#: Ray's libraries (Data, Train, Tune, Serve, RLlib, Workflows, collective, compiled graphs)
#: are not here: raggio does not aim to be them.
MODULES = [
    "ray",
    "ray.actor",
    "ray.exceptions",
    "ray.remote_function",
    "ray.runtime_context",
    "ray.runtime_env",
    "ray.job_config",
    "ray.cluster_utils",
    "ray.types",
    "ray.util",
    "ray.util.accelerators",
    "ray.util.actor_pool",
    "ray.util.annotations",
    "ray.util.metrics",
    "ray.util.multiprocessing",
    "ray.util.placement_group",
    "ray.util.queue",
    "ray.util.scheduling_strategies",
    "ray.util.serialization",
    "ray.util.state",
    "ray.util.state.common",
    "ray.util.state.exception",
    "ray.job_submission",
    "ray.autoscaler.sdk",
]

OUTPUT = Path(__file__).with_name("ray_2_60_public_names.json")


def top_level_bindings(module: types.ModuleType) -> list[str]:
    """Names bound at the top of the module's source by def, class or assignment."""
    tree = ast.parse(inspect.getsource(module))
    names: list[str] = []

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.append(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names.extend(n.id for t in targets for n in ast.walk(t)
                             if isinstance(n, ast.Name))
            elif isinstance(node, ast.If):  # e.g. definitions under a version check
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)

    visit(tree.body)
    return names


def is_typing_helper(value: object) -> bool:
    """A TypeVar, a typing alias such as ``Union[A, B]``, or a logger: not API."""
    return (isinstance(value, (typing.TypeVar, logging.Logger))
            or type(value).__module__ == "typing")


def kind_of(value: object) -> str:
    if isinstance(value, types.ModuleType):
        return "module"
    if isinstance(value, type):
        return "class"
    return "function" if callable(value) else "other"


def annotation_of(value: object) -> str | None:
    """Ray's PublicAPI/DeveloperAPI/Deprecated mark, set on the object itself (not inherited)."""
    if getattr(value, "_annotated", None) != getattr(value, "__name__", object()):
        return None
    return value._annotated_type.value


def is_submodule(module: types.ModuleType, name: str) -> bool:
    return (hasattr(module, "__path__")
            and importlib.util.find_spec(f"{module.__name__}.{name}") is not None)


def describe(module_name: str, name: str) -> dict:
    module = sys.modules[module_name]
    try:
        value = getattr(module, name)
    except Exception:
        if is_submodule(module, name):
            # a lazy submodule whose own dependencies are not installed (ray.data)
            return {"kind": "module", "annotation": None}
        # ``ray.__all__`` names ``cpp_function``, which Ray 2.60 does not define
        return {"kind": "absent", "annotation": None}
    if isinstance(value, str) and is_submodule(module, name):
        # ray/__init__.py binds a few lazily loaded libraries (ray.data, ray.workflow)
        # to their own names as strings until first use.
        return {"kind": "module", "annotation": None}
    entry = {"kind": kind_of(value), "annotation": annotation_of(value)}
    if isinstance(value, (str, int, float, bool)):  # a constant: its value is API too
        entry["value"] = value
    return entry


def public_names(module_name: str) -> tuple[bool, list[str]]:
    """(whether the module declares ``__all__``, its public names)."""
    module = importlib.import_module(module_name)
    if hasattr(module, "__all__"):
        return True, sorted(set(module.__all__))
    names = {name for name in top_level_bindings(module)
             if not name.startswith("_") and hasattr(module, name)
             and not is_typing_helper(getattr(module, name))}
    return False, sorted(names)


def one_name_a_line(data: dict) -> str:
    """JSON with one line per name, so that a diff after a Ray upgrade reads name by name."""
    modules = []
    for module_name, module in data["modules"].items():
        names = ",\n".join(f"    {json.dumps(name)}: {json.dumps(entry)}"
                           for name, entry in module["names"].items())
        source = json.dumps(module["source"])
        modules.append(f'  {json.dumps(module_name)}: {{"source": {source}, "names": {{\n'
                       f"{names}\n  }}}}")
    header = "".join(f" {json.dumps(key)}: {json.dumps(value)},\n"
                     for key, value in data.items() if key != "modules")
    return "{\n" + header + ' "modules": {\n' + ",\n".join(modules) + "\n }\n}\n"


def main() -> None:
    import ray

    warnings.simplefilter("ignore")  # deprecated names warn when read; they are still names
    modules = {}
    for module_name in MODULES:
        has_all, names = public_names(module_name)
        modules[module_name] = {
            "source": "__all__" if has_all else "top-level definitions",
            "names": {name: describe(module_name, name) for name in names},
        }
    data = {"ray_version": ray.__version__,
            "generated_by": "tests/data/make_ray_public_names.py",
            "modules": modules}
    OUTPUT.write_text(one_name_a_line(data))
    total = sum(len(m["names"]) for m in modules.values())
    print(f"{OUTPUT}: {total} names in {len(modules)} modules of Ray {ray.__version__}")


if __name__ == "__main__":
    main()
