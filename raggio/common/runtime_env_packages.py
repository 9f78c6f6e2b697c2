"""Runtime-env packages: a local directory or file zipped, named by its content, unpacked.

A ``working_dir`` or ``py_modules`` entry travels as a zip stored in the
control store's KV under Ray's URI, ``gcs://_ray_pkg_<hash>.zip``, where the
hash covers every file's relative path and bytes: equal contents upload once.
The driver packs (``pack``), the dashboard's package routes store what Ray's
JobSubmissionClient uploads, and each node unpacks once per URI
(``unpack``) into its cache. Files matching ``excludes`` (gitignore-style
patterns, relative to the packed directory), or the patterns of a
``.gitignore`` or ``.rayignore`` above them, are left out.

``ready_to_travel`` turns a runtime env as a user wrote it into what is sent:
local packages packed and stored (into the KV by a driver,
``core/runtime_env_upload.py``; through the dashboard's package routes by
``JobSubmissionClient``), their URIs in their place.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import zipfile
from typing import Callable

from raggio.common.runtime_env import is_uri, module_path, normalized_packages

#: Ray's prefix for the packages it names by content.
PACKAGE_PREFIX = "_ray_pkg_"
#: The largest package raggio uploads: the 100 MiB Ray's docs give. One package is one KV
#: value, and this stays well within every backend's value limit (SQLite: 1 GB a blob,
#: Redis: 512 MB a string) and the RPC's 2 GiB frame, so none is split into chunks.
PACKAGE_MAX_BYTES = 100 * 1024 * 1024
#: Files whose gitignore-style patterns Ray applies to the folder they are in, and below.
IGNORE_FILES = (".gitignore", ".rayignore")
#: What Ray 2.60 leaves out of every working_dir, besides the user's ``excludes``.
WORKING_DIR_DEFAULT_EXCLUDES = [".git", ".venv", "venv", "__pycache__"]
_READ_BLOCK_BYTES = 1 << 20


def _mib(size_bytes: int) -> str:
    return f"{size_bytes / (1024 * 1024):.2f}MiB"


def exclude_matcher(patterns: list[str]) -> Callable[[str, bool], bool]:
    """A test of (path relative to the packed directory, is a directory) against
    gitignore-style patterns: ``*.log``, ``build/``, ``/data``, ``**/cache``."""
    regexes = []
    for pattern in patterns:
        pattern = pattern.strip()
        if not pattern or pattern.startswith("#"):
            continue
        dir_only = pattern.endswith("/")
        pattern = pattern.rstrip("/")
        anchored = "/" in pattern
        body = _translate(pattern.lstrip("/"))
        regexes.append((re.compile(("^" if anchored else "^(?:.*/)?") + body + "$"), dir_only))

    def excluded(relative_path: str, is_dir: bool) -> bool:
        return any(regex.match(relative_path) and (is_dir or not dir_only)
                   for regex, dir_only in regexes)
    return excluded


def _translate(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


def _files(root: str, excludes: list[str]) -> list[tuple[str, str]]:
    """(absolute path, path relative to ``root``) of every file kept, sorted. Besides
    ``excludes``, the patterns of each folder's ``.gitignore`` and ``.rayignore`` apply
    below that folder, as Ray reads them."""
    #: folder (relative, "" or ending in "/") -> the (folder, matcher) pairs that apply in it
    rules: dict[str, list] = {"": [("", exclude_matcher(excludes))]}
    kept = []
    for directory, dirnames, filenames in os.walk(root):
        relative_dir = os.path.relpath(directory, root)
        relative_dir = "" if relative_dir == "." else relative_dir + "/"
        active = rules.pop(relative_dir)
        patterns = []
        for name in IGNORE_FILES:
            if name in filenames:
                with open(os.path.join(directory, name), errors="replace") as f:
                    patterns.extend(f.read().splitlines())
        if patterns:
            active = active + [(relative_dir, exclude_matcher(patterns))]

        def excluded(path: str, is_dir: bool) -> bool:
            return any(matches(path[len(base):], is_dir) for base, matches in active)
        dirnames[:] = [d for d in dirnames if not excluded(relative_dir + d, True)]
        rules.update((relative_dir + d + "/", active) for d in dirnames)
        kept.extend((os.path.join(directory, name), relative_dir + name)
                    for name in filenames if not excluded(relative_dir + name, False))
    return sorted(kept, key=lambda item: item[1])


def pack(path: str, excludes: list[str], *, include_parent_dir: bool) -> tuple[str, bytes]:
    """Zip a directory (or one file) and name it by content: ``(uri, zip bytes)``.

    ``include_parent_dir`` keeps the directory's own name at the top of the zip (a
    py_modules entry, so that ``import name`` works with the unpacked folder on sys.path);
    a working_dir is zipped from inside.

    Raises:
        ValueError: ``path`` is not there, or the zip is over ``PACKAGE_MAX_BYTES`` (the
            message names its size, the limit and ``excludes``).
    """
    path = os.path.abspath(path)
    if os.path.isfile(path):
        files = [(path, os.path.basename(path))]
    elif os.path.isdir(path):
        prefix = os.path.basename(path) + "/" if include_parent_dir else ""
        files = [(full, prefix + relative) for full, relative in _files(path, excludes)]
    else:
        raise ValueError(f"{path} is not a directory or a file: there is nothing to upload.")
    digest = hashlib.sha1()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for full, relative in files:
            digest.update(relative.encode() + b"\0")
            # from_file keeps the file's mode (an executable script stays one), as Ray's does
            info = zipfile.ZipInfo.from_file(full, relative)
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(full, "rb") as source, archive.open(info, "w") as target:
                while block := source.read(_READ_BLOCK_BYTES):
                    digest.update(block)
                    target.write(block)
            if buffer.tell() > PACKAGE_MAX_BYTES:
                break
    data = buffer.getvalue()
    _check_size(path, len(data))
    return f"gcs://{PACKAGE_PREFIX}{digest.hexdigest()[:32]}.zip", data


def read_zip(path: str) -> tuple[str, bytes]:
    """A local zip file given as a working_dir, as it is: ``(uri, bytes)``, named by its
    bytes' hash. Raises ValueError past ``PACKAGE_MAX_BYTES``, as ``pack``."""
    _check_size(path, os.path.getsize(path))
    with open(path, "rb") as f:
        data = f.read()
    return f"gcs://{PACKAGE_PREFIX}{hashlib.sha1(data).hexdigest()[:32]}.zip", data


