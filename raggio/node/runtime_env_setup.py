"""Setting runtime environments up on a node, before a worker for one starts.

Owns the node's cache under ``<session dir>/runtime_resources/``: packages
(``working_dir``, ``py_modules``) fetched from the control store's KV and
unpacked once per URI, and virtual environments (``pip``, ``uv``) built once
per requirement set. ``prepare`` returns what the worker applies after the
zygote forks it (``core/worker_main.py``): its cwd, the entries to put first
on ``sys.path``, and environment variables. The node manager calls it for
each worker it starts with a non-empty runtime env; a failure raises
``RuntimeEnvSetupError`` with the installer's own output, which the node
manager sends to the requests waiting for that env.

Nothing here blocks the node's event loop: unpacking runs in a thread,
installers in asyncio subprocesses. Each cache entry is built under a
temporary name and renamed into place, so that concurrent setups (two node
managers on one machine share the session directory) each see a whole one.
"""

from __future__ import annotations

import asyncio
import collections
import glob
import os
import shutil
import sys
from typing import Awaitable, Callable

from raggio.common.runtime_env import (normalized_packages, requirements_hash,
                                       setup_timeout_s)
from raggio.common.runtime_env_packages import package_name, unpack
from raggio.exceptions import RuntimeEnvSetupError

#: How much of an installer's output a failed setup reports (its end holds the error).
_OUTPUT_TAIL_CHARS = 4000


