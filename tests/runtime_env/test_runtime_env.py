"""Runtime environments on one node: working_dir, py_modules, excludes, pip, the size
limit, refused fields and workers kept apart per env. ``look`` and ``Looker`` report what
a worker sees; ``test_two_nodes.py`` uses them on a second node."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import zipfile

import pytest

import raggio as ray
from raggio.common.runtime_env_packages import PACKAGE_MAX_BYTES
from raggio.exceptions import RuntimeEnvSetupError
from raggio.test_utils import missing_package_error


def _write(root, files: dict[str, str]) -> str:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(root)


def _wheel(directory, name: str = "tinypkg", version: str = "0.1") -> str:
    """A pure-Python wheel whose module holds VALUE = 42: all pip needs to install it."""
    dist = f"{name}-{version}.dist-info"
    files = {f"{name}/__init__.py": "VALUE = 42\n",
             f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: raggio-tests\n"
                              "Root-Is-Purelib: true\nTag: py3-none-any\n"}
    files[f"{dist}/RECORD"] = "".join(f"{p},,\n" for p in files) + f"{dist}/RECORD,,\n"
    path = os.path.join(directory, f"{name}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w") as archive:
        for relative, text in files.items():
            archive.writestr(relative, text)
    return path


@ray.remote
def look(*names):
    """The worker's cwd, pid, the files it sees and a module's value, as the task saw them."""
    import importlib
    module = importlib.import_module(names[0]) if names else None
    return {"cwd": os.getcwd(), "pid": os.getpid(),
            "files": sorted(os.path.relpath(os.path.join(d, f), os.getcwd())
                            for d, _, fs in os.walk(".") for f in fs),
            "value": getattr(module, "VALUE", None),
            "module_file": getattr(module, "__file__", None)}


@ray.remote
class Looker:
    def look(self, name):
        import importlib
        return os.getcwd(), importlib.import_module(name).VALUE


@pytest.fixture
def project(tmp_path):
    return _write(tmp_path / "project", {
        "mymod.py": "VALUE = 'from working_dir'\n", "data/input.txt": "hello",
        "run.sh": "#!/bin/sh\necho hi\n",
        "build/huge.bin": "x", "notes.log": "log", "pkg/keep.log.txt": "kept",
        ".git/HEAD": "ref", "pkg/__pycache__/m.pyc": "",  # left out by default, as in Ray
        "pkg/.gitignore": "*.tmp\n", "pkg/a.tmp": "", "b.tmp": "",  # .gitignore: pkg/ only
        ".rayignore": "/secret\n", "secret": "", "data/secret": ""})


def test_working_dir_task_and_actor(ray_start_regular_shared, project):
    os.chmod(os.path.join(project, "run.sh"), 0o755)
    env = {"working_dir": project, "excludes": ["*.log", "build/"]}
    seen = ray.get(look.options(runtime_env=env).remote("mymod"))
    assert seen["value"] == "from working_dir"
    assert seen["files"] == [".rayignore", "b.tmp", "data/input.txt", "data/secret",
                             "mymod.py", "pkg/.gitignore", "pkg/keep.log.txt", "run.sh"]
    assert "runtime_resources" in seen["cwd"] and seen["cwd"] != os.getcwd()
    actor = Looker.options(runtime_env=env).remote()
    assert ray.get(actor.look.remote("mymod")) == (seen["cwd"], "from working_dir")
    assert os.access(os.path.join(seen["cwd"], "run.sh"), os.X_OK)  # modes kept


def test_working_dir_from_a_local_zip(ray_start_regular_shared, tmp_path):
    path = tmp_path / "code.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("zipped.py", "VALUE = 'from a zip'\n")
    seen = ray.get(look.options(runtime_env={"working_dir": str(path)}).remote("zipped"))
    assert seen["value"] == "from a zip"


def test_py_modules_dir_and_file(ray_start_regular_shared, tmp_path):
    _write(tmp_path, {"shapes/__init__.py": "VALUE = 'shapes'\n",
                      "single.py": "VALUE = 'single'\n"})
    env = {"py_modules": [str(tmp_path / "shapes"), str(tmp_path / "single.py")]}
    assert ray.get(look.options(runtime_env=env).remote("shapes"))["value"] == "shapes"
    assert ray.get(look.options(runtime_env=env).remote("single"))["value"] == "single"
    with pytest.raises(ValueError, match="not a .py file.*'pip' field"):
        look.options(runtime_env={"py_modules": [_wheel(tmp_path)]}).remote()


def test_package_over_the_limit_names_size_limit_and_excludes(ray_start_regular_shared,
                                                             tmp_path):
    (tmp_path / "big.bin").write_bytes(os.urandom(PACKAGE_MAX_BYTES + 1024))
    with pytest.raises(ValueError, match=r"over raggio's limit of 100\.00MiB") as info:
        look.options(runtime_env={"working_dir": str(tmp_path)}).remote()
    assert "MiB or more once zipped" in str(info.value) and "'excludes'" in str(info.value)
    # The same directory with the big file left out goes through.
    env = {"working_dir": str(tmp_path), "excludes": ["*.bin"]}
    assert ray.get(look.options(runtime_env=env).remote())["files"] == []


def test_workers_with_different_envs_never_share_a_process(ray_start_regular_shared,
                                                           tmp_path):
    one = _write(tmp_path / "one", {"a.txt": "1"})
    two = _write(tmp_path / "two", {"b.txt": "2"})
    pids = {}
    for name, env in (("one", {"working_dir": one}), ("two", {"working_dir": two}),
                      ("vars", {"env_vars": {"RAGGIO_TEST_ENV": "x"}}), ("none", None)):
        pids[name] = {ray.get(look.options(runtime_env=env).remote())["pid"]
                      for _ in range(3)}
    for name, used in pids.items():
        others = set().union(*(p for other, p in pids.items() if other != name))
        assert not used & others, (name, pids)


def test_pip_env_built_once_and_reused(ray_start_regular_shared, tmp_path):
    env = {"pip": ["--no-index", _wheel(tmp_path)]}
    first = ray.get(look.options(runtime_env=env).remote("tinypkg"))
    assert first["value"] == 42
    # An actor has a worker of its own: a second worker of this env, set up from the cache.
    actor = Looker.options(runtime_env=env).remote()
    assert ray.get(actor.look.remote("tinypkg"))[1] == 42
    # One virtual environment for the one requirement set, no half-built one beside it.
    pip_dir, rest = first["module_file"].split(os.sep + "pip" + os.sep)
    assert os.listdir(pip_dir + os.sep + "pip") == [rest.split(os.sep)[0]]
    with pytest.raises(ModuleNotFoundError):  # outside the env, the package is not there
        ray.get(look.remote("tinypkg"))


def test_bad_pip_requirement_fails_with_pips_error(ray_start_regular_shared):
    env = {"pip": ["--no-index", "raggio-no-such-package==0.0.1"]}
    with pytest.raises(RuntimeEnvSetupError,
                       match=missing_package_error("raggio-no-such-package")):
        ray.get(look.options(runtime_env=env).remote())
    actor = Looker.options(runtime_env=env).remote()
    with pytest.raises(ray.exceptions.RayActorError,
                       match=missing_package_error("raggio-no-such-package")):
        ray.get(actor.look.remote("os"))
    assert ray.get(look.remote())["pid"] > 0  # the node carries on


@pytest.mark.parametrize("field", ["conda", "container", "image_uri"])
def test_unsupported_fields_are_refused(field):
    with pytest.raises(ValueError, match=f"runtime_env field '{field}' is refused.*raggio "
                                         "supports env_vars, working_dir, py_modules, pip"):
        look.options(runtime_env={field: "anything"})


def test_job_default_merged_with_a_tasks_and_inherited_by_nested_tasks(
        ray_start_regular_shared, project, tmp_path):
    """A second driver whose init() sets the job's env: its tasks, actors and their nested
    tasks run in it, and a task's own env_vars are added to it (Ray's merge)."""
    script = tmp_path / "driver.py"
    script.write_text(f"""
import os
import raggio as ray

ray.init(address={ray.get_runtime_context().gcs_address!r},
         runtime_env={{"working_dir": {project!r}, "env_vars": {{"A": "job"}}}})

@ray.remote
def inner():
    import mymod
    return mymod.VALUE

@ray.remote
def outer():
    return os.environ["A"], os.environ.get("B"), ray.get(inner.remote())

print(ray.get(outer.remote()))
print(ray.get(outer.options(runtime_env={{"env_vars": {{"B": "task"}}}}).remote()))
ray.shutdown()
""")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=90, cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["('job', None, 'from working_dir')",
                                       "('job', 'task', 'from working_dir')"]


def test_setup_timeout_stops_the_installer(ray_start_regular_shared):
    # An index that accepts connections and never answers: pip waits, the timeout does not.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        env = {"pip": ["--no-index", f"--find-links http://127.0.0.1:{silent.getsockname()[1]}/",
                       "tinypkg"], "config": {"setup_timeout_seconds": 1}}
        with pytest.raises(RuntimeEnvSetupError, match="took more than 1 s"):
            ray.get(look.options(runtime_env=env).remote())
