"""The dashboard's aiohttp application: its routes, and the errors every route shares.

Route tables come from the modules that own them: ``auth`` (logging in),
``rest`` (Ray's HTTP API: ``/api/version``, ``/api/v0/...``, ``/nodes``,
logs), ``job_routes`` (Ray's jobs API, ``/api/jobs/``), ``package_routes`` (the
runtime-env packages Ray's job clients upload), ``ui_api`` and ``job_output`` (the web UI's
own views), ``live`` (server-sent events for
pages, and the one poller behind them), ``metrics_routes`` (the Metrics page's history of every
node's metrics, and its scraper), ``pages`` (the web UI).
Errors are JSON in Ray's envelope (``{"result": false, "msg": ..., "data": {}}``):
an unknown route is 404, a bad query 400 (the route says which parameter), a
control store that does not answer 503, and an error no route expected 500: its
traceback goes to the dashboard's log (``<session dir>/logs/dashboard.log``), not to
the client.
"""

from __future__ import annotations

import logging

from aiohttp import web

from raggio.config import get_config
from raggio.dashboard import (auth, job_output, job_routes, live, metrics_routes,
                              package_routes, pages, rest, ui_api)
from raggio.dashboard.job_manager import JobManager
from raggio.dashboard.control_store import ControlStore, Unavailable
from raggio.dashboard.node_managers import NodeManagers
from raggio.dashboard.routing import NODES, SESSION, STORE, TOKEN, BadRequest, error_body, ok

logger = logging.getLogger(__name__)


@web.middleware
async def json_errors(request: web.Request, handler):
    try:
        return await handler(request)
    except Unavailable as exc:
        reason = str(exc).rstrip(". ")
        return web.json_response(error_body(f"{reason}. The cluster may be restarting; this "
                                            "page recovers when it is back."), status=503)
    except BadRequest as exc:
        return web.json_response(error_body(str(exc)), status=400)
    except web.HTTPNotFound:
        return web.json_response(error_body(f"No route {request.method} {request.path}. "
                                            "See /api/routes for the routes there are."),
                                 status=404)
    except web.HTTPMethodNotAllowed as exc:
        return web.json_response(error_body(f"{request.method} is not allowed on {request.path}; "
                                            f"use {', '.join(sorted(exc.allowed_methods))}."),
                                 status=405)
    except web.HTTPException:
        raise  # aiohttp's own answers (redirects, 401s raised by a route) as they are
    except Exception:
        if request.writer.output_size > 0:
            raise  # the answer has begun (a stream): aiohttp can only close the connection
        logger.exception("%s %s failed", request.method, request.path_qs)
        return web.json_response(error_body(
            f"The dashboard failed on {request.method} {request.path}: a bug. What went wrong "
            "is in its log (logs/dashboard.log in the session directory)."), status=500)


def make_app(store: ControlStore, *, token: str, session: dict) -> web.Application:
    """The application for one cluster. ``session``: ``session_name``, ``session_dir``,
    ``gcs_address``."""
    app = web.Application(middlewares=[json_errors, auth.middleware(token)])
    app[STORE] = store
    app[NODES] = NodeManagers(token)
    app[SESSION] = session
    app[TOKEN] = token
    app[job_routes.JOBS] = JobManager(store, session["gcs_address"], token,
                                      get_config().job_stop_wait_time_s)
    app.add_routes(auth.routes(token))
    app.add_routes(rest.routes())
    app.add_routes(ui_api.routes())
    app.add_routes(job_output.routes())
    app.add_routes(job_routes.routes())
    app.add_routes(package_routes.routes())
    app.add_routes(live.routes())
    app.cleanup_ctx.append(live.poller_context)
    app.cleanup_ctx.append(job_routes.jobs_context)  # after the poller: it tells it
    app.add_routes(metrics_routes.routes())
    app.cleanup_ctx.append(metrics_routes.metrics_context)  # after the poller: it tells it
    app.add_routes(pages.routes())

    async def list_routes(request: web.Request) -> web.Response:
        paths = sorted({resource.canonical for resource in request.app.router.resources()})
        return ok({"routes": paths})

    app.router.add_get("/api/routes", list_routes)
    app.on_cleanup.append(_close_store)
    return app


async def _close_store(app: web.Application) -> None:
    app[STORE].close()
    app[NODES].close()
