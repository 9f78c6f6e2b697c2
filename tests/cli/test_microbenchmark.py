"""``raggio microbenchmark``: Ray's microbenchmark rows, run on a private cluster."""

import json
import os
import subprocess
import sys

_RAGGIO = os.path.join(os.path.dirname(sys.executable), "raggio")
RAGGIO = [_RAGGIO] if os.path.exists(_RAGGIO) else [sys.executable, "-m", "raggio"]


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
