"""The head recovers from its control store: after a SIGKILL, from a backup, from Redis.

Each test starts its own head with ``raggio start`` in a private temp dir and stops it
with ``raggio stop``; drivers run as subprocesses, as users run them.
"""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import urllib.request

import psutil
import pytest

from raggio import cluster_file
from raggio.core import one_shot
from raggio.test_utils import RAGGIO, free_port, run_cli, wait_until
from metrics.metrics_scraping import samples, scrape, value  # tests/metrics/

TIMEOUT_S = 120

CREATE = textwrap.dedent("""
    import raggio as ray
    ray.init(address="auto", namespace="app")

    @ray.remote
    class Keeper:
        def hello(self):
            return "still here"

        def pid(self):
            import os
            return os.getpid()

    kept = Keeper.options(name="kept", lifetime="detached").remote()
    owned = Keeper.options(name="owned").remote()
    print(ray.get(kept.hello.remote()), ray.get(owned.hello.remote()), ray.get(kept.pid.remote()))
    import time; time.sleep(60)  # the driver stays up until the head is killed
""")

CHECK = textwrap.dedent("""
    import time
    import raggio as ray
    ray.init(address="auto", namespace="app")
    print(ray.get(ray.get_actor("kept").hello.remote(), timeout=60))
    print(ray.get(ray.get_actor("kept").pid.remote(), timeout=60))
    # The driver-owned actor died with the head; the restarted control store finds its
    # worker gone within seconds, and then the name is free.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            ray.get_actor("owned")
            time.sleep(0.1)
        except ValueError:
            print("owned is gone")
            break
    else:
        print("owned is back")
""")


def env(temp_dir):
    out = {k: v for k, v in os.environ.items() if not k.startswith("RAGGIO_")}
    out["RAGGIO_TEMP_DIR"] = str(temp_dir)
    # A restarted control store waits this long for the drivers it knew (30 s by default);
    # the drivers these tests kill never come back.
    out["RAGGIO_GCS_RECONNECT_GRACE_S"] = "3"
    return out


def raggio(temp_dir, *args):
    return subprocess.run([sys.executable, "-m", "raggio", *args, f"--temp-dir={temp_dir}"],
                          capture_output=True, text=True, env=env(temp_dir), timeout=TIMEOUT_S)


def start_head(temp_dir, *extra):
    port = [arg for arg in extra if arg.startswith("--port=")] or ["--port=0"]
    extra = [arg for arg in extra if not arg.startswith("--port=")]
    result = raggio(temp_dir, "start", "--head", *port, "--dashboard-port=0",
                    "--node-ip-address=127.0.0.1",
                    "--num-cpus=2", *extra)
    assert result.returncode == 0, result.stderr
    return cluster_file.read(str(temp_dir))


def kill_head(info):
    head = psutil.Process(info["pid"])
    family = [head] + head.children(recursive=True)
    head.send_signal(signal.SIGKILL)
    wait_until(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE
                               for p in family), what="the killed head and its workers to end")


def start_driver(temp_dir):
    driver = subprocess.Popen([sys.executable, "-c", CREATE], stdout=subprocess.PIPE,
                              text=True, env=env(temp_dir))
    words = driver.stdout.readline().split()
    assert words[:4] == ["still", "here", "still", "here"]
    driver.kept_pid = words[4]
    return driver


def check(temp_dir):
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True,
                            env=env(temp_dir), timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("\n")
    return [lines[0], lines[2]], lines[1]


@pytest.fixture
def temp_dir(tmp_path):
    yield tmp_path
    raggio(tmp_path, "stop", "--force")


def test_a_killed_control_store_comes_back_and_adopts_the_live_actors(temp_dir):
    info = start_head(temp_dir)
    driver = start_driver(temp_dir)
    kill_head(info)
    driver.kill()
    driver.wait()
    start_head(temp_dir)
    # Only the control store died: the detached actor is adopted, the very same process;
    # the driver-owned one ends with its driver, which never comes back.
    answers, kept_pid = check(temp_dir)
    assert answers == ["still here", "owned is gone"]
    assert kept_pid == driver.kept_pid


