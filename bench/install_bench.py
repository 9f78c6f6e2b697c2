"""Install benchmarks: how long `pip install` takes and how much it puts on disk.

Usage: python3 bench/install_bench.py --backend ray|raggio [--json OUT]

Each backend is installed into fresh virtual environments (`python3 -m venv`, with the
pip that venv bundles, never upgraded, so both sides use the same pip) under one temp dir
that is removed afterwards. raggio is installed with `pip install <repo root>`, a regular
(non-editable) install that builds its wheel from source; Ray with
`pip install "ray[default]==2.60.0"`. Both get `--disable-pip-version-check -q`.

pip runs with PIP_CONFIG_FILE=/dev/null and without the machine's other PIP_* settings
(find-links, extra index URLs, constraints), only PIP_CERT and PIP_DEFAULT_TIMEOUT kept,
so packages come from PyPI as they would for a user, not from a local wheel mirror.
raggio's tree is first copied (the files git tracks plus untracked, non-ignored ones, as
on disk) to the temp dir, so a stale build/ or *.egg-info in the working tree can neither
leak into the wheel nor be written by the build.

Rows (the same JSON shape as microbenchmark.py, so compare.py prints both):
- install time, empty pip cache: wall time of the `pip install` command (not the venv
  creation) with PIP_CACHE_DIR pointed at a new, empty dir, so every download (and for
  raggio the build dependencies, setuptools) counts.
- install time, warm pip cache: the same install into a second fresh venv, reusing the
  cache the first install filled (no downloads; raggio's own wheel is still built, as pip
  does not cache wheels built from a local directory).
- installed size: bytes of files (apparent sizes, symlinks not followed, pip's compiled
  .pyc included) in the first venv's site-packages after the install, minus those of an
  empty venv's site-packages: what the install added.
- packages installed: distributions (.dist-info / .egg-info dirs in site-packages, by
  normalized name) present after the install and not in the empty venv: the backend and
  all its dependencies.
A row that fails reports the error and the run goes on; the exit status is 1 if any did.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

RAY_REQUIREMENT = "ray[default]==2.60.0"
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PIP_FLAGS = ["--disable-pip-version-check", "-q"]
KEPT_PIP_VARIABLES = ("PIP_CERT", "PIP_DEFAULT_TIMEOUT")
INSTALL_TIMEOUT_S = 1800


def row(name, unit, value, lower_is_better, error=None):
    return {"name": name, "unit": unit, "value": value, "error": error,
            "lower_is_better": lower_is_better}


def pip_env(root: str, cache_dir: str) -> dict:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("PIP_") or key in KEPT_PIP_VARIABLES}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_CACHE_DIR=cache_dir, PIP_NO_INPUT="1",
               TMPDIR=os.path.join(root, "tmp"))
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    return env


def make_venv(path: str) -> str:
    """Creates a venv with the bundled pip; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", path], check=True, capture_output=True,
                   text=True)
    return os.path.join(path, "bin", "python")


def site_packages(python: str) -> str:
    return subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], check=True, capture_output=True,
                          text=True).stdout.strip()


def tree_bytes(path: str) -> int:
    total = 0
    for directory, _, files in os.walk(path):
        for name in files:
            total += os.lstat(os.path.join(directory, name)).st_size
    return total


def distributions(path: str) -> set[str]:
    names = set()
    for entry in os.listdir(path):
        for suffix in (".dist-info", ".egg-info"):
            if entry.endswith(suffix):
                name = entry[:-len(suffix)].split("-")[0]
                names.add(re.sub(r"[-_.]+", "-", name).lower())
    return names


def copy_source_tree(destination: str) -> str:
    """Copies what a clone of the repo would hold (as now on disk) to destination."""
    listing = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                              "--exclude-standard"], cwd=REPO_ROOT, check=True,
                             capture_output=True, text=True).stdout
    for relative in filter(None, listing.split("\0")):
        source = os.path.join(REPO_ROOT, relative)
        if not os.path.isfile(source):  # deleted in the working tree
            continue
        target = os.path.join(destination, relative)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(source, target)
    return destination


