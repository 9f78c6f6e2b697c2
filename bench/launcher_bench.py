"""The cluster launcher on three SSH hosts: `up` until every node is alive, `--restart-only`, `down`.

Usage (as root): python bench/launcher_bench.py --backend ray|raggio [--json OUT] [--deadline S]
                 [--ray-autoscaler v1 v2]

Three SSH hosts (tests/launcher/ssh_hosts.py: network namespaces on a private bridge, each
with its own processes, /tmp, /dev/shm and sshd) get a three-node cluster file: raggio the
seed's on-premise file (`head_node`/`worker_nodes` resources, Ray's command names), Ray the
same cluster written the way Ray 2.60's local provider accepts it (it rejects `head_node`,
`worker_nodes` and `available_node_types`: resources become `ray start` flags, and the
start commands are Ray's defaults, `ray stop` first). The launcher runs inside the
fixture's launcher namespace, which is on the bridge and nothing else, so it can reach the
hosts and never this machine's other addresses. Rows, in the JSON shape of
microbenchmark.py (compare.py prints both):

- `up -y` until the command returns, and until all 3 nodes are alive: polled with
  `list nodes -f state=ALIVE --format json` on the head, each poll a fresh CLI process, so a
  time includes at most one poll (its cost is a row of its own). Ray's `up` returns once the
  head is up; the autoscaler on the head then starts the workers over SSH.
- `up -y --restart-only`, the same two times; a node counts once it is alive with a node ID
  the cluster did not have before the restart.
- `down -y` until it returns, and the processes of the cluster left on the hosts then (and,
  if any, 70 s later, in the notes).
- what each `up` brought up: processes on the head and on each worker.

A wait for the nodes gives up after --deadline seconds (180) and says how many came up.
The JSON also carries `notes`, a line per phase saying what came up and what was left.
Ray's rows come from a pass with its autoscaler v1 (`RAY_UP_enable_autoscaler_v2=0`); its
default since 2.50, v2, does not support the local provider, and a second pass on fresh
hosts (`up` and `down`) reports what v2 brings up and leaves, in two rows and the notes.
Ray's hosts get `ray` on PATH through each host's own ~/.bashrc (Ray runs every remote
command in a login shell, which resets PATH), and RAY_USAGE_STATS_ENABLED=0 and
RAY_AUTH_MODE=disabled in every SSH session.
"""

import argparse
import importlib.metadata
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

import yaml

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "launcher"))
from ssh_hosts import SshHosts, missing_requirements  # noqa: E402

import report  # noqa: E402 (bench/report.py, beside this script)

HOSTS = 3
DEADLINE_S = 180.0
#: How long one launcher command may run before it counts as failed.
COMMAND_TIMEOUT_S = 300.0
#: When `down` leaves processes, how long until a second look (a raylet gives up on a
#: vanished head after Ray's 60 s GCS reconnect timeout).
LINGER_S = 70.0
NODE_RESOURCES = {"CPU": 2, "memory": "4Gi"}
MEMORY_BYTES = 4 * 2**30
HEAD_SETUP = 'echo "head setup on $(hostname)" > /tmp/setup-ran'
WORKER_SETUP = 'echo "worker setup for head $RAY_HEAD_IP" > /tmp/setup-ran'
RAY_SESSION_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled",
                   "PYTHONPATH": ""}


def cli(backend: str) -> str:
    """The backend's CLI: next to the interpreter running this script (Ray's in its venv)."""
    return os.path.join(os.path.dirname(sys.executable), backend)


def row(name, unit, value, error=None):
    return {"name": name, "unit": unit, "value": value, "error": error, "lower_is_better": True}


def cluster_document(backend: str, hosts: SshHosts, name: str) -> dict:
    """The cluster file: the seed's on-premise form for raggio, Ray's local-provider form for Ray."""
    common = {
        "cluster_name": name,
        "provider": {"type": "local", "head_ip": hosts.ips[0], "worker_ips": hosts.ips[1:]},
        "auth": {"ssh_user": hosts.user, "ssh_private_key": hosts.key_path},
        "head_setup_commands": [HEAD_SETUP],
        "worker_setup_commands": [WORKER_SETUP],
    }
    if backend == "raggio":
        return {**common,
                "head_node": {"resources": NODE_RESOURCES},
                "worker_nodes": {"resources": NODE_RESOURCES},
                "head_start_ray_commands": ["ray start --head --port=6379"],
                "worker_start_ray_commands": ["ray start --address=$RAY_HEAD_IP:6379"]}
    flags = f"--num-cpus={NODE_RESOURCES['CPU']} --memory={MEMORY_BYTES}"
    return {**common,
            "head_start_ray_commands": [
                "ray stop",
                "ulimit -c unlimited; ray start --head --port=6379 "
                f"--autoscaling-config=~/ray_bootstrap_config.yaml {flags}"],
            "worker_start_ray_commands": [
                "ray stop", f"ray start --address=$RAY_HEAD_IP:6379 {flags}"]}


