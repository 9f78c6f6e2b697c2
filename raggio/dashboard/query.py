"""Reading a route's parameters as Ray's dashboard reads them, and the answer when what
they name is not there.

Integers (with the range a route allows), numbers, booleans (Ray's ``true``/``1``
and ``false``/``0``, any case here), the ``timeout`` in seconds, the state API's
filters, given as repeated ``filter_keys``, ``filter_predicates`` and
``filter_values`` (what Ray's client sends for ``filters=[(key, predicate,
value), ...]``), and the ids in a path (``/api/ui/actors/{actor_id}``). A value
that does not parse, or is out of range, is a ``BadRequest`` (400) naming the
parameter; ``not_found`` is the 404 for an id or file that names nothing.
"""

from __future__ import annotations

from aiohttp import web

from raggio.dashboard.routing import BadRequest, error_body

#: Ray's default ``timeout`` of a state request, in seconds (``DEFAULT_RPC_TIMEOUT``).
DEFAULT_TIMEOUT_S = 30


def query_int(request: web.Request, name: str, default: int | None, *,
              least: int | None = None, most: int | None = None) -> int | None:
    """The query parameter ``name`` as an integer; ``default`` when absent or empty.

    Args:
        least, most: the range it must be in (inclusive; None: no bound on that side).

    Raises:
        BadRequest: not an integer, or out of the range.
    """
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {raw!r}.") from None
    if (least is not None and value < least) or (most is not None and value > most):
        bounds = (f"between {least} and {most}" if least is not None and most is not None
                  else f"at least {least}" if least is not None else f"at most {most}")
        raise BadRequest(f"{name} must be {bounds}, got {value}.")
    return value


def query_float(request: web.Request, name: str, default: float | None) -> float | None:
    """The query parameter ``name`` as a number; ``default`` when absent or empty.

    Raises:
        BadRequest: not a number.
    """
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a number, got {raw!r}.") from None


def query_bool(request: web.Request, name: str, default: bool) -> bool:
    """The query parameter ``name`` as a boolean (``true``/``1``, ``false``/``0``, any
    case); ``default`` when absent or empty.

    Raises:
        BadRequest: none of those.
    """
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


def parse_hex_id(text: str, name: str) -> bytes:
    """An id as the lists show it (hex), given as the parameter ``name``.

    Raises:
        BadRequest: not hex.
    """
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise BadRequest(f"{name} must be a hex id (as the lists show), got {text!r}.") from None


def parse_job_id(text: str) -> int:
    """A job's number from its id as the pages show it (Ray's hex: ``00000001`` here).

    Raises:
        BadRequest: not hex.
    """
    try:
        return int(text, 16)
    except ValueError:
        raise BadRequest(f"job_id must be a hex job id such as 00000001, got {text!r}.") from None


def not_found(message: str) -> web.Response:
    """The 404 in Ray's envelope for a node, actor, task or file that is not there."""
    return web.json_response(error_body(message), status=404)
