"""Runtime envs as given by the user: Ray's types and errors, merging with the job's
default, what tells workers apart, and gitignore-style excludes (no cluster needed)."""

from __future__ import annotations

import pytest

import raggio as ray
from raggio.common.runtime_env import check_runtime_env, env_key, merge
from raggio.common.runtime_env_packages import exclude_matcher
from raggio.runtime_env import RuntimeEnv, RuntimeEnvConfig


@pytest.mark.parametrize("runtime_env, error, match", [
    ({"env_vars": {"A": 1}}, TypeError, "must be of type Dict"),
    ({"working_dir": 3}, TypeError, "working_dir must be a string or Path"),
    ({"py_modules": "mod"}, TypeError, "py_modules must be a List"),
    ({"pip": 3}, TypeError, r"runtime_env\['pip'\] must be of type"),
    ({"pip": {"packages": ["x"], "index": "y"}}, ValueError, "unknown keys"),
    ({"pip": "/no/such/requirements.txt"}, ValueError, "does not exist"),
    ({"config": {"setup_timeout_seconds": 0}}, ValueError, "-1 or larger than 0"),
    ({"config": {"setup_timeout_seconds": "10"}}, TypeError, "must be of type int"),
    ({"config": {"eager_install": "yes"}}, TypeError, "eager_install must be a boolean"),
    ({"excludes": "*.log"}, TypeError, "excludes must be a list"),
    ({"conda": {"dependencies": []}}, ValueError, "field 'conda' is refused"),
    ({"container": {"image": "x"}}, ValueError, "field 'container' is refused"),
    ({"workdir": "."}, ValueError, "'workdir' is refused: it is not a runtime_env field"),
])
def test_bad_runtime_envs_raise_rays_errors(runtime_env, error, match):
    with pytest.raises(error, match=match):
        check_runtime_env(runtime_env)


def test_supported_fields_pass(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("tinypkg\n")
    check_runtime_env({"env_vars": {"A": "1"}, "working_dir": str(tmp_path),
                       "py_modules": [str(tmp_path), pytest], "pip": str(requirements),
                       "uv": ["tinypkg"], "excludes": ["*.log"],
                       "config": {"setup_timeout_seconds": 5, "eager_install": False}})
    with pytest.raises(ValueError, match="'conda' is refused"):
        ray.remote(runtime_env={"conda": "env"})(lambda: None)


def test_merge_is_rays_child_fields_win_env_vars_merge():
    job = {"working_dir": "gcs://a.zip", "env_vars": {"A": "job", "B": "job"}, "pip": ["x"]}
    task = {"working_dir": "gcs://b.zip", "env_vars": {"B": "task"}}
    assert merge(job, task) == {"working_dir": "gcs://b.zip", "pip": ["x"],
                                "env_vars": {"A": "job", "B": "task"}}
    assert merge(job, None) == job and merge(None, task) == task


def test_env_key_covers_what_changes_a_worker():
    base = {"working_dir": "gcs://a.zip", "env_vars": {"A": "1", "B": "2"}}
    assert env_key(base) == env_key({"env_vars": {"B": "2", "A": "1"},
                                      "working_dir": "gcs://a.zip",
                                      "config": {"setup_timeout_seconds": 9}})
    for change in ({"working_dir": "gcs://b.zip"}, {"py_modules": ["gcs://c.zip"]},
                   {"pip": {"packages": ["x"]}}, {"env_vars": {"A": "2"}}):
        assert env_key(dict(base, **change)) != env_key(base)
    assert env_key({}) == env_key(None) == env_key({"config": {"eager_install": True}})


@pytest.mark.parametrize("pattern, path, is_dir, excluded", [
    ("*.log", "a.log", False, True), ("*.log", "deep/er/a.log", False, True),
    ("*.log", "a.log.txt", False, False), ("build/", "build", True, True),
    ("build/", "build", False, False), ("/data", "data", True, True),
    ("/data", "sub/data", True, False), ("sub/*.bin", "sub/x.bin", False, True),
    ("sub/*.bin", "sub/deeper/x.bin", False, False), ("**/cache", "a/b/cache", True, True),
    ("a/**/z.txt", "a/b/c/z.txt", False, True), ("file?.txt", "file1.txt", False, True),
])
def test_excludes_match_like_gitignore(pattern, path, is_dir, excluded):
    assert exclude_matcher([pattern])(path, is_dir) is excluded


def test_runtime_env_classes_are_checked_dicts():
    env = RuntimeEnv(env_vars={"A": "1"}, working_dir="gcs://_ray_pkg_0.zip",
                     config=RuntimeEnvConfig(setup_timeout_seconds=5, log_files=["x.log"]))
    assert env == {"env_vars": {"A": "1"}, "working_dir": "gcs://_ray_pkg_0.zip",
                   "config": {"setup_timeout_seconds": 5, "eager_install": True,
                              "log_files": ["x.log"]}}
    check_runtime_env(env)
    with pytest.raises(ValueError, match="'conda' is refused"):
        RuntimeEnv(conda={"dependencies": ["numpy"]})
    with pytest.raises(ValueError, match="-1 or larger than 0"):
        RuntimeEnvConfig(setup_timeout_seconds=0)
