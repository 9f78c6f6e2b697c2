"""Ray side only: module aliases so the stored (partly older) test files import on Ray 2.60.

The store holds one version of each test file, some from Ray 1.x. Their helpers have since
moved, which would fail whole files at import on Ray itself. This puts them back:

- ``ray.test_utils`` -> ``ray._private.test_utils`` and ``ray.ray_constants`` ->
  ``ray._private.ray_constants`` (moved in Ray 1.5);
- names that moved (``SignalActor``, ``Semaphore``, ``run_string_as_driver`` to
  ``ray._common.test_utils``; ``DEBUG_AUTOSCALING_*`` to ``ray._private.ray_constants``) are
  set again where the older files import them from (``_MOVED_NAMES``);
- ``ray.tests`` (not in Ray's wheel) with ``client_test_utils`` from ``upstream/``;
- ``connect_to_client_or_not`` (gone from ``ray.util.client.ray_client_helpers``): the
  shim's, which runs the block as is or, for Ray Client, fails; so the Ray Client variants
  count on neither side.

Otherwise only names are moved; no behaviour is added. The raggio side gets the same paths
from the shim.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))
UPSTREAM_DIR = os.path.join(HERE, "upstream")

_MOVED_MODULES = {
    "ray.test_utils": "ray._private.test_utils",
    "ray.ray_constants": "ray._private.ray_constants",
}
#: (module an older file imports from, name, the module that has it in Ray 2.60)
_MOVED_NAMES = [
    ("ray._private.test_utils", "SignalActor", "ray._common.test_utils"),
    ("ray._private.test_utils", "Semaphore", "ray._common.test_utils"),
    ("ray._private.test_utils", "run_string_as_driver", "ray._common.test_utils"),
    ("ray.autoscaler._private.util", "DEBUG_AUTOSCALING_ERROR", "ray._private.ray_constants"),
    ("ray.autoscaler._private.util", "DEBUG_AUTOSCALING_STATUS", "ray._private.ray_constants"),
]


def _load_file(module_name: str, path: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def install() -> None:
    import ray
    import ray.util.client.ray_client_helpers as client_helpers

    for old_module, name, new_module in _MOVED_NAMES:
        module = importlib.import_module(old_module)
        if not hasattr(module, name):
            setattr(module, name, getattr(importlib.import_module(new_module), name))
    for old, new in _MOVED_MODULES.items():
        sys.modules.setdefault(old, importlib.import_module(new))
        setattr(ray, old.split(".")[1], sys.modules[old])
    if not hasattr(client_helpers, "connect_to_client_or_not"):
        shim_helpers = _load_file("raytests_shim_client_helpers", os.path.join(
            HERE, "shim", "ray", "_client", "ray_client_helpers.py"))
        client_helpers.connect_to_client_or_not = shim_helpers.connect_to_client_or_not
    tests = types.ModuleType("ray.tests", "Ray's test folder's helper modules (harness).")
    tests.__path__ = []
    sys.modules["ray.tests"] = tests
    ray.tests = tests
    tests.client_test_utils = _load_file(
        "ray.tests.client_test_utils", os.path.join(UPSTREAM_DIR, "client_test_utils.py"))