def test_backup_and_restore(temp_dir, tmp_path_factory):
    start_head(temp_dir)
    driver = start_driver(temp_dir)
    backup = tmp_path_factory.mktemp("backup") / "store.sqlite"
    result = raggio(temp_dir, "backup", str(backup))
    assert result.returncode == 0 and "Saved" in result.stdout, result.stderr
    driver.kill()
    driver.wait()
    assert raggio(temp_dir, "stop").returncode == 0  # a clean stop ends the cluster...
    assert not os.path.exists(cluster_file.default_store_path(str(temp_dir)))
    result = raggio(temp_dir, "restore", str(backup))
    assert result.returncode == 0, result.stderr
    start_head(temp_dir)  # ...and a restored store brings it back
    assert check(temp_dir)[0][0] == "still here"


def test_a_corrupt_store_stops_the_head_from_starting_and_is_kept(temp_dir):
    store = cluster_file.default_store_path(str(temp_dir))
    with open(store, "wb") as f:
        f.write(b"not a database" * 1000)
    result = raggio(temp_dir, "start", "--head", "--port=0", "--dashboard-port=0",
                    "--node-ip-address=127.0.0.1")
    assert result.returncode != 0
    assert "cannot be read" in result.stderr and store in result.stderr
    with open(store, "rb") as f:
        assert f.read() == b"not a database" * 1000


def test_a_head_on_redis_recovers_from_it(temp_dir):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (.ci/run installs it)")
    port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                              "--save", "", "--dir", str(temp_dir)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        storage = f"--storage=redis://127.0.0.1:{port}/0"
        wait_until(lambda: raggio(temp_dir, "start", "--head", "--port=0",
                                  "--dashboard-port=0", "--node-ip-address=127.0.0.1",
                                  storage).returncode == 0,
                   what="a head on the new redis-server")
        info = cluster_file.read(str(temp_dir))
        driver = start_driver(temp_dir)
        import redis as redis_client
        client = redis_client.Redis(host="127.0.0.1", port=port)
        wait_until(lambda: client.hlen("raggio:task_events") >= 4,  # 2 creations, 2 calls
                   what="the task history written through to Redis")
        kill_head(info)
        driver.kill()
        driver.wait()
        start_head(temp_dir, storage)
        assert check(temp_dir)[0] == ["still here", "owned is gone"]
        calls = [t for t in list_tasks(temp_dir) if t["name"] == "Keeper.hello"]
        assert len(calls) >= 2 and {t["state"] for t in calls} == {"FINISHED"}
    finally:
        raggio(temp_dir, "stop", "--force")
        redis.terminate()
        redis.wait(timeout=10)


SURVIVOR = textwrap.dedent("""
    import sys
    import time
    import raggio as ray
    ray.init(address="auto", namespace="app", _node_ip_address="127.0.0.2")

    @ray.remote(resources={"worker": 1})
    class Counter:
        def __init__(self):
            self.count = 0

        def add(self):
            self.count += 1
            return self.count

    @ray.remote(resources={"worker": 1})
    def slow():
        time.sleep(4)
        return 42

    counter = Counter.options(name="counter").remote()
    assert ray.get(counter.add.remote()) == 1
    running = slow.remote()
    print("ready", flush=True)
    sys.stdin.readline()  # the test kills and restarts the head meanwhile
    print(ray.get(running, timeout=60), flush=True)                 # finished through it all
    print(ray.get(counter.add.remote(), timeout=60), flush=True)    # the same actor, same state
    print(ray.get(ray.get_actor("counter").add.remote(), timeout=60), flush=True)
    print(ray.get(slow.options(resources={}).remote(), timeout=60), flush=True)  # new work
""")


def dashboard_nodes(url: str, token: str) -> list | None:
    """The ALIVE nodes the dashboard at ``url`` lists, or None while it does not answer."""
    request = urllib.request.Request(
        url + "/api/v0/nodes?filter_keys=state&filter_predicates=%3D&filter_values=ALIVE",
        headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
                request, timeout=10) as answer:
            return json.loads(answer.read())["data"]["result"]["result"]
    except OSError:
        return None