#: Ray's rows: autoscaler v1, which supports the local provider; Ray's default since 2.50, v2,
#: does not (ray-project/ray#57153), and its pass only reports what it brought up and left.
RAY_PASSES = {
    "v1": ("", {"RAY_UP_enable_autoscaler_v2": "0"}, False),
    "v2": ("default autoscaler v2: ", {"RAY_UP_enable_autoscaler_v2": "1"}, True),
}
SUMMARY_ROWS = ("nodes alive after up", "processes left after down")


def short_command(command: str) -> str:
    """A process's program, or the script a Python process runs: `raylet`, `log_monitor.py`."""
    words = command.split()
    names = [os.path.basename(w) for w in words[1:] if not w.startswith("-")][:1]
    program = os.path.basename(words[0]) if words else command
    return names[0] if program.startswith("python") and names else program


class Bench:
    """One backend's launcher driven against one set of SSH hosts."""

    def __init__(self, backend: str, hosts: SshHosts, work_dir: str, deadline_s: float,
                 launcher_env: dict[str, str]):
        self.backend, self.hosts, self.deadline_s = backend, hosts, deadline_s
        self.path = os.path.join(work_dir, f"{backend}-cluster.yaml")
        name = f"bench-{backend}-{os.path.basename(work_dir)[-6:]}"
        with open(self.path, "w") as f:
            yaml.safe_dump(cluster_document(backend, hosts, name), f, sort_keys=False)
        # The launchers' local state (Ray's under its temp dir) stays in the work dir.
        self.env = dict(os.environ, RAGGIO_LAUNCHER_DIR=os.path.join(work_dir, "clusters"),
                        RAY_TMPDIR=work_dir, TMPDIR=work_dir, **launcher_env)
        if backend == "ray":
            for i in range(len(hosts.ips)):  # Ray's login shells reset PATH; a user's .bashrc sets it
                hosts.run(i, f"echo 'export PATH={os.path.dirname(sys.executable)}:$PATH'"
                             " >> ~/.bashrc")
        self.rows, self.notes, self.poll_costs = [], [], []
        self.node_ids: set[str] = set()

    def launcher(self, *args: str) -> float:
        """Run `<backend> ARGS FILE` inside the launcher namespace; the seconds it took."""
        argv = ["ip", "netns", "exec", self.hosts.launcher_ns, cli(self.backend), *args, self.path]
        command = shlex.join([self.backend, *args])
        started = time.perf_counter()
        try:
            done = subprocess.run(argv, env=self.env, stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            output = (exc.stdout or b"") + (exc.stderr or b"")
            raise RuntimeError(f"`{command}` ran past {COMMAND_TIMEOUT_S:.0f} s: "
                               f"...{output.decode(errors='replace')[-1500:]}") from None
        took = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"`{command}` exited with {done.returncode}: "
                               f"...{(done.stdout + done.stderr)[-1500:]}")
        return took

    def alive_nodes(self) -> dict[str, str]:
        """{node ID: IP} of the nodes the head lists as alive (empty while it cannot answer)."""
        started = time.perf_counter()
        done = self.hosts.run(0, f"{self.backend} list nodes -f state=ALIVE --format json",
                              timeout=60)
        self.poll_costs.append(time.perf_counter() - started)
        try:
            nodes = json.loads(done.stdout)
        except ValueError:
            return {}
        return {node["node_id"]: node["node_ip"] for node in nodes}

    def wait_alive(self, started: float, phase: str) -> None:
        """Poll until all nodes are alive with IDs not seen before; add the rows and a note."""
        count, alive = len(self.hosts.ips), {}
        name = f"{phase}: all {count} nodes alive"
        while time.perf_counter() - started < self.deadline_s:
            alive = {k: v for k, v in self.alive_nodes().items() if k not in self.node_ids}
            if len(alive) >= count:
                self.rows.append(row(name, "s", time.perf_counter() - started))
                break
            time.sleep(0.2)
        else:
            self.rows.append(row(name, "s", None, f"{len(alive)} of {count} nodes alive after "
                                                  f"{self.deadline_s:.0f} s"))
        self.node_ids |= set(alive)
        processes = [len(self.hosts.processes(i)) for i in range(count)]
        self.notes.append(f"after `{phase}`: {len(alive)} of {count} nodes alive "
                          f"({', '.join(sorted(alive.values())) or 'none'}); processes on "
                          f"head/workers: {'/'.join(map(str, processes))}")
        if phase == "up":
            self.rows += [dict(row("nodes alive after up", "count", len(alive)),
                               lower_is_better=False),
                          row("processes after up: head", "count", processes[0]),
                          row("processes after up: each worker (mean)", "count",
                              statistics.mean(processes[1:]))]

    def up(self, phase: str, *flags: str) -> None:
        started = time.perf_counter()
        self.rows.append(row(f"{phase}: command returns", "s", self.launcher("up", "-y", *flags)))
        self.wait_alive(started, phase)

    def down(self) -> None:
        self.rows.append(row("down: command returns", "s", self.launcher("down", "-y")))
        left = {i: self.hosts.processes(i) for i in range(len(self.hosts.ips))}
        self.rows.append(row("processes left after down", "count",
                             sum(map(len, left.values()))))
        self.notes.append(f"after `down`: {self.describe(left)}")
        if any(left.values()):  # a node may end its processes itself once the head is gone
            time.sleep(LINGER_S)
            later = {i: self.hosts.processes(i) for i in left}
            self.notes.append(f"{LINGER_S:.0f} s after `down`: {self.describe(later)}")

    @staticmethod
    def describe(left: dict[int, list[str]]) -> str:
        return "; ".join(f"host {i}: {', '.join(short_command(c) for c in commands)}"
                         for i, commands in left.items() if commands) or "no process on any host"

    def run(self, restart: bool) -> None:
        """`up`, `up --restart-only` (if `restart`) and `down`; `down` also after a failure."""
        steps = [("up", lambda: self.up("up"))]
        if restart:
            steps.append(("up --restart-only",
                          lambda: self.up("up --restart-only", "--restart-only")))
        for name, step in steps:
            if not self.attempt(name, step):
                break
        self.attempt("down", self.down)
        if self.poll_costs:
            self.rows.append(row("one `list nodes` poll on the head", "s",
                                 statistics.median(self.poll_costs)))

    def attempt(self, name: str, step) -> bool:
        """Run one step; on failure record an error row and a note, and return False."""
        try:
            step()
            return True
        except Exception as exc:  # report and go on, as microbenchmark.py does
            message = f"{type(exc).__name__}: {exc}"
            self.rows.append(row(f"{name}: command returns", "s", None, message))
            self.notes.append(f"`{name}` failed: {message}")
            return False


