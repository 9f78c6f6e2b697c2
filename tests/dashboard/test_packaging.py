"""The web UI ships in the wheel: every file under raggio/dashboard/static/ is in it, at any
depth (a user who installs raggio runs the dashboard with no build step and no network)."""

import pathlib
import shutil
import subprocess
import sys
import zipfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
STATIC = ROOT / "raggio" / "dashboard" / "static"


def test_every_static_file_is_in_the_wheel(tmp_path):
    # Built from a copy, so that no build/ folder left in the checkout can supply the files.
    source = tmp_path / "source"
    shutil.copytree(ROOT / "raggio", source / "raggio",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                            "--no-build-isolation", "--wheel-dir", str(tmp_path), str(source)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = tmp_path.glob("raggio-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
    expected = {path.relative_to(ROOT).as_posix() for path in STATIC.rglob("*")
                if path.is_file()}
    assert expected and expected <= shipped, sorted(expected - shipped)
