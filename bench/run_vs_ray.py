"""Run every benchmark on raggio and on Ray 2.60 in one run, alternating, and compare.

Usage (as root, from anywhere):
    python3 bench/run_vs_ray.py [--quick] [--only SECTION ...] [--filter TEXT]

Sections, in order: the microbenchmark (raggio/microbenchmark.py, one step per
row group), cluster management (cluster_bench.py), scale (scale_bench.py),
remote use (jobs_client_bench.py), the cluster launcher (launcher_bench.py), the
autoscaler (autoscaler_bench.py) and install (install_bench.py).  Each step runs on
both backends back to back, and the backend that goes first alternates from step to
step, so that slow drift on the machine (other load, a warm page cache) falls on
both sides alike.

Ray is installed into .venv-ray at the repo root when missing.  Every step but
the install one runs inside the network namespace "raggio-bench", which has
only loopback up, so nothing leaves 127.0.0.0/8 (Ray runs with
RAY_AUTH_MODE=disabled and usage stats off).  The install step needs the
package registries, so it runs outside; the launcher step makes its own SSH
hosts on a private bridge and runs each launcher in a namespace on that bridge
only; the autoscaler step runs Ray in a PID namespace of its own as well, so that
its `ray stop` ends only that run's processes.  Root is needed for `ip netns`.

Results: bench/results/{ray,raggio}.json (every row, with its section) and
bench/results/table.txt (what is printed at the end: date, machine, command,
then one table per section, and the lines a section notes below it, such as
what each launcher brought up).  Exit status 1 if any row failed.
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys

import psutil

from compare import print_table
from microbenchmark import load_microbenchmark

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(REPO_ROOT, "bench")
RESULTS = os.path.join(BENCH, "results")
VENV = os.path.join(REPO_ROOT, ".venv-ray")
NETNS = "raggio-bench"
RAY_VERSION = "2.60.0"
SECTIONS = ("microbenchmark", "cluster", "scale", "remote", "launcher", "autoscaler",
            "install")
SECTION_SCRIPTS = {"cluster": "cluster_bench.py", "scale": "scale_bench.py",
                   "remote": "jobs_client_bench.py", "launcher": "launcher_bench.py",
                   "autoscaler": "autoscaler_bench.py", "install": "install_bench.py"}
#: Sections run outside the loopback-only namespace: install needs the registries, launcher
#: makes its own bridge and namespaces.
OUTSIDE_NETNS = ("install", "launcher")


def ensure_ray_venv():
    python = os.path.join(VENV, "bin", "python")
    if os.path.exists(python) and subprocess.run(
            [python, "-c", "import ray, numpy, psutil"], capture_output=True).returncode == 0:
        return
    print(f"Installing ray[default]=={RAY_VERSION} into {VENV} ...", flush=True)
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    subprocess.run([os.path.join(VENV, "bin", "pip"), "install", "--quiet",
                    f"ray[default]=={RAY_VERSION}", "numpy", "psutil"], check=True)


def ensure_netns():
    existing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                              check=True).stdout.split()
    if NETNS not in existing:
        subprocess.run(["ip", "netns", "add", NETNS], check=True)
    subprocess.run(["ip", "netns", "exec", NETNS, "ip", "link", "set", "lo", "up"],
                   check=True)


def compile_raggio():
    """Write raggio's bytecode, as `pip install` does for an installed package. Without
    it, an editable install under PYTHONDONTWRITEBYTECODE (set on this machine) compiles
    every module in every process it starts, which Ray's installed wheel never does."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(REPO_ROOT, "raggio")],
                   check=True, env=dict(os.environ, PYTHONDONTWRITEBYTECODE=""))


def backend_command(backend, script_args, in_netns):
    """The command line running a bench script on `backend`."""
    if backend == "ray":
        env = ["RAY_AUTH_MODE=disabled", "RAY_USAGE_STATS_ENABLED=0"]
        python = os.path.join(VENV, "bin", "python")
    else:
        env = [f"PYTHONPATH={REPO_ROOT}"]
        python = sys.executable
    command = ["env", *env, python, *script_args, "--backend", backend]
    return ["ip", "netns", "exec", NETNS, *command] if in_netns else command


