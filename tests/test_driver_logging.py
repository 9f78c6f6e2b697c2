"""What a driver prints: raggio's own log level, and worker output deduplicated as in Ray."""

import os
import subprocess
import sys

import pytest

import raggio as ray

DRIVER = """
import logging, sys, time
import raggio as ray
ray.init(num_cpus=3, logging_level=sys.argv[1])

@ray.remote(num_cpus=0)
class Chatty:
    def say(self, i):
        print("the same words from every actor")
        print(f"step {i} of the work")
        return i

    def count(self):
        for i in range(3):
            print(f"hello-from-task-{i}")

actors = [Chatty.remote() for _ in range(3)]  # three processes
assert ray.get([a.say.remote(i) for i, a in enumerate(actors)]) == [0, 1, 2]
ray.get(actors[0].count.remote())  # one process, three lines of one pattern
time.sleep(float(sys.argv[2]))
print("root logger level:", logging.getLogger().level)
ray.shutdown()
"""


@pytest.fixture(autouse=True)
def own_temp_dir(tmp_path, monkeypatch):
    # The drivers must start their own cluster, never join one another test left running.
    monkeypatch.setenv("RAGGIO_TEMP_DIR", str(tmp_path))


def run_driver(level="INFO", wait_s=5.0, **env):
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith("RAGGIO_") or k == "RAGGIO_TEMP_DIR"}
    environ.pop("RAY_ADDRESS", None)
    environ.update(RAGGIO_DEDUP_LOGS_WINDOW_S="4", **env)
    return subprocess.run([sys.executable, "-c", DRIVER, level, str(wait_s)],
                          capture_output=True, text=True, env=environ, timeout=120)


def test_lines_from_several_processes_print_once_then_with_their_count():
    out = run_driver().stdout.splitlines()
    same = [line for line in out if "the same words from every actor" in line]
    assert len(same) == 2, out
    assert same[0].endswith(") the same words from every actor")
    assert "the same words from every actor [repeated 2x across cluster]" in same[1]
    assert "RAY_DEDUP_LOGS=0" in same[1]  # said once, with the first folded line
    steps = [line for line in out if "of the work" in line]
    assert len(steps) == 2 and steps[1].endswith("[repeated 2x across cluster]"), out


def test_lines_from_one_process_all_print():
    out = run_driver().stdout
    for i in range(3):
        assert f") hello-from-task-{i}\n" in out, out
    assert "hello-from-task-2 [repeated" not in out


def test_ray_dedup_logs_0_prints_every_line():
    out = run_driver(wait_s=3, RAY_DEDUP_LOGS="0").stdout
    assert out.count("the same words from every actor") == 3
    assert "repeated" not in out


def test_the_skip_and_allow_regexes():
    out = run_driver(RAY_DEDUP_LOGS_SKIP_REGEX="of the work",
                     RAY_DEDUP_LOGS_ALLOW_REGEX="same words").stdout
    assert "of the work" not in out
    assert out.count("the same words from every actor") == 3 and "repeated" not in out


def test_logging_level_sets_raggios_loggers_only():
    debug = run_driver("DEBUG", wait_s=0)
    assert debug.returncode == 0, debug.stderr
    assert "\tDEBUG api.py" in debug.stderr and "connected: job" in debug.stderr, debug.stderr
    assert "root logger level: 30" in debug.stdout  # the application's logging is untouched
    quiet = run_driver("INFO", wait_s=0)
    assert quiet.returncode == 0, quiet.stderr
    assert "\tDEBUG " not in quiet.stderr, quiet.stderr


def test_an_unknown_logging_level_is_refused(shutdown_only):
    with pytest.raises(ValueError, match="use one of DEBUG, INFO"):
        ray.init(logging_level="LOUD")


LOGGING_DRIVER = """
import sys
import raggio as ray
ray.init(num_cpus=1, logging_level="DEBUG", logging_format="FMT| %(message)s",
         configure_logging=sys.argv[1] == "1")
ray.shutdown()
"""


def test_logging_format_and_configure_logging():
    def run(configure):
        environ = {k: v for k, v in os.environ.items()
                   if not k.startswith("RAGGIO_") or k == "RAGGIO_TEMP_DIR"}
        environ.pop("RAY_ADDRESS", None)
        return subprocess.run([sys.executable, "-c", LOGGING_DRIVER, configure],
                              capture_output=True, text=True, env=environ, timeout=120)

    formatted = run("1")
    assert formatted.returncode == 0, formatted.stderr
    assert "FMT| connected: job" in formatted.stderr
    left_alone = run("0")
    assert left_alone.returncode == 0, left_alone.stderr
    assert "connected: job" not in left_alone.stderr
