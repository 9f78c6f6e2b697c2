"""Reading a route's query parameters as Ray's dashboard reads them.

Integers, booleans (Ray's ``true``/``1`` and ``false``/``0``, any case here),
the ``timeout`` in seconds, and the state API's filters, given as repeated
``filter_keys``, ``filter_predicates`` and ``filter_values`` (what Ray's
client sends for ``filters=[(key, predicate, value), ...]``). A value that
does not parse is a ``BadRequest`` (400) naming the parameter.
"""

from __future__ import annotations

from aiohttp import web

from raggio.dashboard.routing import BadRequest

#: Ray's default ``timeout`` of a state request, in seconds (``DEFAULT_RPC_TIMEOUT``).
DEFAULT_TIMEOUT_S = 30


def query_int(request: web.Request, name: str, default: int | None) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {raw!r}.") from None


def query_float(request: web.Request, name: str, default: float | None) -> float | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a number, got {raw!r}.") from None


def query_bool(request: web.Request, name: str, default: bool) -> bool:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise BadRequest(f"{name} must be true or false (or 1 or 0), got {raw!r}.")


def query_timeout(request: web.Request) -> float:
    """``timeout``: how long the route may wait for the cluster, in seconds."""
    timeout_s = query_float(request, "timeout", DEFAULT_TIMEOUT_S)
    if timeout_s <= 0:
        raise BadRequest(f"timeout must be a positive number of seconds, got {timeout_s:g}.")
    return timeout_s


def query_filters(request: web.Request) -> list[tuple[str, str, str]]:
    """The (key, predicate, value) filters of a state request."""
    keys = request.query.getall("filter_keys", [])
    predicates = request.query.getall("filter_predicates", [])
    values = request.query.getall("filter_values", [])
    if not len(keys) == len(predicates) == len(values):
        raise BadRequest(
            "Each filter is a filter_keys, a filter_predicates and a filter_values parameter "
            f"(such as ?filter_keys=state&filter_predicates=%3D&filter_values=ALIVE); got "
            f"{len(keys)} keys, {len(predicates)} predicates and {len(values)} values.")
    return list(zip(keys, predicates, values))
