"""``raise_on_missing_output``: a node that does not answer a state query of every node."""

import os
import signal

import pytest

import raggio as ray
from raggio.util import state


def test_a_node_that_does_not_answer_makes_the_output_missing(ray_start_cluster,
                                                              monkeypatch):
    monkeypatch.setenv("RAGGIO_HEALTH_CHECK_FAILURE_THRESHOLD", "1000")  # not declared dead
    cluster = ray_start_cluster
    cluster.add_node(num_cpus=1)
    stuck = cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address)
    os.kill(stuck.process.pid, signal.SIGSTOP)
    try:
        with pytest.raises(state.RayStateApiException, match="did not answer in time"):
            state.list_objects()
        with pytest.warns(UserWarning, match="did not answer in time"):
            workers = state.list_workers(raise_on_missing_output=False)
        assert any(w.worker_type == "DRIVER" for w in workers)
    finally:
        os.kill(stuck.process.pid, signal.SIGCONT)
