"""``raggio microbenchmark``: Ray's microbenchmark rows, run on a private cluster."""

import json
import os
import subprocess
import sys

import psutil

from raggio import microbenchmark

_RAGGIO = os.path.join(os.path.dirname(sys.executable), "raggio")
RAGGIO = [_RAGGIO] if os.path.exists(_RAGGIO) else [sys.executable, "-m", "raggio"]
MiB = 1024**2


def run_microbenchmark(tmp_path, *args, **env):
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith("RAGGIO_") and k not in ("RAY_ADDRESS", "TESTS_TO_RUN")}
    environ.update(RAGGIO_TEMP_DIR=str(tmp_path), **env)
    return subprocess.run(RAGGIO + ["microbenchmark", "--quick", *args], capture_output=True,
                          text=True, env=environ, timeout=300)


def test_runs_the_chosen_rows_and_writes_them_as_json(tmp_path):
    out = tmp_path / "rows.json"
    result = run_microbenchmark(tmp_path, "--filter", "tasks sync", "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert "single client tasks sync" in result.stdout
    rows = json.loads(out.read_text())["rows"]
    assert [row["name"] for row in rows] == ["single client tasks sync"]
    assert rows[0]["error"] is None and rows[0]["value"] > 0
    assert rows[0]["unit"] == "ops/s"


def test_tests_to_run_selects_rows_as_in_ray(tmp_path):
    out = tmp_path / "rows.json"
    result = run_microbenchmark(tmp_path, "--json", str(out), TESTS_TO_RUN="1:1 actor calls sync")
    assert result.returncode == 0, result.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [row["name"] for row in rows] == ["1:1 actor calls sync"]


HOLD_SHM_FILE = """
import mmap, os, sys
path = sys.argv[1]
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
os.unlink(path)  # held by its descriptor and its mapping alone
os.posix_fallocate(fd, 0, 32 * 1024 * 1024)
mapping = mmap.mmap(fd, 32 * 1024 * 1024)
mapping[:8 * 1024 * 1024] = bytes(8 * 1024 * 1024)  # 8 MiB of it mapped, all 32 MiB held
print("ready", flush=True)
sys.stdin.read()
"""


def test_idle_memory_counts_dev_shm_pages_mapped_or_not_once():
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_SHM_FILE, f"/dev/shm/test-held-memory-{os.getpid()}"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "ready\n"
        process = psutil.Process(holder.pid)
        total_bytes, shm_bytes = microbenchmark.held_memory([process])
        pss_bytes = process.memory_full_info().pss  # counts the 8 MiB mapped, not the rest
    finally:
        holder.communicate("")
    assert shm_bytes == 32 * MiB
    assert pss_bytes - 8 * MiB + 31 * MiB < total_bytes < pss_bytes - 8 * MiB + 33 * MiB


def test_idle_memory_rows_count_the_arena(tmp_path):
    out = tmp_path / "rows.json"
    result = run_microbenchmark(tmp_path, "--filter", "idle memory", "--json", str(out))
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row["value"] for row in json.loads(out.read_text())["rows"]}
    total = rows["idle memory: total (PSS + /dev/shm)"]
    shm = rows["idle memory: /dev/shm held"]
    assert 0 <= shm < 64, "an idle cluster holds almost none of its arena"
    assert total > rows["idle memory: cluster (PSS + /dev/shm, without driver)"] > shm