def steps(args):
    """(section, label, script arguments) for every step of this run."""
    for section in args.only or SECTIONS:
        if section == "microbenchmark":
            extra = (["--quick"] if args.quick else []) + (
                ["--filter", args.filter] if args.filter else [])
            for group in load_microbenchmark().GROUPS:
                yield section, group, [os.path.join(BENCH, "microbenchmark.py"),
                                       "--group", group, *extra]
        else:
            yield section, section, [os.path.join(BENCH, SECTION_SCRIPTS[section])]


def run_step(backend, section, label, script_args):
    """Run one step on one backend; return its JSON document (an error row if none)."""
    out = os.path.join(RESULTS, f"step-{backend}.json")
    if os.path.exists(out):
        os.remove(out)
    command = backend_command(backend, [*script_args, "--json", out],
                              in_netns=section not in OUTSIDE_NETNS)
    print(f"=== {section} / {label}: {backend} ===", flush=True)
    returncode = subprocess.run(command, cwd=REPO_ROOT).returncode
    if not os.path.exists(out):
        return {"rows": [{"name": f"{section}: {label}", "unit": "", "value": None,
                          "error": f"exited with code {returncode} and wrote no results: "
                                   f"{shlex.join(command)}",
                          "lower_is_better": True}]}
    with open(out) as f:
        data = json.load(f)
    os.remove(out)
    return data


def machine():
    memory = psutil.virtual_memory().total / 2**30
    return (f"{platform.node()}: {os.cpu_count()} cores, {memory:.0f} GiB, "
            f"{platform.platform()}, Python {platform.python_version()}")


def report(results, command, out):
    print(f"Date: {datetime.datetime.now():%Y-%m-%d %H:%M}. Machine: {machine()}.", file=out)
    print(f"Command: `{command}`. Ratios are raggio/Ray.", file=out)
    for section in SECTIONS:
        sides = [dict(document, rows=[r for r in document["rows"] if r["section"] == section])
                 for document in (results["ray"], results["raggio"])]
        if any(side["rows"] for side in sides):
            print(f"\n## {section}\n", file=out)
            print_table(*sides, out=out)
            notes = [f"{side['backend']}: {note['text']}" for side in sides
                     for note in side["notes"] if note["section"] == section]
            if notes:
                print("", *notes, sep="\n", file=out)


class Tee:
    def __init__(self, *streams):
        self.streams = streams

    def write(self, text):
        for stream in self.streams:
            stream.write(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="microbenchmark rows of 0.5 s and one startup probe")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    parser.add_argument("--filter", default="", help="microbenchmark rows containing this")
    args = parser.parse_args()

    ensure_ray_venv()
    ensure_netns()
    compile_raggio()
    os.makedirs(RESULTS, exist_ok=True)
    results = {backend: {"backend": backend, "version": None, "quick": False, "rows": [],
                         "notes": []}
               for backend in ("ray", "raggio")}
    for index, (section, label, script_args) in enumerate(steps(args)):
        order = ("ray", "raggio") if index % 2 == 0 else ("raggio", "ray")
        for backend in order:
            step = run_step(backend, section, label, script_args)
            merged = results[backend]
            merged["version"] = step.get("version") or merged["version"]
            merged["quick"] = merged["quick"] or step.get("quick", False)
            merged["rows"] += [dict(row, section=section) for row in step["rows"]]
            merged["notes"] += [{"section": section, "text": text}
                                for text in step.get("notes", [])]

    for backend, merged in results.items():
        with open(os.path.join(RESULTS, f"{backend}.json"), "w") as f:
            json.dump(merged, f, indent=1)
    command = shlex.join(["python3", "bench/run_vs_ray.py", *sys.argv[1:]])
    print("\n=== raggio vs Ray ===\n")
    with open(os.path.join(RESULTS, "table.txt"), "w") as table:
        report(results, command, Tee(sys.stdout, table))
    failed = any(row["error"] for merged in results.values() for row in merged["rows"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
