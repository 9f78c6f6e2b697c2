"""Ray's package routes: where a job's ``working_dir`` and ``py_modules`` are uploaded.

Ray's ``JobSubmissionClient`` zips a local ``working_dir`` or ``py_modules``
directory, names it by content (``gcs://_ray_pkg_<hash>.zip``), asks
``GET /api/packages/{protocol}/{package_name}`` whether the cluster has it
(200, or 404) and if not sends it with ``PUT`` to the same path. The package
goes into the control store's KV under its URI, the same place a driver's
``init(runtime_env=...)`` puts it (``core/runtime_env_upload.py``), where
node managers fetch it from. Only the ``gcs`` protocol is stored here: other
URIs name places raggio does not fetch from.
"""

from __future__ import annotations

from aiohttp import web

from raggio.common.runtime_env_packages import PACKAGE_MAX_BYTES
from raggio.dashboard.routing import STORE

#: Uploads go to the control store in one request; its KV writes a value at once.
UPLOAD_TIMEOUT_S = 120.0
_READ_BLOCK_BYTES = 1 << 20


def _package_uri(request: web.Request) -> str:
    protocol = request.match_info["protocol"]
    if protocol != "gcs":
        raise web.HTTPBadRequest(text=f"Package protocol '{protocol}' is not supported: raggio "
                                      "stores packages in the control store (gcs) only.")
    return f"gcs://{request.match_info['package_name']}"


async def get_package(request: web.Request) -> web.Response:
    """200 if the package is stored, 404 (Ray's text) if not."""
    uri = _package_uri(request)
    if not await request.app[STORE].call("kv_keys", uri):
        return web.Response(text=f"Package {uri} does not exist", status=404)
    return web.Response()


async def upload_package(request: web.Request) -> web.Response:
    """Store the request's body under the package's URI (once: equal names are equal
    contents). 413 past the size limit."""
    uri = _package_uri(request)
    chunks, size = [], 0
    # Read in blocks, not request.read(): that stops at aiohttp's 1 MiB client_max_size.
    while block := await request.content.read(_READ_BLOCK_BYTES):
        size += len(block)
        if size > PACKAGE_MAX_BYTES:
            raise web.HTTPRequestEntityTooLarge(
                max_size=PACKAGE_MAX_BYTES, actual_size=size,
                text=f"Package {uri} is over raggio's limit of {PACKAGE_MAX_BYTES} bytes; "
                     "leave large files out with the runtime_env's 'excludes'.")
        chunks.append(block)
    await request.app[STORE].call("kv_put", [uri, b"".join(chunks), False],
                                  timeout_s=UPLOAD_TIMEOUT_S)
    return web.Response()


def routes() -> list[web.RouteDef]:
    return [web.get("/api/packages/{protocol}/{package_name}", get_package),
            web.put("/api/packages/{protocol}/{package_name}", upload_package)]
