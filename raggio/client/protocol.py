"""What a ray:// client, the client server and a session agree on: ops, versions, chunks.

Values cross as cloudpickle blobs (``pickling.py``, which the server never imports:
it relays blobs without reading them). Blobs past ``CHUNK_BYTES`` travel in chunks
(``put_chunk`` / ``read_chunk``), never as one giant frame.
"""

from __future__ import annotations

import sys

#: Largest piece of a value in one message: big enough that a 1 GB object takes
#: ~128 round trips, small enough that the head's relay never buffers much.
CHUNK_BYTES = 8 * 2**20

#: Chunks of one value in flight at once (each way): enough to hide the round trips,
#: while the head's relay holds at most this many chunks of a client's value.
CHUNKS_IN_FLIGHT = 4

#: The ops a client calls on its session, relayed as they are by the server (one table,
#: so that a grep finds both ends: the session's ``handlers()`` has the same names).
SESSION_OPS = ("register", "submit_task", "create_actor", "submit_actor_call", "get_actor",
               "put_chunk", "put", "get", "read_chunk", "wait", "release", "cancel",
               "gcs_request", "placement_group_ready", "runtime_context", "has_package",
               "put_package", "generator_next", "generator_state")

#: Control-store ops a client may make through its session (``core.request("gcs", ...)``
#: in the public API: nodes, resources, named actors, ``raggio.kill``, placement groups,
#: which belong to the session's job as its actors do, the state API's listings of
#: actors, tasks, workers and jobs, and ``request_resources``; not its object listing,
#: which would show the ids of other clients' objects).
GCS_OPS = frozenset({"get_nodes", "cluster_resources", "list_named_actors", "kv_get",
                     "request_resources",
                     "get_named_actor", "kill_actor", "create_placement_group",
                     "remove_placement_group", "placement_group_table",
                     "get_named_placement_group", "wait_placement_group", "list_actors",
                     "list_tasks", "list_workers", "get_jobs"})


def versions() -> dict:
    """This side's versions, compared at connect."""
    from raggio import __version__
    return {"raggio_version": __version__, "python_version": "%d.%d" % sys.version_info[:2]}


def version_mismatch(client: dict, server: dict) -> str | None:
    """The refusal for a client whose raggio or Python version is not the server's; None
    when they match (Python's micro version may differ, as in Ray)."""
    for key, what in (("raggio_version", "raggio"), ("python_version", "Python")):
        if client.get(key) != server[key]:
            return (f"Version mismatch: the client runs {what} {client.get(key)} but the "
                    f"cluster runs {what} {server[key]}. Use the same {what} version on "
                    "both sides to connect with ray://.")
    return None


def chunk_offsets(size_bytes: int) -> range:
    """Where each chunk of a ``size_bytes`` value starts."""
    return range(0, size_bytes, CHUNK_BYTES)
