"""Ray's ``ray.runtime_env``: ``RuntimeEnv`` and ``RuntimeEnvConfig``, dicts checked as
they are built.

Both are plain dicts underneath, so wherever a ``runtime_env=`` takes a dict it takes them
too. The checks, the merging and everything after (packaging, node setup) live in
``raggio/common/runtime_env.py`` and the modules it names; see docs/ARCHITECTURE.md,
"Runtime environments".
"""

from __future__ import annotations

from typing import Any

from raggio.common.runtime_env import DEFAULT_SETUP_TIMEOUT_S, check_runtime_env

__all__ = ["RuntimeEnv", "RuntimeEnvConfig"]


class RuntimeEnvConfig(dict):
    """How a runtime env is set up, as Ray's: ``setup_timeout_seconds`` (default 600; -1 for
    no limit), ``eager_install`` (accepted; raggio sets an env up when a worker needs it)
    and ``log_files`` (accepted, not shown anywhere yet).

    Raises:
        TypeError, ValueError: a value of the wrong type or out of range, with Ray's words.
    """

    def __init__(self, setup_timeout_seconds: int = DEFAULT_SETUP_TIMEOUT_S,
                 eager_install: bool = True, log_files: list[str] | None = None):
        super().__init__(setup_timeout_seconds=setup_timeout_seconds,
                         eager_install=eager_install)
        if log_files is not None:
            self["log_files"] = log_files
        check_runtime_env({"config": dict(self)})

    def to_dict(self) -> dict:
        return dict(self)


class RuntimeEnv(dict):
    """A runtime env as Ray's class builds it: the fields given (None ones left out),
    checked at once.

    Args:
        py_modules, working_dir, pip, uv, env_vars, config: as in a ``runtime_env`` dict;
            ``config`` a ``RuntimeEnvConfig`` or a dict of its fields.
        **kwargs: other fields; ``conda``, ``container``, ``image_uri`` and any field raggio
            does not support raise ValueError naming it.
    """

    def __init__(self, *, py_modules: list | None = None, working_dir: str | None = None,
                 pip: Any = None, conda: Any = None, container: dict | None = None,
                 env_vars: dict[str, str] | None = None, config: dict | None = None,
                 _validate: bool = True, image_uri: str | None = None, uv: Any = None,
                 **kwargs):
        fields = dict(py_modules=py_modules, working_dir=working_dir, pip=pip, conda=conda,
                      container=container, env_vars=env_vars, image_uri=image_uri, uv=uv,
                      config=config, **kwargs)
        super().__init__({name: value for name, value in fields.items() if value is not None})
        if self.get("config") is not None and not isinstance(self["config"],
                                                             RuntimeEnvConfig):
            self["config"] = RuntimeEnvConfig(**self["config"])
        if _validate:
            check_runtime_env(self)

    def to_dict(self) -> dict:
        return dict(self)

    def env_vars(self) -> dict[str, str]:
        return dict(self.get("env_vars") or {})

    def working_dir(self) -> str:
        return self.get("working_dir") or ""

    def py_modules(self) -> list[str]:
        return list(self.get("py_modules") or [])