def _check_size(path: str, size_bytes: int) -> None:
    if size_bytes > PACKAGE_MAX_BYTES:
        raise ValueError(
            f"The package of {path} is {_mib(size_bytes)} or more once zipped, over raggio's "
            f"limit of {_mib(PACKAGE_MAX_BYTES)}. Leave large files out with the runtime_env's "
            "'excludes' (gitignore-style patterns such as ['*.bin', 'data/']), or keep them "
            "somewhere every node can read.")


def package_name(uri: str) -> str:
    """The folder a package unpacks to: its URI's last part without ``.zip``."""
    return uri.rstrip("/").rsplit("/", 1)[-1].removesuffix(".zip")


def unpack(data: bytes, target: str) -> None:
    """Extract a package into ``target``, atomically: into a sibling folder first, then
    renamed, so that a worker never sees half of it and two setups racing (two node
    managers on one machine share the cache) both end with one whole copy."""
    if os.path.isdir(target):
        return
    partial = f"{target}.partial-{os.getpid()}-{os.urandom(4).hex()}"
    os.makedirs(partial)  # an empty package extracts nothing, yet is a folder
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(partial)
        for info in archive.infolist():
            mode = (info.external_attr >> 16) & 0o777
            if mode and not info.is_dir():
                os.chmod(os.path.join(partial, info.filename), mode)
    try:
        os.rename(partial, target)
    except OSError:  # another setup got there first
        shutil.rmtree(partial, ignore_errors=True)
        if not os.path.isdir(target):
            raise


def ready_to_travel(runtime_env: dict, store: Callable[[str, bytes], None]) -> dict:
    """``runtime_env`` as it travels: each local ``working_dir`` (a directory, or a
    ``.zip`` taken as it is) and ``py_modules`` entry packed and given to ``store(uri,
    data)`` (which keeps it unless it has it), its URI in its place; ``pip``/``uv``
    requirement files read; ``excludes`` (applied) and None fields left out.

    Raises:
        ValueError: a local path that is not there, or a package over the size limit.
    """
    prepared = {name: value for name, value in runtime_env.items()
                if value is not None and name != "excludes"}
    excludes = runtime_env.get("excludes") or []

    def uploaded(path: str, excludes: list[str], include_parent_dir: bool) -> str:
        if is_uri(path):
            return path
        if path.endswith(".zip") and os.path.isfile(path) and not include_parent_dir:
            uri, data = read_zip(path)  # a working_dir given as a zip: its contents
        else:
            uri, data = pack(path, excludes, include_parent_dir=include_parent_dir)
        store(uri, data)
        return uri
    if prepared.get("working_dir"):
        prepared["working_dir"] = uploaded(str(prepared["working_dir"]),
                                           WORKING_DIR_DEFAULT_EXCLUDES + excludes, False)
    if prepared.get("py_modules"):
        prepared["py_modules"] = [uploaded(_py_module(module), excludes, True)
                                  for module in prepared["py_modules"]]
    for field in ("pip", "uv"):
        if prepared.get(field):
            prepared[field] = normalized_packages(prepared[field])
    return prepared


def _py_module(module) -> str:
    """A py_modules entry's path or URI; a local file must be a ``.py`` file."""
    path = module_path(module)
    if not is_uri(path) and os.path.isfile(path) and not path.endswith(".py"):
        raise ValueError(f"py_modules entry {path} is a file but not a .py file; raggio "
                         "installs wheels and other packages through the 'pip' field.")
    return path