def test_nodes_drivers_and_the_dashboard_ride_out_a_head_restart(temp_dir):
    port, dashboard_port = free_port(), free_port()
    info = start_head(temp_dir, f"--port={port}", f"--dashboard-port={dashboard_port}")
    url, token = info["dashboard_url"], cluster_file.read_token(info)
    result = raggio(temp_dir, "start", f"--address={info['gcs_address']}",
                    "--node-ip-address=127.0.0.2", "--num-cpus=2",
                    '--resources={"worker": 4}')
    assert result.returncode == 0, result.stderr
    driver = subprocess.Popen([sys.executable, "-c", SURVIVOR], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env(temp_dir))
    try:
        assert driver.stdout.readline().strip() == "ready"
        assert wait_until(lambda: dashboard_nodes(url, token), what="the dashboard")
        kill_head(info)  # the control store, and the dashboard with it
        assert dashboard_nodes(url, token) is None
        restarted = raggio(temp_dir, "start", "--head", f"--port={port}",
                           f"--dashboard-port={dashboard_port}",
                           "--node-ip-address=127.0.0.1", "--num-cpus=2")
        assert restarted.returncode == 0, restarted.stderr
        # The restarted head's dashboard is back at the same URL, and lists the node that
        # rode out the restart.
        wait_until(lambda: "127.0.0.2" in {n["node_ip"] for n in dashboard_nodes(url, token)
                                           or ()},
                   what="the restarted dashboard to list the node on 127.0.0.2")
        driver.stdin.write("go\n")
        driver.stdin.flush()
        assert [driver.stdout.readline().strip() for _ in range(4)] == ["42", "2", "3", "42"]
        assert driver.wait(timeout=60) == 0
    finally:
        driver.kill()


TASKS = textwrap.dedent("""
    import raggio as ray
    ray.init(address="auto")

    @ray.remote
    def remembered(x):
        return x + 1

    print(ray.get([remembered.remote(i) for i in range(3)]))
""")


def list_tasks(temp_dir):
    listing = subprocess.run([sys.executable, "-m", "raggio", "list", "tasks", "--format",
                              "json", "--detail", "--limit", "1000"], capture_output=True,
                             text=True, env=env(temp_dir), timeout=TIMEOUT_S)
    assert listing.returncode == 0, listing.stderr
    return json.loads(listing.stdout)


def test_the_task_history_survives_a_killed_control_store(temp_dir):
    info = start_head(temp_dir)
    result = subprocess.run([sys.executable, "-c", TASKS], capture_output=True, text=True,
                            env=env(temp_dir), timeout=TIMEOUT_S)
    assert result.stdout.strip() == "[1, 2, 3]", result.stderr

    def saved():
        with sqlite3.connect(cluster_file.default_store_path(str(temp_dir))) as db:
            return db.execute("SELECT count(*) FROM records WHERE tbl='task_events'"
                              ).fetchone()[0] >= 3
    wait_until(saved, what="the task history written through to the store")
    kill_head(info)
    start_head(temp_dir)
    tasks = [t for t in list_tasks(temp_dir) if t["name"] == "remembered"]
    assert [t["state"] for t in tasks] == ["FINISHED"] * 3
    assert all(t["events"][-1]["state"] == "FINISHED" and t["worker_pid"] for t in tasks)


AFTER_RESTART = textwrap.dedent("""
    import raggio as ray
    from raggio.util.state import list_nodes

    ray.init(address="auto")

    @ray.remote(num_cpus=0, scheduling_strategy="SPREAD")
    def where():
        return ray.util.get_node_ip_address()

    [node] = [n for n in list_nodes() if n.node_ip == "127.0.0.2"]
    print(node.state)  # RECOVERING until it registers with the restarted control store
    print(node.state_message)
    print(sorted(set(ray.get([where.remote() for _ in range(6)], timeout=60))))
""")


def join(info, temp_dir, ip: str, *flags, **config: str) -> None:
    """A one-CPU node at ``ip``; ``config``: its settings (``RAGGIO_<NAME>``)."""
    result = run_cli(temp_dir, "start", f"--address={info['gcs_address']}",
                     f"--node-ip-address={ip}", "--num-cpus=1", *flags,
                     f"--temp-dir={temp_dir}",
                     env=dict(env(temp_dir),
                              **{f"RAGGIO_{k.upper()}": v for k, v in config.items()}))
    assert result.returncode == 0, result.stderr


def node_row(temp_dir, ip: str) -> dict:
    """The node at ``ip`` as ``raggio list nodes`` shows it."""
    nodes = json.loads(run_cli(temp_dir, "list", "nodes", "--format=json",
                               env=env(temp_dir)).stdout)
    [row] = [n for n in nodes if n["node_ip"] == ip]
    return row


