"""``raggio.autoscaler.sdk`` (Ray's ``ray.autoscaler.sdk``): what a program asks of the autoscaler.

``request_resources`` sends the request to the control store (its
``request_resources`` op, which keeps it in the KV under ``RESOURCE_REQUEST_KEY``),
through the connected driver's, worker's or ray:// client's own connection; the
head's autoscaler reads it each round and keeps room for it.
The request holds until the next call replaces it; a call with neither
argument withdraws it.

Not here yet: Ray's cluster-launcher calls of this module
(``create_or_update_cluster``, ``teardown_cluster``...), which ``raggio up``
and ``raggio down`` do (``raggio/launcher/``).
"""

from __future__ import annotations

from raggio.core import context

__all__ = ["request_resources"]


def request_resources(num_cpus: int | None = None,
                      bundles: list[dict] | None = None) -> None:
    """Ask the autoscaler to scale the cluster so that these resources fit at once.

    The cluster grows until ``num_cpus`` one-CPU bundles and ``bundles`` could all be
    placed together, counting every node's total resources (what already runs there
    does not add to the request), within the cluster file's ``max_workers``; and it
    keeps those nodes while the request stands. The request replaces the previous one
    and holds until the next call; ``request_resources()`` withdraws it, so idle nodes
    may leave again.

    Args:
        num_cpus: Scale so that this many CPUs fit (as many ``{"CPU": 1}`` bundles).
        bundles: Scale so that these resource shapes fit, e.g.
            ``[{"GPU": 1, "CPU": 4}]``.

    Raises:
        TypeError: ``num_cpus`` is not an int, or ``bundles`` not a list of dicts of str
            to int (Ray's checks).
        ValueError: a negative amount.
        RuntimeError: no driver is connected (call ``raggio.init()`` first).
    """
    to_request = _check(num_cpus, bundles)
    core = context.current_core_or_none()
    if core is None:
        raise RuntimeError("request_resources() talks to the cluster's autoscaler through "
                           "a connected driver: call raggio.init() (or "
                           "init(address=...)) first.")
    core.request("gcs", "request_resources", to_request)


def _check(num_cpus, bundles) -> list[dict]:
    """The bundles the arguments ask for; raise on arguments Ray refuses, or negatives."""
    if num_cpus is not None and not isinstance(num_cpus, int):
        raise TypeError("num_cpus should be of type int.")
    if bundles is not None:
        if not isinstance(bundles, list):
            raise TypeError("bundles should be of type List")
        for bundle in bundles:
            if not isinstance(bundle, dict):
                raise TypeError("each bundle should be a Dict.")
            if not all(isinstance(key, str) and isinstance(amount, int)
                       for key, amount in bundle.items()):
                raise TypeError("each bundle key should be str and value as int.")
    if (num_cpus or 0) < 0 or any(amount < 0 for bundle in bundles or ()
                                  for amount in bundle.values()):
        raise ValueError(f"request_resources(num_cpus={num_cpus!r}, bundles={bundles!r}) "
                         "asks for a negative amount: give amounts >= 0.")
    return [{"CPU": 1}] * (num_cpus or 0) + [dict(bundle) for bundle in bundles or ()]
