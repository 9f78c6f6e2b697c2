"""``import ray`` that is raggio, so Ray's own test files run against raggio unchanged.

Only the harness puts ``bench/ray_tests/shim`` on PYTHONPATH (``run.py``, raggio side), so
every process of a run imports raggio under Ray's name: the pytest process, raggio's head,
nodes and workers (they inherit the environment) and the drivers that
``run_string_as_driver`` starts.

- ``ray.NAME`` is ``raggio.NAME``; a name raggio lacks raises AttributeError.
- ``import ray.X.Y`` is ``raggio.X.Y`` (see ``_modules``), except where this package has a
  file of its own: Ray's test helpers (``ray._private.test_utils``, ``ray.tests...``),
  written here on raggio's public API.
- Ray's internals (``ray._raylet``, ``ray._private.worker``, ``ray.autoscaler``...) import as
  stubs that raise ``InternalRayAPI`` ("internal: ...") when used, so the tests that poke
  them fail with that reason while the rest of their file still runs.
"""

import importlib

import raggio

from ray import _modules

_modules.install()


def __getattr__(name: str):
    if name in _modules.INTERNAL_PACKAGES:
        return importlib.import_module(f"ray.{name}")
    try:
        return getattr(raggio, name)
    except AttributeError:
        raise AttributeError(f"module 'ray' has no attribute {name!r} "
                             f"(raggio has no public name {name!r})") from None


def __dir__() -> list[str]:
    return dir(raggio)
