"""Remote use of a cluster: a submitted job's latency, and a ray:// client's connect and calls.

Usage: python bench/jobs_client_bench.py --backend ray|raggio [--json OUT] [--runs N]

One head (`start --head`, 2 CPUs, 127.0.0.1, its dashboard and client server on free
ports), then rows in the JSON shape of microbenchmark.py (compare.py prints both):
- job submit -> RUNNING and submit -> SUCCEEDED: `JobSubmissionClient.submit_job` of a
  trivial entrypoint (`python -c pass`, this interpreter), polled every 10 ms; median of
  --runs, after one job to warm up.
- job with init(): an entrypoint that connects to the cluster and runs one task, submit ->
  SUCCEEDED; median of --runs.
- ray:// connect: `init("ray://127.0.0.1:PORT")` until it returns, in a fresh process;
  median of --runs.
- ray:// task round trip: `get(f.remote())` of an empty task, median of 200 after warm-up.
- ray:// put+get of 10 MiB: one `get(put(array))`, median of 10.

Ray runs in a loopback-only network namespace with RAY_AUTH_MODE=disabled (run_vs_ray.py
sets that up); raggio's token comes from the head's session. The head is stopped at the end
(raggio: its own processes, by pid, never other clusters on the machine).
"""

import argparse
import importlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import psutil

RUNS = 5
#: Entrypoints, run by this interpreter (Ray's in its venv).
TRIVIAL = f"{sys.executable} -c pass"
WITH_INIT = (f"{sys.executable} -c \"import {{b}} as ray; ray.init(); "
             "print(ray.get(ray.remote(lambda: 1).remote()))\"")
CLIENT_CONNECT = ("import time, {b} as ray; t = time.perf_counter(); "
                  "ray.init('ray://127.0.0.1:{port}'); print(time.perf_counter() - t); "
                  "ray.shutdown()")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cli(backend: str) -> str:
    return os.path.join(os.path.dirname(sys.executable), backend)


def row(name, unit, value):
    return {"name": name, "unit": unit, "value": value, "error": None, "lower_is_better": True}


class Head:
    """A head with its dashboard and client server on free ports, in a temp dir of its own."""

    def __init__(self, backend: str):
        self.backend = backend
        self.temp_dir = tempfile.mkdtemp(prefix=f"{backend}-jobs-bench-")
        self.dashboard_port, self.client_port = free_port(), free_port()
        if backend == "raggio":
            os.environ["RAGGIO_TEMP_DIR"] = self.temp_dir  # the client finds the token there
        subprocess.run([cli(backend), "start", "--head", f"--port={free_port()}",
                        "--node-ip-address=127.0.0.1", "--num-cpus=2",
                        f"--temp-dir={self.temp_dir}", f"--dashboard-port={self.dashboard_port}",
                        f"--ray-client-server-port={self.client_port}"],
                       check=True, capture_output=True)
        self.url = f"http://127.0.0.1:{self.dashboard_port}"

    def stop(self) -> None:
        if self.backend == "ray":
            subprocess.run([cli("ray"), "stop"], capture_output=True)
        else:
            mine = [p for p in psutil.process_iter(["cmdline"])
                    if self.temp_dir in " ".join(p.info["cmdline"] or [])]
            for process in mine:
                process.terminate()
            psutil.wait_procs(mine, timeout=20)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def job_latency(client, entrypoint: str) -> tuple[float, float]:
    """(submit -> RUNNING, submit -> SUCCEEDED) of one job, polled every 10 ms."""
    started = time.perf_counter()
    job = client.submit_job(entrypoint=entrypoint)
    running = None
    while True:
        status = str(client.get_job_status(job)).rsplit(".", 1)[-1]
        now = time.perf_counter() - started
        if status in ("RUNNING", "SUCCEEDED") and running is None:
            running = now
        if status == "SUCCEEDED":
            return running, now
        if status in ("FAILED", "STOPPED"):
            raise RuntimeError(f"job {job} ended {status}: {client.get_job_logs(job)}")
        if now > 120:
            raise RuntimeError(f"job {job} did not finish in 120 s")
        time.sleep(0.01)


def job_rows(backend: str, head: Head, runs: int) -> list[dict]:
    client = importlib.import_module(f"{backend}.job_submission").JobSubmissionClient(head.url)
    job_latency(client, TRIVIAL)  # warm-up: the job machinery's first use
    trivial = [job_latency(client, TRIVIAL) for _ in range(runs)]
    with_init = [job_latency(client, WITH_INIT.format(b=backend))[1] for _ in range(runs)]
    return [row("job submit -> RUNNING", "s", statistics.median(t[0] for t in trivial)),
            row("job submit -> SUCCEEDED", "s", statistics.median(t[1] for t in trivial)),
            row("job with init() and a task: submit -> SUCCEEDED", "s",
                statistics.median(with_init))]


def client_rows(backend: str, head: Head, runs: int) -> list[dict]:
    script = CLIENT_CONNECT.format(b=backend, port=head.client_port)
    connects = []
    for _ in range(runs + 1):  # the first connect of a head starts its server's first session
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"the client did not connect: {done.stderr.strip()[-2000:]}")
        connects.append(float(done.stdout.strip().splitlines()[-1]))
    ray = importlib.import_module(backend)
    import numpy as np
    ray.init(f"ray://127.0.0.1:{head.client_port}")
    try:
        @ray.remote
        def nothing():
            return None
        for _ in range(20):
            ray.get(nothing.remote())
        trips = []
        for _ in range(200):
            started = time.perf_counter()
            ray.get(nothing.remote())
            trips.append(time.perf_counter() - started)
        array = np.ones(10 * 2**20, dtype=np.uint8)
        puts = []
        for _ in range(10):
            started = time.perf_counter()
            ray.get(ray.put(array))
            puts.append(time.perf_counter() - started)
    finally:
        ray.shutdown()
    return [row("ray:// first connect", "s", connects[0]),
            row("ray:// connect", "s", statistics.median(connects[1:])),
            row("ray:// task round trip", "ms", statistics.median(trips) * 1000),
            row("ray:// put+get 10 MiB", "ms", statistics.median(puts) * 1000)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["ray", "raggio"], required=True)
    parser.add_argument("--json")
    parser.add_argument("--runs", type=int, default=RUNS)
    args = parser.parse_args()
    head = Head(args.backend)
    rows = []
    try:
        for measure in (job_rows, client_rows):
            try:
                rows += measure(args.backend, head, args.runs)
            except Exception as exc:  # report and go on, as microbenchmark.py does
                rows.append({"name": measure.__name__, "unit": "", "value": None,
                             "error": f"{type(exc).__name__}: {exc}", "lower_is_better": True})
    finally:
        head.stop()
    version = importlib.import_module(args.backend).__version__
    for r in rows:
        value = "ERROR " + r["error"] if r["error"] else f"{r['value']:.3f} {r['unit']}"
        print(f"{r['name']:<48} {value}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"backend": args.backend, "version": version, "quick": False,
                       "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
