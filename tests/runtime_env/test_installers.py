"""Which installer builds a runtime env's ``pip`` environment: uv where it is installed, else
pip (this interpreter's, ``--python`` the new virtual environment)."""

from __future__ import annotations

import os
import shutil
import sys

import pytest

import raggio as ray


def _installed_by(wheel_dir) -> str:
    """The installer that put a wheel into a ``pip`` environment, as the package's
    ``INSTALLER`` file records it."""
    from test_runtime_env import _wheel, look  # the wheel and the probe of the env tests
    env = {"pip": ["--no-index", _wheel(wheel_dir)]}
    module_file = ray.get(look.options(runtime_env=env).remote("tinypkg"))["module_file"]
    site_packages = os.path.dirname(os.path.dirname(module_file))
    with open(os.path.join(site_packages, "tinypkg-0.1.dist-info", "INSTALLER")) as f:
        return f.read().strip()


def test_uv_builds_the_environment_when_it_is_installed(shutdown_only, tmp_path, monkeypatch):
    # pip puts uv's command beside this interpreter (the test extra installs it there).
    scripts = os.path.dirname(sys.executable)
    monkeypatch.setenv("PATH", scripts + os.pathsep + os.environ.get("PATH", ""))
    if shutil.which("uv") is None:
        pytest.skip(f"uv is not installed (pip install uv puts it in {scripts})")
    ray.init(num_cpus=1)
    assert _installed_by(tmp_path) == "uv"


def test_pip_builds_it_without_uv(shutdown_only, tmp_path, monkeypatch):
    # The node looks uv up on its PATH: one without this interpreter's directory has none.
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    if shutil.which("uv"):
        pytest.skip("uv is installed in /usr/bin or /bin")
    ray.init(num_cpus=1)
    assert _installed_by(tmp_path) == "pip"
