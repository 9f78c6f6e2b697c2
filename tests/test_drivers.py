"""Several drivers on one cluster: a second driver's ``init()`` joins the cluster a first
driver's ``init()`` started, as in Ray (which records it in its current-cluster file), and
loses it when the first driver exits (its private head ends with it).

The second driver is a fresh Python program run beside this test's driver, with the same
temp dir (so it finds the same current-cluster file).
"""

import os
import subprocess
import sys
import textwrap

import pytest

import raggio as ray

SECOND_DRIVER = textwrap.dedent("""
    import sys
    import raggio as ray

    address = sys.argv[1] or None
    info = ray.init() if address is None else ray.init(address=address)
    print(info["gcs_address"], ray.get_runtime_context().get_node_id(), flush=True)

    @ray.remote
    def add(a, b):
        return a + b

    print(ray.get(add.remote(40, 2)), flush=True)
    if len(sys.argv) > 2:
        sys.stdin.readline()  # the first driver has gone
        try:
            ray.get(add.remote(1, 1), timeout=30)
        except ray.exceptions.RayError as error:
            print("lost the cluster:", type(error).__name__, flush=True)
    ray.shutdown()
""")


def driver_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAGGIO_ADDRESS")}
    env.update(extra)
    return env


def run_second_driver(address="", **env):
    done = subprocess.run([sys.executable, "-c", SECOND_DRIVER, address], capture_output=True,
                          text=True, timeout=90, env=driver_env(**env))
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.parametrize("how", ["init()", "auto", "RAY_ADDRESS", "address"])
def test_second_driver_joins_the_cluster_of_the_first(ray_start_regular, how):
    gcs_address, node_id = ray_start_regular["gcs_address"], ray_start_regular["node_id"]
    if how == "init()":
        out = run_second_driver()
    elif how == "auto":
        out = run_second_driver("auto")
    elif how == "RAY_ADDRESS":
        out = run_second_driver(RAY_ADDRESS=gcs_address)
    else:
        out = run_second_driver(gcs_address)
    assert out == [gcs_address, node_id, "42"]


def test_second_driver_may_not_size_the_cluster(ray_start_regular):
    script = "import raggio as ray; ray.init(num_cpus=3)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=90, env=driver_env())
    assert done.returncode != 0
    assert "When connecting to an existing cluster, num_cpus must not be provided" in done.stderr


def test_second_driver_loses_the_cluster_when_the_first_exits(shutdown_only):
    ray.init(num_cpus=1)
    second = subprocess.Popen([sys.executable, "-c", SECOND_DRIVER, "", "wait"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env=driver_env())
    try:
        assert second.stdout.readline().split()[0] == ray.get_runtime_context().gcs_address
        assert second.stdout.readline().strip() == "42"
        ray.shutdown()  # the first driver's private head ends with it
        out, _ = second.communicate("go\n", timeout=90)
    finally:
        second.kill()
    assert out.startswith("lost the cluster:")


def test_a_new_private_cluster_after_the_first_is_gone(shutdown_only):
    first = ray.init(num_cpus=1)["gcs_address"]
    ray.shutdown()
    second = ray.init(num_cpus=1)["gcs_address"]
    assert second != first
