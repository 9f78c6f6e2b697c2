"""The submitting side of runtime environments: a runtime env made ready to travel.

A driver (or a worker submitting nested tasks) merges a task's or actor's
runtime env with its job's default (Ray's merge: field by field, ``env_vars``
variable by variable), zips each local ``working_dir`` (leaving out what Ray
2.60 leaves out: ``.git``, ``.venv``, ``venv``, ``__pycache__``) and
``py_modules`` directory (a local ``.zip`` working_dir goes as it is),
uploads the zip once into the control store's KV under its content URI
(``gcs://_ray_pkg_<hash>.zip``) and puts the URI in its place, and reads a ``pip``/``uv`` requirements file into a list. What comes out is
what task specs and actor specs carry, what node managers set up
(``node/runtime_env_setup.py``) and what workers inherit as their default.

Packing reads every file, so a runtime env is made ready once per driver
session (the same dict or equal contents: cached), not at every ``.remote()``.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, Callable

from raggio.common.runtime_env import merge
from raggio.common.runtime_env_packages import ready_to_travel

logger = logging.getLogger(__name__)

#: Prepared runtime envs remembered per driver, by the identity of the dict given (a
#: ``.options(runtime_env=...)`` in a loop makes a new dict each time: bounded).
_MAX_REMEMBERED = 1024


class RuntimeEnvUploader:
    """See the module docstring. ``request(op, payload)`` calls the control store."""

    def __init__(self, request: Callable[[str, Any], Any], job_env: dict | None = None):
        self._request = request
        #: The job's default, already prepared (``set_job_env``).
        self.job_env: dict = job_env or {}
        self._by_id: dict[int, tuple[dict, dict]] = {}
        self._by_contents: dict[str, dict] = {}
        self._lock = threading.Lock()

    def set_job_env(self, runtime_env: dict | None) -> dict:
        """Prepare the job's default runtime env (``init(runtime_env=...)``) and keep it."""
        self.job_env = self.prepare(runtime_env or {})
        return self.job_env

    def for_call(self, runtime_env: dict | None) -> dict:
        """The prepared runtime env of a task or actor with these ``runtime_env`` options.

        Raises:
            ValueError: a local path that is not there, or a package over the size limit.
        """
        if not runtime_env:
            return self.job_env
        hit = self._by_id.get(id(runtime_env))
        if hit is not None and hit[0] is runtime_env:
            return hit[1]
        prepared = self.prepare(merge(self.job_env, runtime_env))
        if len(self._by_id) >= _MAX_REMEMBERED:
            self._by_id.clear()
        self._by_id[id(runtime_env)] = (runtime_env, prepared)  # holds it: the id stays its
        return prepared

    def prepare(self, runtime_env: dict) -> dict:
        """``runtime_env`` with local packages uploaded and requirement files read."""
        if not runtime_env:
            return {}
        contents = json.dumps(runtime_env, sort_keys=True, default=str)
        with self._lock:
            prepared = self._by_contents.get(contents)
            if prepared is None:
                prepared = ready_to_travel(runtime_env, self._store)
                self._by_contents[contents] = prepared
        return prepared

    def _store(self, uri: str, data: bytes) -> None:
        """Put a package into the control store's KV unless it is there."""
        if not self._request("kv_keys", uri):
            logger.info("Pushing file package '%s' (%.2f MiB) to the cluster.", uri,
                        len(data) / (1024 * 1024))
            self._request("kv_put", [uri, data, False])
