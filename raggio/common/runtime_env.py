"""Runtime environments: which fields raggio supports, their checks, merging and the env key.

A runtime env is a dict with Ray's fields. This module checks one as the user
gave it (``check_runtime_env``: Ray's types, and a ValueError naming any field
raggio does not support), merges a job's default with a task's or actor's as
Ray does (``merge``), and gives the bytes that tell workers apart
(``env_key``). It does no I/O: the driver packages and uploads local
directories (``core/runtime_env_upload.py``, using ``runtime_env_packages``),
the node sets environments up (``node/runtime_env_setup.py``), and the worker
applies what the node prepared (``core/worker_main.py``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import msgpack

#: The fields raggio applies, as Ray spells them.
SUPPORTED_FIELDS = ("env_vars", "working_dir", "py_modules", "pip", "uv", "config", "excludes")
#: Ray's fields raggio refuses: each needs an installer or a runtime it does not ship.
UNSUPPORTED_FIELDS = ("conda", "container", "image_uri", "java_jars", "nsight", "rocprof_sys",
                      "mpi", "worker_process_setup_hook", "_nsight", "py_executable")
#: Ray's default ``config.setup_timeout_seconds``.
DEFAULT_SETUP_TIMEOUT_S = 600
#: Fields that only steer the setup or the packaging: they change no worker.
_NOT_IN_KEY = ("config", "excludes")
_PIP_KEYS = ("packages", "pip_check", "pip_version")
_UV_KEYS = ("packages", "uv_version", "uv_check", "uv_pip_install_options")


def is_uri(value: str) -> bool:
    """Whether a working_dir or py_modules entry names an uploaded package (``gcs://...``,
    ``https://...``), not a local path."""
    return "://" in value


def check_runtime_env(runtime_env) -> None:
    """Check a runtime env as given to ``init``, ``@remote`` or ``.options()``.

    Raises:
        TypeError: a field of the wrong type, with Ray's message where Ray has one.
        ValueError: a field raggio does not support (named, with the supported ones), a
            bad value (a timeout that is not positive, a requirements file that is missing).
            Local directories are checked where they are packaged (``runtime_env_packages``),
            not here: a module that declares one may be imported on another machine.
    """
    if runtime_env is None:
        return
    if not isinstance(runtime_env, dict):
        raise TypeError(f"runtime_env must be a dict, got {type(runtime_env)}")
    for name, value in runtime_env.items():
        if name not in SUPPORTED_FIELDS:
            why = ("raggio does not support it" if name in UNSUPPORTED_FIELDS
                   else "it is not a runtime_env field")
            raise ValueError(f"runtime_env field '{name}' is refused: {why}. raggio supports "
                             f"{', '.join(SUPPORTED_FIELDS)}.")
        if value is not None:
            _CHECKS[name](value)


def _check_env_vars(env_vars) -> None:
    if not isinstance(env_vars, dict):
        raise TypeError("runtime_env['env_vars'] must be of type Dict[str, str], got "
                        f"{type(env_vars)}")
    for key, value in env_vars.items():
        if not isinstance(key, str):
            raise TypeError("runtime_env['env_vars'] must be of type Dict[str, str], but the "
                            f"key {key} is of type {type(key)}")
        if not isinstance(value, str):
            raise TypeError("runtime_env['env_vars'] must be of type Dict[str, str], but the "
                            f"value {value} is of type {type(value)}")


def _check_working_dir(working_dir) -> None:
    if not isinstance(working_dir, (str, Path)):
        raise TypeError("working_dir must be a string or Path (either a local path or remote "
                        f"URI), got {type(working_dir)}.")


def _check_py_modules(py_modules) -> None:
    if not isinstance(py_modules, list):
        raise TypeError("py_modules must be a List of local paths, imported modules, or "
                        f"URIs, got {type(py_modules)}.")
    for module in py_modules:
        module_path(module)


def module_path(module) -> str:
    """A py_modules entry as a path or URI: a string, a Path or an imported module."""
    if isinstance(module, (str, Path)):
        return str(module)
    if hasattr(module, "__path__"):
        paths = list(module.__path__)
        if len(paths) != 1:
            raise ValueError("py_modules only supports modules whose __path__ has length 1 or "
                             "those who are single-file.")
        return paths[0]
    if getattr(module, "__file__", None):
        return module.__file__
    raise TypeError("py_modules must be a list of file paths, URIs, or imported modules, got "
                    f"{type(module)}.")


def _check_packages(field: str, keys: tuple):
    def check(value) -> None:
        if isinstance(value, str):
            if not os.path.isfile(value):
                raise ValueError(f"{field} requirements file {value} does not exist.")
        elif isinstance(value, dict):
            unknown = set(value) - set(keys)
            if unknown:
                raise ValueError(f"runtime_env['{field}'] has unknown keys {sorted(unknown)}; "
                                 f"it takes {', '.join(keys)}.")
            if not isinstance(value.get("packages"), (list, str)):
                raise TypeError(f"runtime_env['{field}']['packages'] must be a list of "
                                "requirements or the path of a requirements file.")
        elif not isinstance(value, list) or not all(isinstance(p, str) for p in value):
            raise TypeError(f"runtime_env['{field}'] must be of type list[str], str or dict, "
                            f"got {type(value)}")
    return check


def _check_config(config) -> None:
    if not isinstance(config, dict):
        raise TypeError(f"runtime_env['config'] must be a dict, got {type(config)}")
    for key, value in config.items():
        if key == "setup_timeout_seconds":
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError("setup_timeout_seconds must be of type int, got "
                                f"{type(value)}")
            if value != -1 and value <= 0:
                raise ValueError("setup_timeout_seconds must be -1 or larger than 0, got "
                                 f"{value}")
        elif key == "eager_install":
            if not isinstance(value, bool):
                raise TypeError(f"eager_install must be a boolean. got {type(value)}")
        elif key == "log_files":
            if not isinstance(value, list) or not all(isinstance(f, str) for f in value):
                raise TypeError("log_files must be a list of strings or None, got "
                                f"{value} with type {type(value)}.")
        else:
            raise ValueError(f"runtime_env['config'] has an unknown key '{key}'; it takes "
                             "setup_timeout_seconds, eager_install and log_files.")


def _check_excludes(excludes) -> None:
    if not isinstance(excludes, list) or not all(isinstance(p, str) for p in excludes):
        raise TypeError(f"excludes must be a list of strings, got {type(excludes)}")


_CHECKS = {
    "env_vars": _check_env_vars,
    "working_dir": _check_working_dir,
    "py_modules": _check_py_modules,
    "pip": _check_packages("pip", _PIP_KEYS),
    "uv": _check_packages("uv", _UV_KEYS),
    "config": _check_config,
    "excludes": _check_excludes,
}


def merge(parent: dict | None, child: dict | None) -> dict:
    """Ray's merge of a job's default runtime env with a task's or actor's: the child's
    fields win, except ``env_vars``, merged variable by variable (the child's win)."""
    if not child:
        return dict(parent or {})
    if not parent:
        return dict(child)
    merged = dict(parent, **child)
    if parent.get("env_vars") and child.get("env_vars"):
        merged["env_vars"] = dict(parent["env_vars"], **child["env_vars"])
    return {name: value for name, value in merged.items() if value is not None}


def normalized_packages(value) -> dict:
    """A ``pip``/``uv`` field as ``{"packages": [...], ...}``; a requirements file read
    (where it is: on the driver, before the env travels)."""
    if isinstance(value, list):
        value = {"packages": value}
    elif isinstance(value, str):
        value = {"packages": value}
    value = dict(value)
    if isinstance(value["packages"], str):
        with open(value["packages"]) as f:
            value["packages"] = [line.strip() for line in f
                                 if line.strip() and not line.lstrip().startswith("#")]
    return value


def env_key(runtime_env: dict | None) -> bytes:
    """The bytes that tell workers apart: two leases share a worker only with equal keys.
    Covers every field that changes a worker (its env vars, files, sys.path, packages)."""
    if not runtime_env:
        return b""
    fields = {name: value for name, value in runtime_env.items()
              if name not in _NOT_IN_KEY and value}
    return msgpack.packb(_canonical(fields)) if fields else b""


def _canonical(value):
    if isinstance(value, dict):
        return sorted((key, _canonical(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return [_canonical(item) for item in value]
    return value


def setup_timeout_s(runtime_env: dict) -> float | None:
    """``config.setup_timeout_seconds`` (Ray's default 600; -1: no limit)."""
    timeout = (runtime_env.get("config") or {}).get("setup_timeout_seconds",
                                                      DEFAULT_SETUP_TIMEOUT_S)
    return None if timeout == -1 else float(timeout)


def requirements_hash(packages: dict) -> str:
    """The name of the virtual environment for one ``pip``/``uv`` field."""
    return hashlib.sha1(msgpack.packb(_canonical(packages))).hexdigest()
