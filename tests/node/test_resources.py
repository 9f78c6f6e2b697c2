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
