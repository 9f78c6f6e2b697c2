"""Run Ray's own test files (``upstream/``) on raggio and on Ray 2.60, and compare.

    python bench/ray_tests/run.py                      # raggio side, every file
    python bench/ray_tests/run.py --files test_cancel.py test_asyncio.py
    python bench/ray_tests/run.py --ray                # Ray side (slow; one file at a time)
    python bench/ray_tests/run.py --report [--markdown]  # per-file table, failures by reason
    python bench/ray_tests/run.py --check              # upstream/ against upstream.json
    python bench/ray_tests/run.py --install-deps       # test-only packages into .deps/<side>
    python /work/wt/harness/bench/ray_tests/run.py --raggio /work/wt/NAME --files test_actor.py

Each file runs in its own ``python -m pytest`` (per-test timeout, no cache) writing
``bench/results/ray_tests/<backend>/<file>.json`` (see ``ray_results.py``) and a ``.log``.
The raggio side imports this checkout's raggio as ``ray`` through ``shim/``. The Ray side
runs the Ray 2.60 virtualenv at ``nice -n 15`` inside a network namespace that has only
loopback, with ``RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import classification

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
UPSTREAM = HERE / "upstream"
#: The checkout whose raggio the raggio side imports (``--raggio``); its results go there.
RAGGIO_ROOT = REPO
DEPS = HERE / ".deps"
NETNS = "raggio-raytests"
DEFAULT_RAY_PYTHON = "/work/main/.venv-ray/bin/python"
_ANSI_COLOR = re.compile(r"\x1b\[[0-9;]*m")

#: The files issue #11 names, in its order.
FILES = [
    "test_basic.py", "test_basic_2.py", "test_actor.py", "test_actor_failures.py",
    "test_failure.py", "test_cancel.py", "test_asyncio.py", "test_runtime_context.py",
    "test_generators.py", "test_traceback.py", "test_namespace.py", "test_placement_group.py",
]
#: Test-only packages each side lacks (the Ray virtualenv has not even numpy).
DEPS_PACKAGES = {"raggio": ["pytest-asyncio"],
                 "ray": ["numpy", "setproctitle", "redis", "pytest-asyncio"]}


def python_for(backend: str, ray_python: str) -> str:
    return ray_python if backend == "ray" else sys.executable


def install_deps(backend: str, ray_python: str) -> None:
    """pip-install the side's test-only packages into ``.deps/<backend>`` (no global change)."""
    target = DEPS / backend
    python = python_for(backend, ray_python)
    for package in DEPS_PACKAGES[backend]:
        no_deps = ["--no-deps"] if package == "pytest-asyncio" else []  # keep each side's pytest
        subprocess.run([python, "-m", "pip", "install", "-q", "--target", str(target),
                        *no_deps, package], check=True)


def check_upstream() -> bool:
    """Compare ``upstream/`` with the manifest; print what is missing or different."""
    manifest = json.loads((HERE / "upstream.json").read_text())["files"]
    ok = True
    for name, entry in manifest.items():
        path = UPSTREAM / name
        if not path.exists():
            print(f"missing  {name} (fetch {entry['path']} @ {entry['commit']})")
            ok = False
        elif hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"]:
            print(f"differs  {name} (expected sha256 {entry['sha256']})")
            ok = False
    print("upstream/ matches upstream.json" if ok else "upstream/ is incomplete")
    return ok


def ensure_netns() -> None:
    """Create the loopback-only network namespace for the Ray side (idempotent)."""
    existing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    if NETNS not in existing.split():
        subprocess.run(["ip", "netns", "add", NETNS], check=True)
    subprocess.run(["ip", "netns", "exec", NETNS, "ip", "link", "set", "lo", "up"], check=True)


def side_env(backend: str) -> dict:
    env = dict(os.environ, RAY_TESTS_BACKEND=backend)
    if backend == "raggio":
        paths = [HERE / "shim", RAGGIO_ROOT, DEPS / "raggio"]
    else:
        paths = [DEPS / "ray"]
        env.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in paths)
    return env


def results_dir(backend: str) -> Path:
    """``bench/results/ray_tests/<backend>``: the tested checkout's (raggio) or this one's."""
    root = RAGGIO_ROOT if backend == "raggio" else REPO
    return root / "bench" / "results" / "ray_tests" / backend


