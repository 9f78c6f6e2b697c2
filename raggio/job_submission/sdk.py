"""``JobSubmissionClient``: Ray's jobs SDK, talking to a dashboard's ``/api/jobs/``.

Where the dashboard is: the ``address`` argument, else ``RAGGIO_ADDRESS``/``RAY_ADDRESS``,
else this machine's current cluster (``cluster_file``). An ``http(s)://`` URL is used as
it is; ``auto``, or the current cluster's control-store address (what a submitted job's
entrypoint has in ``RAY_ADDRESS``), means that cluster's dashboard; another ``host:port``
is taken as a dashboard's. Departure from Ray: the argument wins over the environment
(Ray lets ``RAY_ADDRESS`` override it).

The token goes as ``Authorization: Bearer`` (unless ``headers`` has one): from
``RAGGIO_AUTH_TOKEN``/``RAY_AUTH_TOKEN``, else the current cluster's token file when the
address is its dashboard. As Ray's SDK, a request the server refuses raises
``RuntimeError("Request failed with status code N: <its message>.")``, and a dashboard
that cannot be reached ``ConnectionError``. A local ``working_dir`` or ``py_modules`` entry
is zipped as a driver zips it (``common/runtime_env_packages.py``) and uploaded through the
dashboard's package routes unless it has it; the job goes with its ``gcs://`` URI. Plain
``urllib`` for requests, ``aiohttp`` for ``tail_job_logs``'s websocket.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from typing import Any, AsyncIterator

from raggio import cluster_file
from raggio.common.runtime_env_packages import ready_to_travel
from raggio.config import get_config
from raggio.job_submission.common import JobDetails, JobStatus

logger = logging.getLogger(__name__)

#: How long one request may take.
REQUEST_TIMEOUT_S = 30.0
#: Ray's clients check the server's version: at least this for the jobs API.
MIN_RAY_VERSION = (2, 0)


def _resolve(address: str | None) -> tuple[str, str | None]:
    """(the dashboard's URL, the token found for it or None)."""
    cfg = get_config()
    address = (address or cfg.address or "auto").rstrip("/")
    current = cluster_file.read(cfg.temp_dir)
    local_url = (current or {}).get("dashboard_url")
    if address == "auto" or (current and address == current.get("gcs_address")):
        if not cluster_file.head_running(current) or not local_url:
            raise ConnectionError(
                "Could not find a running raggio cluster with a dashboard on this machine "
                f"({cluster_file.path(cfg.temp_dir)}). Pass the dashboard's address "
                "(http://HOST:8265) or set RAY_ADDRESS.")
        address = local_url
    elif "://" not in address:
        address = "http://" + address
    token = cfg.auth_token or None
    if token is None and current and local_url and local_url.rstrip("/") == address:
        token = cluster_file.read_token(current)
    return address, token


class JobSubmissionClient:
    """Submit jobs to a raggio (or Ray) cluster's dashboard and follow them.

    Args:
        address: the dashboard (``http://HOST:8265``), ``auto``, or the control store's
            ``HOST:PORT`` of this machine's cluster; see the module's docstring.
        create_cluster_if_needed: not supported (as Ray's, for ``http://``).
        cookies: sent with every request.
        metadata: added to every submitted job's metadata.
        headers: sent with every request (an ``Authorization`` here wins over the token).
        verify: accepted for Ray's signature; TLS is checked by default.

    Raises:
        ConnectionError: the dashboard cannot be reached.
        RuntimeError: it answers, but is not a jobs API (or too old a Ray).
    """

    def __init__(self, address: str | None = None, create_cluster_if_needed: bool = False,
                 cookies: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None,
                 headers: dict[str, Any] | None = None, verify: str | bool | None = True):
        for name, value in (("cookies", cookies), ("metadata", metadata),
                            ("headers", headers)):
            if value is not None and not isinstance(value, dict):
                raise TypeError(f"{name} must be a dict, got {type(value)}")
        if address is not None and not isinstance(address, str):
            raise TypeError(f"address must be a string, got {type(address)}")
        self._address, token = _resolve(address)
        self._default_metadata = dict(metadata or {})
        self._headers = dict(headers or {})
        if token and not any(key.lower() == "authorization" for key in self._headers):
            self._headers["Authorization"] = f"Bearer {token}"
        if cookies:
            self._headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        self._check_version()

    def get_address(self) -> str:
        return self._address

    # -- requests --

    def _request(self, method: str, path: str, body: dict | None = None, *,
                 data: bytes | None = None) -> tuple[int, str]:
        """(status, text) of one request: a JSON ``body``, or raw ``data``."""
        if body is not None:
            data = json.dumps(body).encode()
        headers = dict(self._headers,
                       **({"Content-Type": "application/json"} if body is not None else {}))
        request = urllib.request.Request(self._address + path, data=data, method=method,
                                         headers=headers)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=REQUEST_TIMEOUT_S) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")
        except (urllib.error.URLError, OSError) as exc:
            raise ConnectionError(
                f"Failed to connect to Ray at address: {self._address} ({exc}).") from None

    def _json(self, method: str, path: str, body: dict | None = None):
        status, text = self._request(method, path, body)
        if status != 200:
            raise RuntimeError(f"Request failed with status code {status}: {text}.")
        return json.loads(text)

    def _check_version(self) -> None:
        version = self._json("GET", "/api/version")
        running = tuple(int(part) for part in version["ray_version"].split(".")[:2])
        if running < MIN_RAY_VERSION:
            raise RuntimeError(f"Ray version {version['ray_version']} is running on the "
                               "cluster. Jobs API is not supported on the Ray cluster.")

    def get_version(self) -> str:
        return self._json("GET", "/api/version")["version"]

    # -- the jobs API --

    def submit_job(self, *, entrypoint: str, job_id: str | None = None,
                   runtime_env: dict[str, Any] | None = None,
                   metadata: dict[str, str] | None = None, submission_id: str | None = None,
                   entrypoint_num_cpus: int | float | None = None,
                   entrypoint_num_gpus: int | float | None = None,
                   entrypoint_memory: int | None = None,
                   entrypoint_resources: dict[str, float] | None = None,
                   entrypoint_label_selector: dict[str, str] | None = None) -> str:
        """Submit a job; it runs once, to its end. Returns its submission id.

        Args:
            entrypoint: the shell command to run (its ``init()`` joins the cluster).
            job_id: deprecated name of ``submission_id``.
            runtime_env: the job's runtime environment (``env_vars``, ``working_dir``, ...);
                a local ``working_dir`` or ``py_modules`` entry is zipped and uploaded.
            metadata: strings kept with the job and given to its driver's JobConfig.
            submission_id: the job's id (``raysubmit_...`` generated when None).
            entrypoint_num_cpus, entrypoint_num_gpus, entrypoint_memory,
            entrypoint_resources: reserved for the entrypoint itself, which runs on a
                node that has them (on the head when none are asked for).
            entrypoint_label_selector: Ray's; raggio's job manager refuses a non-empty one.

        Raises:
            RuntimeError: the server refused the job (a taken id, a bad argument).
            ValueError: a local package that is not there or is over the size limit.
        """
        runtime_env = ready_to_travel(runtime_env or {}, self._upload_package)
        metadata = dict(metadata or {}, **self._default_metadata)
        body = {"entrypoint": entrypoint, "submission_id": submission_id or job_id,
                "runtime_env": runtime_env, "metadata": metadata,
                "entrypoint_num_cpus": entrypoint_num_cpus,
                "entrypoint_num_gpus": entrypoint_num_gpus,
                "entrypoint_memory": entrypoint_memory,
                "entrypoint_resources": entrypoint_resources,
                "entrypoint_label_selector": entrypoint_label_selector}
        body = {key: value for key, value in body.items() if value is not None}
        return self._json("POST", "/api/jobs/", body)["submission_id"]

    def _upload_package(self, uri: str, data: bytes) -> None:
        """Upload a package through the dashboard's package routes unless it has it, as
        Ray's client does (``GET``: 200 or 404, then ``PUT``)."""
        path = "/api/packages/gcs/" + uri.removeprefix("gcs://")
        status, text = self._request("GET", path)
        if status == 404:
            logger.info("Uploading package %s.", uri)
            status, text = self._request("PUT", path, data=data)
        if status != 200:
            raise RuntimeError(f"Request failed with status code {status}: {text}.")

    def stop_job(self, job_id: str) -> bool:
        """Stop a job (SIGTERM, then SIGKILL after a grace period); whether it was running."""
        return self._json("POST", f"/api/jobs/{job_id}/stop")["stopped"]

    def delete_job(self, job_id: str) -> bool:
        """Forget an ended job; RuntimeError for one that runs."""
        return self._json("DELETE", f"/api/jobs/{job_id}")["deleted"]

    def get_job_info(self, job_id: str) -> JobDetails:
        """A job by submission id or job id; RuntimeError if there is none."""
        return JobDetails.from_json(self._json("GET", f"/api/jobs/{job_id}"))

    def list_jobs(self) -> list[JobDetails]:
        """Every submitted job and every driver of the cluster."""
        return [JobDetails.from_json(row) for row in self._json("GET", "/api/jobs/")]

    def get_job_status(self, job_id: str) -> JobStatus:
        return self.get_job_info(job_id).status

    def get_job_logs(self, job_id: str) -> str:
        """What the job's entrypoint has printed so far (stdout and stderr)."""
        return self._json("GET", f"/api/jobs/{job_id}/logs")["logs"]

    async def tail_job_logs(self, job_id: str) -> AsyncIterator[str]:
        """The job's output as it comes, until the job has ended.

        Raises:
            RuntimeError: the job does not exist, or the connection was lost.
        """
        import aiohttp

        url = self._address.replace("http", "ws", 1) + f"/api/jobs/{job_id}/logs/tail"
        async with aiohttp.ClientSession(headers=self._headers) as session:
            try:
                ws = await session.ws_connect(url)
            except aiohttp.WSServerHandshakeError as exc:
                raise RuntimeError(f"Request failed with status code {exc.status}: "
                                   f"{exc.message}.") from None
            async with ws:
                async for msg in ws:
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        yield msg.data
                    elif msg.type == aiohttp.WSMsgType.ERROR:
                        raise RuntimeError(f"WebSocket error for job {job_id}: "
                                           f"{ws.exception()}")
            if ws.close_code == aiohttp.WSCloseCode.ABNORMAL_CLOSURE:
                raise RuntimeError("WebSocket connection closed unexpectedly with close "
                                   f"code {ws.close_code}")
