"""``get_runtime_context()`` and what a task or actor is given, as in Ray 2.60: its ids,
assigned resources (placement-group bundles included), accelerator ids, OMP_NUM_THREADS;
GPU and CPU tasks on separate workers; a task blocked in ``get`` inside a bundle lends its
CPU to its children.
"""

import os
import warnings

import pytest

import raggio as ray
from raggio.util.placement_group import placement_group, remove_placement_group
from raggio.util.scheduling_strategies import PlacementGroupSchedulingStrategy


def in_group(pg, **kwargs):
    return PlacementGroupSchedulingStrategy(pg, **kwargs)


@ray.remote
def task_context():
    context = ray.get_runtime_context()
    return {"resources": context.get_assigned_resources(),
            "omp": os.environ.get("OMP_NUM_THREADS"),
            "task_id": context.get_task_id(), "actor_id": context.get_actor_id(),
            "keys": sorted(context.get()), "pg": context.get_placement_group_id(),
            "capture": context.should_capture_child_tasks_in_placement_group,
            "accelerators": context.get_accelerator_ids(), "pid": os.getpid()}


@pytest.mark.parametrize("ray_start_regular", [{"num_cpus": 4, "num_gpus": 1}], indirect=True)
def test_task_context(ray_start_regular):
    default = ray.get(task_context.remote())
    assert default["resources"] == {"CPU": 1.0}
    assert default["omp"] == "1"
    assert default["keys"] == ["job_id", "namespace", "node_id", "task_id"]
    assert default["actor_id"] is None and default["pg"] is None and not default["capture"]
    assert len(default["task_id"]) == 48
    assert default["accelerators"]["GPU"] == []

    assert ray.get(task_context.options(num_cpus=2).remote())["omp"] == "2"
    gpu = ray.get(task_context.options(num_cpus=0.5, num_gpus=1).remote())
    assert gpu["resources"] == {"CPU": 0.5, "GPU": 1.0}
    assert gpu["omp"] == "1"
    assert gpu["accelerators"]["GPU"] == ["0"]


def test_driver_context(ray_start_regular):
    context = ray.get_runtime_context()
    assert sorted(context.get()) == ["job_id", "namespace", "node_id"]
    assert context.get_task_id() is None and context.get_actor_id() is None
    assert context.get_actor_name() is None
    assert context.get_node_id() == ray_start_regular["node_id"]
    assert context.gcs_address == ray_start_regular["gcs_address"]
    assert context.get_placement_group_id() is None
    with pytest.raises(AssertionError, match="only available when the process is a worker"):
        context.get_assigned_resources()
    with pytest.raises(RuntimeError, match="only available in an actor"):
        context.current_actor


def test_omp_num_threads_set_by_the_user_is_kept(ray_start_regular):
    env = {"env_vars": {"OMP_NUM_THREADS": "7"}}
    assert ray.get(task_context.options(num_cpus=2, runtime_env=env).remote())["omp"] == "7"


def test_placement_group_resources(ray_start_regular):
    pg = placement_group([{"CPU": 2}])
    ray.get(pg.ready())
    pg_hex = pg.id.hex()
    anywhere = ray.get(task_context.options(scheduling_strategy=in_group(pg)).remote())
    assert anywhere["resources"] == {f"CPU_group_{pg_hex}": 1.0}
    assert anywhere["pg"] == pg_hex and not anywhere["capture"]
    assert anywhere["omp"] == "1"  # Ray counts "CPU" only
    bundle = ray.get(task_context.options(scheduling_strategy=in_group(
        pg, placement_group_bundle_index=0, placement_group_capture_child_tasks=True)).remote())
    assert bundle["resources"] == {f"CPU_group_0_{pg_hex}": 1.0, f"CPU_group_{pg_hex}": 1.0}
    assert bundle["capture"]
    remove_placement_group(pg)