def run_file(backend: str, name: str, timeout_s: int, file_timeout_s: int,
             ray_python: str) -> None:
    """Run one test file on one side; results land in ``results_dir(backend)/<name>.json``."""
    out_dir = results_dir(backend)
    out_dir.mkdir(parents=True, exist_ok=True)
    results_path = out_dir / f"{name}.json"
    results_path.unlink(missing_ok=True)
    cmd = [python_for(backend, ray_python), "-m", "pytest", "-c", str(HERE / "pytest.ini"),
           "-p", "no:cacheprovider", f"--timeout={timeout_s}", "-q", "-rfE",
           "--results-json", str(results_path), str(UPSTREAM / name)]
    if backend == "ray":
        ensure_netns()
        cmd = ["nice", "-n", "15", "ip", "netns", "exec", NETNS] + cmd
    else:
        cmd = ["nice", "-n", "5"] + cmd
    with open(out_dir / f"{name}.log", "w") as log:
        process = subprocess.Popen(cmd, cwd=HERE, env=side_env(backend), stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            process.wait(timeout=file_timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            log.write(f"\nrun.py: killed after {file_timeout_s} s for the whole file\n")
    counts = defaultdict(int)
    for entry in load(backend, name).values():
        counts[entry["outcome"]] += 1
    print(f"{backend:6} {name:26} " + ", ".join(f"{n} {o}" for o, n in sorted(counts.items())),
          flush=True)


def load(backend: str, name: str) -> dict | None:
    """The recorded tests of one file on one side, or None if it has not run."""
    path = results_dir(backend) / f"{name}.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())["tests"]


def compare(files: list[str]):
    """Per-file rows, the failures among Ray's passes grouped by (area, reason), and the tests
    that fail on Ray itself.

    A test the Ray side has not run (yet) counts as a failure on raggio if it did not pass.
    """
    rows = []
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    not_counted: list[tuple[str, str]] = []  # (test id, Ray's failure) for tests Ray fails
    for name in files:
        raggio_tests, ray_tests = load("raggio", name), load("ray", name)
        if raggio_tests is None:
            continue
        raggio_passed = {t for t, e in raggio_tests.items() if e["outcome"] == "passed"}
        ray_tests = ray_tests or {}
        ray_passed = {t for t, e in ray_tests.items() if e["outcome"] == "passed"}
        not_run_on_ray = set(raggio_tests) - set(ray_tests)
        ray_column = (str(len(ray_passed)) if not not_run_on_ray else
                      f"{len(ray_passed)} of {len(ray_tests)} run" if ray_tests else "-")
        public = internal = 0
        for test_id in sorted((ray_passed | not_run_on_ray) - raggio_passed):
            entry = raggio_tests.get(test_id, {"outcome": "absent", "message": "not collected"})
            if entry["outcome"] in ("skipped", "xfailed"):
                continue
            area, reason = classification.classify(test_id, entry)
            internal += area == classification.INTERNAL
            public += area != classification.INTERNAL
            groups[(area, reason)].append(test_id.removeprefix("upstream/"))
        rows.append((name, len(raggio_tests), ray_column, len(ray_passed & raggio_passed),
                     len(raggio_passed), public, internal))
        for test_id, entry in ray_tests.items():
            if entry["outcome"] != "passed":
                message = _ANSI_COLOR.sub("", entry["message"])
                first_line = (message.splitlines() or [entry["outcome"]])[0]
                not_counted.append((test_id.removeprefix("upstream/"), first_line[:140]))
    return rows, groups, not_counted


HEADER = ("file", "tests", "passed on Ray", "of those, passed on raggio", "passed on raggio",
          "public failures", "internal failures")


def report(files: list[str], markdown: bool) -> None:
    """Print the per-file table, the failures by area and reason, then Ray's own failures."""
    rows, groups, not_counted = compare(files)
    if markdown:
        print("| " + " | ".join(HEADER) + " |")
        print("|---" * len(HEADER) + "|")
        for row in rows:
            print("| " + " | ".join(str(cell) for cell in row) + " |")
    else:
        print(f"{'file':26} {'tests':>5} {'Ray ok':>13} {'both ok':>7} {'raggio ok':>9} "
              f"{'public fail':>11} {'internal':>8}")
        for row in rows:
            print(f"{row[0]:26} {row[1]:5} {row[2]:>13} {row[3]:7} {row[4]:9} {row[5]:11} "
                  f"{row[6]:8}")
    last_area = None
    for (area, reason), test_ids in sorted(groups.items()):
        if markdown:
            if area != last_area:
                print(f"\n### {area}\n")
                last_area = area
            print(f"- {reason} ({len(test_ids)}): " + ", ".join(f"`{t}`" for t in test_ids))
        else:
            print(f"\n[{area}] {reason} ({len(test_ids)})")
            for test_id in test_ids:
                print(f"    {test_id}")
    print("\n### Not counted: these fail on Ray 2.60 too\n" if markdown else
          "\n[not counted] fail on Ray 2.60 too")
    for test_id, ray_failure in not_counted:
        print(f"- `{test_id}`: {ray_failure}" if markdown else f"    {test_id}: {ray_failure}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", nargs="+", default=FILES, help="test files (default: all)")
    parser.add_argument("--ray", action="store_true", help="run on Ray 2.60, not raggio")
    parser.add_argument("--ray-python", default=DEFAULT_RAY_PYTHON)
    parser.add_argument("--raggio", type=Path, default=REPO, metavar="CHECKOUT",
                        help="test the raggio of this checkout; its results go to its "
                             "bench/results/ray_tests/raggio (default: this one)")
    parser.add_argument("--timeout", type=int, default=None,
                        help="per-test timeout in s (default: 120, both sides)")
    parser.add_argument("--file-timeout", type=int, default=3600,
                        help="kill a whole file's run after this many s")
    parser.add_argument("--report", action="store_true", help="print the comparison")
    parser.add_argument("--markdown", action="store_true", help="--report as Markdown")
    parser.add_argument("--check", action="store_true", help="check upstream/ files")
    parser.add_argument("--install-deps", action="store_true",
                        help="install the side's test-only packages into .deps/")
    args = parser.parse_args()
    global RAGGIO_ROOT
    RAGGIO_ROOT = args.raggio.resolve()
    backend = "ray" if args.ray else "raggio"
    if args.check:
        return 0 if check_upstream() else 1
    if args.install_deps:
        install_deps(backend, args.ray_python)
        return 0
    if args.report:
        report(args.files, args.markdown)
        return 0
    timeout_s = args.timeout or 120  # one safety net for both: some tests take ~90 s
    for name in args.files:
        run_file(backend, name, timeout_s, args.file_timeout, args.ray_python)
    return 0


if __name__ == "__main__":
    sys.exit(main())