def drain_node_args(node_id: str, why: str) -> list[str]:
    return ["drain-node", f"--node-id={node_id}",
            "--reason=DRAIN_NODE_REASON_IDLE_TERMINATION", f"--reason-message={why}"]


def test_a_drained_node_stays_drained_across_a_control_store_restart(temp_dir):
    port = free_port()
    info = start_head(temp_dir, f"--port={port}")
    join(info, temp_dir, "127.0.0.2")
    side = node_row(temp_dir, "127.0.0.2")["node_id"]
    drained = run_cli(temp_dir, *drain_node_args(side, "kept across the restart"),
                      env=env(temp_dir))
    assert drained.returncode == 0, drained.stderr
    kill_head(info)
    start_head(temp_dir, f"--port={port}")

    def after_restart():
        result = subprocess.run([sys.executable, "-c", AFTER_RESTART], capture_output=True,
                                text=True, env=env(temp_dir), timeout=TIMEOUT_S)
        assert result.returncode == 0, result.stderr
        return result.stdout.splitlines()

    # The node rejoins the new control store still drained: no work goes there.
    _, message, ips = wait_until(lambda: (lines := after_restart())[0] == "ALIVE" and lines,
                                 timeout_s=60, what="the drained node to rejoin")
    assert message == "draining: kept across the restart"
    assert ips == "['127.0.0.1']"


OWNER = textwrap.dedent("""
    import sys
    import numpy as np
    import raggio as ray

    ray.init(address="auto")

    @ray.remote(resources={"side": 1}, max_retries=0)
    def make_array():
        return np.zeros(1 << 20, dtype=np.uint8)

    ref = make_array.remote()  # kept on the side node, owned here
    ray.wait([ref], fetch_local=False)
    print("made", flush=True)
    sys.stdin.readline()
""")


@pytest.mark.timeout(300)  # the drain is given up 30 s in, past a head restart
def test_a_drain_given_up_after_a_control_store_restart_frees_the_node(temp_dir):
    port = free_port()
    info = start_head(temp_dir, f"--port={port}")
    # The side node gives a drain up when an owner has not answered for 30 s: long enough
    # for the head to restart meanwhile.
    join(info, temp_dir, "127.0.0.2", '--resources={"side": 1}', drain_owner_timeout_s="30")
    side = node_row(temp_dir, "127.0.0.2")["node_id"]
    driver = subprocess.Popen([sys.executable, "-c", OWNER], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env(temp_dir))
    try:
        assert driver.stdout.readline().strip() == "made"
        # Its lease on the side node returned (a drain is refused while a lease is held):
        # the side node's own figures, live.
        (nodes,) = one_shot.query(one_shot.find(None, str(temp_dir)), [("get_nodes", None)])
        [metrics_port] = [n["metrics_export_port"] for n in nodes
                          if n["node_ip"] == "127.0.0.2" and n["state"] == "ALIVE"]
        token = cluster_file.read_token(info)
        wait_until(lambda: value(samples(scrape(metrics_port, token, "127.0.0.2")),
                                 "ray_resources", Name="side", State="AVAILABLE") == 1,
                   what="the side node's lease back")
        # The driver, owner of the side node's object, stops answering: moving the object
        # fails (the owner is not told within 30 s), so the drain is given up, after the
        # restart.
        os.kill(driver.pid, signal.SIGSTOP)
        drain = subprocess.Popen(RAGGIO + drain_node_args(side, "given up after the restart"),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 env=env(temp_dir))
        wait_until(lambda: node_row(temp_dir, "127.0.0.2")["state_message"]
                   == "draining: given up after the restart", what="the drain to start")
        kill_head(info)  # the drain's caller goes with it
        drain.wait(timeout=TIMEOUT_S)
        start_head(temp_dir, f"--port={port}")
        # The node comes back still draining...
        row = wait_until(lambda: (row := node_row(temp_dir, "127.0.0.2"))["state"] == "ALIVE"
                         and row, what="the side node to rejoin")
        assert row["state_message"] == "draining: given up after the restart"
        # ... and once the drain is given up, it takes work again: the restarted control
        # store is told.
        wait_until(lambda: node_row(temp_dir, "127.0.0.2")["state_message"] == "",
                   timeout_s=90, what="the restarted control store to see the drain given up")
    finally:
        driver.kill()  # SIGKILL ends a stopped process too
        driver.wait()