def pip_install(python: str, target: str, env: dict) -> float:
    command = [python, "-m", "pip", "install", *PIP_FLAGS, target]
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True,
                            timeout=INSTALL_TIMEOUT_S)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip().splitlines()
        raise RuntimeError(f"pip install exited {result.returncode}: "
                           + " | ".join(output[-3:]))
    return elapsed


def installed_version(python: str, backend: str):
    result = subprocess.run([python, "-c", "import importlib.metadata as m; "
                             f"print(m.version({backend!r}))"], capture_output=True, text=True)
    return result.stdout.strip() or None


def error_text(exc: Exception) -> str:
    if isinstance(exc, subprocess.CalledProcessError):
        detail = (exc.stderr or exc.stdout or "").strip().splitlines()[-1:]
        return f"{exc.cmd[:3]} exited {exc.returncode}: {' '.join(detail)}"
    return f"{type(exc).__name__}: {exc}"


def measure(backend: str) -> tuple[list[dict], dict]:
    root = tempfile.mkdtemp(prefix=f"install-bench-{backend}-")
    info = {"version": None, "pip": None}
    rows = {}
    try:
        os.makedirs(os.path.join(root, "tmp"))
        cache_dir = os.path.join(root, "pip-cache")
        os.makedirs(cache_dir)
        env = pip_env(root, cache_dir)
        target = (copy_source_tree(os.path.join(root, "src")) if backend == "raggio"
                  else RAY_REQUIREMENT)

        empty_python = make_venv(os.path.join(root, "empty"))
        empty_site = site_packages(empty_python)
        empty_bytes, empty_dists = tree_bytes(empty_site), distributions(empty_site)
        info["pip"] = installed_version(empty_python, "pip")

        try:
            python = make_venv(os.path.join(root, "cold"))
            rows["cold"] = row("install time, empty pip cache", "s",
                               pip_install(python, target, env), True)
            site = site_packages(python)
            rows["size"] = row("installed size", "MiB",
                               (tree_bytes(site) - empty_bytes) / 2**20, True)
            rows["packages"] = row("packages installed", "count",
                                   len(distributions(site) - empty_dists), True)
            info["version"] = installed_version(python, backend)
        except Exception as exc:  # report and go on, as cluster_bench.py does
            rows["cold"] = row("install time, empty pip cache", "s", 0.0, True,
                               error_text(exc))

        try:
            python = make_venv(os.path.join(root, "warm"))
            rows["warm"] = row("install time, warm pip cache", "s",
                               pip_install(python, target, env), True)
        except Exception as exc:
            rows["warm"] = row("install time, warm pip cache", "s", 0.0, True,
                               error_text(exc))
    except Exception as exc:
        rows.setdefault("cold", row("install time, empty pip cache", "s", 0.0, True,
                                    error_text(exc)))
        rows.setdefault("warm", row("install time, warm pip cache", "s", 0.0, True,
                                    error_text(exc)))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    cold_error = rows["cold"]["error"] or "not measured: the install failed"
    rows.setdefault("size", row("installed size", "MiB", 0.0, True, cold_error))
    rows.setdefault("packages", row("packages installed", "count", 0, True, cold_error))
    return [rows[key] for key in ("cold", "warm", "size", "packages")], info


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["ray", "raggio"], required=True)
    parser.add_argument("--json")
    args = parser.parse_args()
    load = os.getloadavg()[0]  # other work on the machine slows the installs
    rows, info = measure(args.backend)
    print(f"{args.backend} {info['version'] or '?'} with pip {info['pip'] or '?'}, "
          f"Python {sys.version.split()[0]}; load average before: {load:.2f} "
          f"on {os.cpu_count()} CPUs")
    for r in rows:
        number = f"{r['value']:.0f}" if r["unit"] == "count" else f"{r['value']:.3f}"
        value = "ERROR " + r["error"] if r["error"] else f"{number} {r['unit']}"
        print(f"{r['name']:<48} {value}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"backend": args.backend, "version": info["version"], "quick": False,
                       "pip": info["pip"], "rows": rows}, f, indent=1)
    sys.exit(1 if any(r["error"] for r in rows) else 0)


if __name__ == "__main__":
    main()
