"""``JobConfig``: a job's settings, passed as ``init(job_config=...)``.

Ray's constructor and setters. ``init()`` honours ``runtime_env`` (the job's
default, as ``init(runtime_env=...)``), ``ray_namespace`` (as
``init(namespace=...)``), ``metadata`` (kept with the job; ``list_jobs``
shows it) and ``default_actor_lifetime`` (the lifetime of the job's actors
that do not set one) and, for the private cluster ``init()`` starts,
``code_search_path`` (put on its workers' ``PYTHONPATH``). What raggio has no
equivalent of (Java workers, Ray Client jobs, a search path for the workers
of a cluster that is already running) ``init()`` refuses with a sentence
saying what to do instead. Its public path is ``raggio.job_config``.
"""

from __future__ import annotations

from typing import Any

from raggio.core.options import check_runtime_env

_LIFETIMES = ("detached", "non_detached")


class JobConfig:
    """The configuration of a job (Ray's ``ray.job_config.JobConfig``).

    Args:
        jvm_options: JVM options for Java workers (raggio has none: must stay empty).
        code_search_path: directories of user code, put on the workers' ``PYTHONPATH``
            (only for the private cluster ``init()`` starts).
        runtime_env: the job's default runtime environment.
        client_job: whether the job comes through a Ray Client (raggio has none).
        metadata: string keys and values kept with the job.
        ray_namespace: the job's namespace (a fresh one if None).
        default_actor_lifetime: "detached" or "non_detached" (the default), for actors
            created without ``lifetime``.

    Raises:
        ValueError: ``default_actor_lifetime`` is neither "detached" nor "non_detached".
        TypeError: ``code_search_path`` is not a list or tuple.
    """

    def __init__(self, jvm_options: list[str] | None = None,
                 code_search_path: list[str] | None = None, runtime_env: dict | None = None,
                 client_job: bool = False, metadata: dict | None = None,
                 ray_namespace: str | None = None,
                 default_actor_lifetime: str = "non_detached"):
        self.jvm_options = list(jvm_options or [])
        self.code_search_path = code_search_path or []
        if not isinstance(self.code_search_path, (list, tuple)):
            raise TypeError("The type of code search path is incorrect: "
                            f"{type(code_search_path)}; pass a list of directories.")
        self.client_job = client_job
        self.metadata = dict(metadata or {})
        self.ray_namespace = ray_namespace
        self.set_runtime_env(runtime_env)
        self.set_default_actor_lifetime(default_actor_lifetime)

    def set_metadata(self, key: str, value: str) -> None:
        self.metadata[key] = value

    def set_runtime_env(self, runtime_env: dict | None, validate: bool = False) -> None:
        """Replace the job's runtime env; ``validate`` checks it now rather than at init()."""
        self.runtime_env = runtime_env if runtime_env is not None else {}
        if validate:
            check_runtime_env(self.runtime_env)

    def set_ray_namespace(self, ray_namespace: str) -> None:
        self.ray_namespace = ray_namespace

    def set_default_actor_lifetime(self, default_actor_lifetime: str) -> None:
        if default_actor_lifetime not in _LIFETIMES:
            raise ValueError("Default actor lifetime must be one of `detached`, "
                             f"`non_detached`; got {default_actor_lifetime!r}.")
        self.default_actor_lifetime = default_actor_lifetime

    @classmethod
    def from_json(cls, job_config_json: dict) -> "JobConfig":
        """A JobConfig from a dict with the constructor's keys (as Ray's)."""
        return cls(jvm_options=job_config_json.get("jvm_options"),
                   code_search_path=job_config_json.get("code_search_path"),
                   runtime_env=job_config_json.get("runtime_env"),
                   client_job=job_config_json.get("client_job", False),
                   metadata=job_config_json.get("metadata"),
                   ray_namespace=job_config_json.get("ray_namespace"))

    def _unsupported(self) -> str | None:
        """Why raggio cannot run this job as configured, or None."""
        if self.jvm_options:
            return ("JobConfig(jvm_options=...) configures Java workers, and raggio runs "
                    "Python workers only; leave jvm_options empty.")
        if self.client_job:
            return "JobConfig(client_job=True) is for Ray Client jobs; raggio has no client."
        return None

    def _check_metadata(self) -> None:
        for key, value in self.metadata.items():
            if not (isinstance(key, str) and isinstance(value, str)):
                raise TypeError("JobConfig metadata maps strings to strings; got "
                                f"{key!r}: {value!r}.")

    def __repr__(self) -> str:
        fields: dict[str, Any] = {"runtime_env": self.runtime_env, "metadata": self.metadata,
                                  "ray_namespace": self.ray_namespace,
                                  "default_actor_lifetime": self.default_actor_lifetime}
        return "JobConfig(" + ", ".join(f"{k}={v!r}" for k, v in fields.items()) + ")"
