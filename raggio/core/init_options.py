"""What ``init()``'s keyword arguments become: honoured, or refused with the reason.

Ray's ``init`` takes many keywords; raggio honours each one it can and
refuses the rest with a sentence saying what raggio does instead, so that no
setting is dropped silently. ``resolve`` turns them into ``InitSettings``:
the job's namespace, runtime env and record fields, and what a private head
needs (extra arguments and environment). Settings of the node and cluster
themselves are refused when ``init()`` joins a running cluster, as Ray refuses
them (``refuse_when_joining``). ``api.init`` is the only caller.
"""

from __future__ import annotations

import dataclasses
import os

from raggio.job_config import JobConfig


@dataclasses.dataclass
class InitSettings:
    """``init()``'s keywords, resolved."""

    namespace: str | None
    runtime_env: dict | None
    #: More fields of the job's record (JobConfig metadata, default_actor_lifetime).
    job_info: dict
    #: Arguments of the private head's command line.
    head_args: list[str]
    #: Environment of the private head (and so of its zygote and workers).
    head_env: dict[str, str]
    #: Keywords given that only a private head can honour (refused when joining), each
    #: with what to do instead.
    head_only: dict[str, str]


def resolve(*, job_config: JobConfig | None, namespace: str | None,
            runtime_env: dict | None) -> InitSettings:
    """Check init()'s keywords and say what each becomes.

    Raises:
        TypeError: ``job_config`` is not a JobConfig.
        ValueError: a JobConfig setting raggio has no equivalent of.
    """
    settings = InitSettings(namespace=namespace, runtime_env=runtime_env, job_info={},
                            head_args=[], head_env={}, head_only={})
    if job_config is not None:
        _apply_job_config(settings, job_config)
    return settings


def _apply_job_config(settings: InitSettings, job_config: JobConfig) -> None:
    """As Ray: init()'s own namespace and runtime_env win over the JobConfig's."""
    if not isinstance(job_config, JobConfig):
        raise TypeError("init(job_config=...) takes a raggio.job_config.JobConfig, got "
                        f"{type(job_config).__name__}.")
    problem = job_config._unsupported()
    if problem:
        raise ValueError(problem)
    job_config._check_metadata()
    if settings.namespace is None:
        settings.namespace = job_config.ray_namespace
    if not settings.runtime_env:
        settings.runtime_env = job_config.runtime_env or None
    settings.job_info.update(metadata=dict(job_config.metadata),
                             default_actor_lifetime=job_config.default_actor_lifetime)
    if job_config.code_search_path:
        paths = [os.path.abspath(path) for path in job_config.code_search_path]
        inherited = os.environ.get("PYTHONPATH")
        settings.head_env["PYTHONPATH"] = os.pathsep.join(
            paths + ([inherited] if inherited else []))
        settings.head_only["JobConfig.code_search_path"] = (
            "the workers of a running cluster are forked from a process started with its "
            "node, so put the directories on PYTHONPATH before `raggio start`, or install "
            "the code as a package")


def refuse_when_joining(settings: InitSettings) -> None:
    """Raise if keywords that only a private head honours were given to join a cluster.

    Raises:
        ValueError: naming each such keyword and what to do instead.
    """
    if settings.head_only:
        reasons = "; ".join(f"{name}: {hint}" for name, hint in settings.head_only.items())
        raise ValueError(f"When connecting to an existing cluster, "
                         f"{', '.join(settings.head_only)} must not be provided ({reasons}).")
