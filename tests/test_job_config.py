"""``init(job_config=JobConfig(...))``: runtime env, namespace, metadata, the default
actor lifetime and the code search path, and what raggio refuses."""

import os
import signal

import pytest

import raggio as ray
from raggio.job_config import JobConfig
from raggio.test_utils import wait_until


def test_job_config_is_honoured(shutdown_only, tmp_path):
    (tmp_path / "helper_module_for_job_config.py").write_text("VALUE = 42\n")
    ray.init(num_cpus=1, job_config=JobConfig(
        runtime_env={"env_vars": {"JOB_FLAG": "on"}}, metadata={"team": "core"},
        ray_namespace="jobspace", code_search_path=[str(tmp_path)]))

    @ray.remote
    def probe():
        import os
        import helper_module_for_job_config
        return os.environ.get("JOB_FLAG"), helper_module_for_job_config.VALUE

    assert ray.get(probe.remote()) == ("on", 42)
    assert ray.get_runtime_context().namespace == "jobspace"
    jobs = ray.util.state.list_jobs(detail=True)
    assert [job["metadata"] for job in jobs] == [{"team": "core"}]


def test_init_arguments_win_over_the_job_config(shutdown_only):
    ray.init(num_cpus=1, namespace="mine",
             job_config=JobConfig(ray_namespace="theirs"))
    assert ray.get_runtime_context().namespace == "mine"


def test_default_actor_lifetime_detached(shutdown_only):
    # Actors of a job whose default lifetime is detached outlive their owner; one created
    # with lifetime="non_detached" does not.
    ray.init(num_cpus=1, job_config=JobConfig(default_actor_lifetime="detached"))

    @ray.remote(num_cpus=0)
    class Keeper:
        def ping(self):
            return "pong"

    @ray.remote(num_cpus=0)
    def create():
        kept = Keeper.options(name="kept").remote()
        gone = Keeper.options(name="gone", lifetime="non_detached").remote()
        ray.get([kept.ping.remote(), gone.ping.remote()])
        return os.getpid()

    os.kill(ray.get(create.remote()), signal.SIGKILL)  # the worker owning both actors
    wait_until(lambda: _is_gone("gone"), what="the non-detached actor to die with its owner")
    assert ray.get(ray.get_actor("kept").ping.remote(), timeout=30) == "pong"
    assert ray.util.state.list_actors(filters=[("name", "=", "kept")])[0]["state"] == "ALIVE"


def _is_gone(name):
    try:
        ray.get_actor(name)
    except ValueError:
        return True
    return False


def test_what_raggio_cannot_honour_is_refused(shutdown_only):
    with pytest.raises(ValueError, match="must be one of `detached`, `non_detached`"):
        JobConfig(default_actor_lifetime="forever")
    with pytest.raises(ValueError, match="Python workers only"):
        ray.init(num_cpus=1, job_config=JobConfig(jvm_options=["-Xmx1g"]))
    with pytest.raises(TypeError, match="takes a raggio.job_config.JobConfig"):
        ray.init(num_cpus=1, job_config={"metadata": {}})
    assert not ray.is_initialized()
