"""node/resources.py: a blocked worker lends its CPUs, bundle CPUs included (no I/O)."""

from raggio.node.resources import NodeResources


def test_a_blocked_worker_lends_its_cpus_and_takes_them_back():
    node = NodeResources({"CPU": 2, "CPU_group_0_ab": 1, "CPU_group_ab": 1, "GPU": 1})
    lease = {"CPU_group_0_ab": 1.0, "CPU_group_ab": 1.0, "bundle_group_0_ab": 0.001}
    node.acquire(lease)
    assert node.available["CPU_group_ab"] == 0.0
    node.give_cpu(lease)
    assert node.available["CPU_group_ab"] == 1.0 and node.available["CPU_group_0_ab"] == 1.0
    assert node.available["CPU"] == 2.0  # only what the lease holds
    node.take_cpu_back(lease)
    assert node.available["CPU_group_ab"] == 0.0


def test_a_blocked_worker_keeps_its_gpus():
    node = NodeResources({"CPU": 2, "GPU": 1})
    lease = {"CPU": 1.0, "GPU": 1.0}
    node.acquire(lease)
    node.give_cpu(lease)
    assert node.available == {"CPU": 2.0, "GPU": 0.0}


def test_a_bundle_s_gpus_go_to_the_tasks_in_it():
    node = NodeResources({"CPU": 4, "GPU": 4})
    assert node.acquire({"GPU": 1}) == [0]  # a task outside any group
    group = {"0": {"GPU": 1}, "1": {"GPU": 2}}
    taken = node.acquire({"GPU": 3})
    node.set_aside_bundle_gpus("ab12", group, taken)
    assert node.acquire({"GPU_group_1_ab12": 1, "GPU_group_ab12": 1}) == [2]
    assert node.acquire({"GPU_group_ab12": 1}) == [1]  # the group's wildcard: any bundle
    assert node.acquire({"GPU_group_0_ab12": 1}) == []  # bundle 0's only GPU is taken
    node.release({"GPU_group_1_ab12": 1}, [2])
    assert node.bundle_gpu_ids["GPU_group_1_ab12"] == [2, 3]
    node.release({"GPU": 3}, node.drop_bundle_gpus("ab12"))
    node.release({"GPU_group_ab12": 1}, [1])  # a lease that outlived its group
    assert node.free_gpu_ids == [1, 2, 3]