def test_actor_context(ray_start_regular):
    @ray.remote
    class Probe:
        def info(self):
            context = ray.get_runtime_context()
            return {"resources": context.get_assigned_resources(),
                    "omp": os.environ.get("OMP_NUM_THREADS"),
                    "actor_id": context.get_actor_id(), "name": context.get_actor_name(),
                    "task_id": context.get_task_id(), "keys": sorted(context.get()),
                    "reconstructed": context.was_current_actor_reconstructed}

        def me(self):
            return ray.get_runtime_context().current_actor

        async def async_task_id(self):
            return ray.get_runtime_context().get_task_id()

    probe = Probe.options(name="probe").remote()
    info = ray.get(probe.info.remote())
    assert info["resources"] == {} and info["omp"] == "1"
    assert info["actor_id"] == probe._actor_id.hex() and info["name"] == "probe"
    assert info["keys"] == ["actor_id", "job_id", "namespace", "node_id", "task_id"]
    assert info["task_id"] is not None and not info["reconstructed"]
    me = ray.get(probe.me.remote())
    assert me._actor_id == probe._actor_id
    assert ray.get(me.info.remote())["actor_id"] == info["actor_id"]

    sized = Probe.options(num_cpus=2).remote()
    assert ray.get(sized.info.remote())["resources"] == {"CPU": 2.0}
    assert ray.get(sized.info.remote())["omp"] == "2"
    assert ray.get(sized.info.remote())["name"] == ""

    async_ids = ray.get([probe.async_task_id.remote() for _ in range(2)])
    assert None not in async_ids and async_ids[0] != async_ids[1]


@pytest.mark.parametrize("ray_start_regular", [{"num_cpus": 1, "num_gpus": 1}], indirect=True)
def test_gpu_tasks_never_reuse_a_cpu_task_worker(ray_start_regular):
    cpu_pid = ray.get(task_context.remote())["pid"]
    gpu_pid = ray.get(task_context.options(num_gpus=1).remote())["pid"]
    assert gpu_pid != cpu_pid
    assert ray.get(task_context.remote())["pid"] != gpu_pid
    assert ray.get(task_context.options(num_gpus=1).remote())["pid"] != cpu_pid


def test_task_blocked_in_get_lends_its_bundle_cpu_to_its_children(ray_start_regular):
    @ray.remote(num_cpus=1)
    def child():
        return "child ran"

    @ray.remote(num_cpus=1)
    def parent():
        return ray.get(child.remote())

    pg = placement_group([{"CPU": 1}])
    ray.get(pg.ready())
    strategy = in_group(pg, placement_group_capture_child_tasks=True)
    assert ray.get(parent.options(scheduling_strategy=strategy).remote(), timeout=30) == \
        "child ran"
    remove_placement_group(pg)


def test_assigned_resources_use_rays_names():
    from raggio.runtime_context import assigned_resources
    assert assigned_resources({"CPU": 1.0, "memory": 0.0}) == {"CPU": 1.0}
    assert assigned_resources({"CPU_group_1_ab12": 2.0, "bundle_group_1_ab12": 0.001}) == {
        "CPU_group_1_ab12": 2.0, "CPU_group_ab12": 2.0}


def test_task_names_and_function_names(ray_start_regular):
    @ray.remote
    def task():
        context = ray.get_runtime_context()
        return context.get_task_name(), context.get_task_function_name()

    @ray.remote
    class Plain:
        def call(self):
            context = ray.get_runtime_context()
            return context.get_task_name(), context.get_task_function_name()

    @ray.remote
    class Async:
        async def call(self):
            context = ray.get_runtime_context()
            return context.get_task_name(), context.get_task_function_name()

    assert ray.get(task.options(name="named").remote()) == ("named", f"{__name__}.task")
    assert ray.get(Plain.remote().call.remote()) == ("Plain.call", f"{__name__}.Plain.call")
    assert ray.get(Async.remote().call.remote()) == (
        "Async.call", f"{__name__}.test_task_names_and_function_names.<locals>.Async.call")


def test_the_old_id_properties_warn(ray_start_regular):
    from raggio.util.annotations import RayDeprecationWarning

    context = ray.get_runtime_context()
    with pytest.warns(RayDeprecationWarning, match="Use get_node_id\\(\\) instead"):
        assert context.node_id.hex() == context.get_node_id()
    with pytest.warns(RayDeprecationWarning, match="Use get_job_id\\(\\) instead"):
        assert context.job_id.hex() == context.get_job_id()


def test_the_new_id_getters_do_not_warn(ray_start_regular):
    context = ray.get_runtime_context()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for getter in (context.get_job_id, context.get_node_id, context.get_worker_id,
                       context.get_task_id, context.get_actor_id, context.get_placement_group_id):
            getter()