class RuntimeEnvSetup:
    """See the module docstring. ``fetch(uri)`` returns a package's bytes from the control
    store's KV, or None where it was never uploaded."""

    def __init__(self, root: str, fetch: Callable[[str], Awaitable[bytes | None]]):
        self.root = root
        self._fetch = fetch
        #: one lock per cache entry: setups of the same entry in this process wait for one
        self._locks: dict[str, asyncio.Lock] = collections.defaultdict(asyncio.Lock)

    async def prepare(self, runtime_env: dict) -> dict:
        """Set ``runtime_env`` up (or find it in the cache): ``{"cwd", "sys_path",
        "env_vars"}`` for the worker.

        Raises:
            RuntimeEnvSetupError: a package is missing, an install failed, or the whole
                setup took longer than ``config.setup_timeout_seconds``.
        """
        timeout_s = setup_timeout_s(runtime_env)
        try:
            return await asyncio.wait_for(self._prepare(runtime_env), timeout_s)
        except asyncio.TimeoutError:
            raise RuntimeEnvSetupError(
                f"The runtime_env's setup took more than {timeout_s:g} s "
                "(config's setup_timeout_seconds) and was stopped.") from None
        except RuntimeEnvSetupError:
            raise
        except Exception as exc:  # a full disk, a bad zip, the control store gone: any
            # failure must reach the requests waiting for this env, or they wait forever
            raise RuntimeEnvSetupError(f"{type(exc).__name__}: {exc}") from exc

    async def _prepare(self, runtime_env: dict) -> dict:
        env_vars = dict(runtime_env.get("env_vars") or {})
        site_packages, code = [], []
        for field in ("pip", "uv"):
            if runtime_env.get(field):
                venv = await self._virtualenv(field, normalized_packages(runtime_env[field]))
                site_packages.append(_site_packages(venv))
                env_vars["VIRTUAL_ENV"] = venv
                env_vars["PATH"] = os.path.join(venv, "bin") + os.pathsep + os.environ["PATH"]
        cwd = None
        if runtime_env.get("working_dir"):
            cwd = await self._package("working_dir_files", runtime_env["working_dir"])
            code.append(cwd)
        for uri in runtime_env.get("py_modules") or ():
            code.append(await self._package("py_modules_files", uri))
        if code:  # for the Python processes a task starts, as Ray does
            inherited = env_vars.get("PYTHONPATH") or os.environ.get("PYTHONPATH")
            env_vars["PYTHONPATH"] = os.pathsep.join(code + ([inherited] if inherited else []))
        return {"cwd": cwd, "sys_path": site_packages + code, "env_vars": env_vars}

    async def _package(self, kind: str, uri: str) -> str:
        """The folder ``uri`` unpacks to, fetched and unpacked the first time."""
        target = os.path.join(self.root, kind, package_name(uri))
        if os.path.isdir(target):
            return target
        async with self._locks[target]:
            if not os.path.isdir(target):
                if not uri.startswith("gcs://"):
                    raise RuntimeEnvSetupError(
                        f"{uri}: raggio fetches packages from the control store only "
                        "(gcs://...), uploaded by the driver or the dashboard's package route.")
                data = await self._fetch(uri)
                if data is None:
                    raise RuntimeEnvSetupError(f"Package {uri} does not exist in the control "
                                               "store: upload it first.")
                await asyncio.to_thread(unpack, data, target)
        return target

    async def _virtualenv(self, field: str, packages: dict) -> str:
        """A virtual environment with ``packages`` installed, built once per requirement set."""
        target = os.path.join(self.root, field, requirements_hash(packages))
        if os.path.isdir(target):
            return target
        async with self._locks[target]:
            if os.path.isdir(target):
                return target
            partial = f"{target}.partial-{os.getpid()}-{os.urandom(4).hex()}"
            try:
                await self._build_virtualenv(partial, packages)
                try:
                    os.rename(partial, target)
                except OSError:  # another node manager on this machine built it first
                    if not os.path.isdir(target):
                        raise
            finally:
                shutil.rmtree(partial, ignore_errors=True)
        return target

    async def _build_virtualenv(self, path: str, packages: dict) -> None:
        pip_version = packages.get("pip_version")
        # --without-pip saves ~3 s of ensurepip a venv: the installer below comes from
        # outside (uv, or this interpreter's pip with --python), unless a pip version is asked.
        await _run("venv", [sys.executable, "-m", "venv", "--system-site-packages"]
                   + ([] if pip_version else ["--without-pip"]) + [path])
        python = os.path.join(path, "bin", "python")
        requirements = os.path.join(path, "requirements.txt")
        with open(requirements, "w") as f:
            f.write("\n".join(packages["packages"]) + "\n")
        if pip_version:
            await _run("pip", [python, "-m", "pip", "install", "--disable-pip-version-check",
                               f"pip{pip_version}"])
            pip = [python, "-m", "pip"]
        else:
            pip = [sys.executable, "-m", "pip", "--python", python]
        uv = shutil.which("uv")
        if uv and not pip_version:
            await _run("uv", [uv, "pip", "install", "--python", python, "-r", requirements]
                       + list(packages.get("uv_pip_install_options") or ()))
        else:
            await _run("pip", pip + ["install", "--disable-pip-version-check", "--no-input",
                                     "-r", requirements])
        if packages.get("pip_check") or packages.get("uv_check"):
            await _run("pip check", pip + ["check"])


def _site_packages(venv: str) -> str:
    """The venv's site-packages. Looked for, not derived from this interpreter's scheme:
    Debian's Python installs to dist-packages, but the venvs it makes use site-packages."""
    found = glob.glob(os.path.join(venv, "lib", "python*", "site-packages"))
    if not found:
        raise RuntimeEnvSetupError(f"The virtual environment {venv} has no site-packages.")
    return found[0]


async def _run(what: str, command: list[str]) -> None:
    """Run an installer; its own output is the error when it fails. Killed when the setup
    is cancelled (its timeout)."""
    process = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    try:
        output, _ = await process.communicate()
    except asyncio.CancelledError:
        process.kill()
        await process.wait()
        raise
    if process.returncode != 0:
        text = output.decode(errors="replace").strip()[-_OUTPUT_TAIL_CHARS:]
        raise RuntimeEnvSetupError(f"{what} failed (exit code {process.returncode}) running "
                                   f"{' '.join(command)}:\n{text}")