def measure_pass(backend: str, deadline_s: float, launcher_env: dict[str, str],
                 restart: bool) -> tuple[list[dict], list[str]]:
    """One cluster's `up`, (`up --restart-only`,) `down` on three fresh hosts."""
    host_env = RAY_SESSION_ENV if backend == "ray" else {}
    with tempfile.TemporaryDirectory(prefix=f"{backend}-launcher-bench-") as work_dir, \
            SshHosts(HOSTS, env=host_env, launcher_ns=True) as hosts:
        bench = Bench(backend, hosts, work_dir, deadline_s, {**host_env, **launcher_env})
        bench.run(restart)
        return bench.rows, bench.notes


def measure(backend: str, deadline_s: float, ray_passes: list[str]):
    reason = missing_requirements()
    if reason:
        return [row("launcher", "", None, reason)], []
    if backend == "raggio":
        return measure_pass(backend, deadline_s, {}, restart=True)
    rows, notes = [], []
    for name in ray_passes:
        prefix, env, summary_only = RAY_PASSES[name]
        pass_rows, pass_notes = measure_pass(backend, deadline_s, env, restart=not summary_only)
        rows += [dict(r, name=prefix + r["name"]) for r in pass_rows
                 if not summary_only or r["name"] in SUMMARY_ROWS]
        notes += [f"autoscaler {name}: {note}" for note in pass_notes]
    return rows, notes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["ray", "raggio"], required=True)
    parser.add_argument("--json")
    parser.add_argument("--deadline", type=float, default=DEADLINE_S,
                        help="seconds to wait for all nodes to be alive")
    parser.add_argument("--ray-autoscaler", nargs="+", choices=list(RAY_PASSES),
                        default=list(RAY_PASSES),
                        help="Ray's passes: v1 gives the rows, v2 (Ray's default) what it "
                             "brings up and leaves")
    args = parser.parse_args()
    rows, notes = measure(args.backend, args.deadline, args.ray_autoscaler)
    report.finish(args.backend, importlib.metadata.version(args.backend), rows, args.json,
                  notes)


if __name__ == "__main__":
    main()
