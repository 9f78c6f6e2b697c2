"""Where ``import ray.X`` goes in the shim: raggio's module, a stand-in, or an internal stub.

A finder appended to ``sys.meta_path`` answers for the ``ray.*`` modules that have no file
in the shim package:

1. ``STAND_INS``: Ray test helpers whose Ray path lies inside a raggio package (so the shim
   cannot hold a file there) map to a harness module.
2. Modules under ``INTERNAL_PACKAGES`` (Ray's internals) are ``InternalModule`` stubs.
3. Anything else is ``raggio.<same path>`` if raggio has it (the same module object), else
   the import fails as usual (``No module named 'ray.util.queue'``).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types

#: ``ray.<name>`` packages and modules that are Ray's internals (none is a public API).
INTERNAL_PACKAGES = frozenset({
    "_private", "_common", "_raylet", "autoscaler", "worker", "gcs_utils", "ray_constants",
    "services", "internal", "import_thread", "state",
})

#: Ray module -> harness module standing in for it.
STAND_INS = {
    "ray.util.client": "ray._client",
    "ray.util.client.ray_client_helpers": "ray._client.ray_client_helpers",
}


class InternalRayAPI(Exception):
    """A test used a Ray internal that raggio does not provide (and the harness won't fake)."""


def _internal_name(parent: str, name: str) -> "InternalName":
    if name.startswith("__"):  # keep the import system, pytest and inspect out of the stubs
        raise AttributeError(name)
    return InternalName(f"{parent}.{name}")


class InternalName:
    """A name inside Ray's internals: attribute access goes deeper, any use raises."""

    def __init__(self, path: str):
        object.__setattr__(self, "_path", path)

    def _fail(self, *args, **kwargs):
        raise InternalRayAPI(f"internal: {self._path} is Ray's internal API; "
                             "raggio does not provide it")

    def __getattr__(self, name: str):
        return _internal_name(self._path, name)

    def __repr__(self) -> str:
        return f"<Ray internal {self._path}>"

    __call__ = __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _fail
    __bool__ = __iter__ = __len__ = __getitem__ = __contains__ = __int__ = __index__ = _fail
    __setattr__ = __enter__ = __exit__ = __float__ = __hash__ = _fail


class InternalModule(types.ModuleType):
    """A module of Ray's internals: every attribute is an ``InternalName``."""

    def __init__(self, name: str):
        super().__init__(name, f"Stub of Ray's internal module {name} (raggio has none).")
        self.__path__ = []

    def __getattr__(self, name: str):
        return _internal_name(self.__name__, name)


def internal_attribute(module_name: str):
    """A module ``__getattr__`` for a real shim package inside Ray's internals."""
    def __getattr__(name: str):
        return _internal_name(module_name, name)
    return __getattr__


class _ExistingModuleLoader(importlib.abc.Loader):
    """Loads a module name as another, already importable, module (the same object)."""

    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec):
        return importlib.import_module(self.target)

    def exec_module(self, module) -> None:
        # Register the target's already-loaded submodules under Ray's names too. Otherwise
        # importing one (``ray.util.placement_group``) would make the import system set it as
        # an attribute of its parent, hiding a same-named function (``util.placement_group``).
        prefix = self.target + "."
        for name in [name for name in sys.modules if name.startswith(prefix)]:
            sys.modules.setdefault("ray." + name[len("raggio."):], sys.modules[name])


class _InternalLoader(importlib.abc.Loader):
    def create_module(self, spec):
        return InternalModule(spec.name)

    def exec_module(self, module) -> None:
        pass


class RayModuleFinder(importlib.abc.MetaPathFinder):
    """Resolves ``ray.*`` modules without a shim file (see the module docstring)."""

    def find_spec(self, fullname, path, target=None):
        if not fullname.startswith("ray."):
            return None
        if fullname in STAND_INS:
            return importlib.util.spec_from_loader(
                fullname, _ExistingModuleLoader(STAND_INS[fullname]), is_package=True)
        if fullname.split(".")[1] in INTERNAL_PACKAGES:
            return importlib.util.spec_from_loader(fullname, _InternalLoader(), is_package=True)
        raggio_name = "raggio." + fullname[len("ray."):]
        try:
            raggio_spec = importlib.util.find_spec(raggio_name)
        except ModuleNotFoundError:
            raggio_spec = None
        if raggio_spec is None:
            return None
        return importlib.util.spec_from_loader(
            fullname, _ExistingModuleLoader(raggio_name),
            is_package=raggio_spec.submodule_search_locations is not None)


def install() -> None:
    """Append the finder to ``sys.meta_path`` (once)."""
    if not any(isinstance(finder, RayModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(RayModuleFinder())
