"""The packages keep their layers: `lint-imports` finds no import that points up.

The contracts are in .importlinter and drawn in docs/ARCHITECTURE.md ("Layers"):
rpc at the bottom, the neutral ``raggio.common`` above it, then ``gcs``, ``node``
and ``core``, which never import each other, then the public API and the CLI.
"""

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _lint_imports() -> str:
    beside_python = pathlib.Path(sys.executable).with_name("lint-imports")
    found = str(beside_python) if beside_python.exists() else shutil.which("lint-imports")
    if found is None:
        pytest.fail("lint-imports is missing: install the test extra, "
                    "`pip install -e '.[test]'`.")
    return found


def test_imports_point_down_the_layers():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    result = subprocess.run([_lint_imports(), "--no-cache"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (
        "An import breaks the layers in .importlinter (see docs/ARCHITECTURE.md, "
        "\"Layers\"):\n" + result.stdout + result.stderr)
