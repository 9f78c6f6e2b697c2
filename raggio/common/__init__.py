"""Definitions that several roles share, below ``gcs``, ``node`` and ``core``.

The control store, the node manager and the core worker never import each
other; what all of them must agree on lives here, one module per concern:
``ids`` (typed ids and how ids are made), ``resources`` (resource arithmetic
and why a request waits), ``placement_group_resources`` (Ray's names for a
group's reserved resources), ``labels`` (node labels and selectors),
``scheduling_policy`` (where a lease request should run), ``leasing``
(asking nodes for a lease: spillbacks, retries), ``states`` (task and actor
states), ``task_records`` (the task history's record layout), ``log_marks``
(the marker lines of workers' log files) and ``launch_failures`` (the
autoscaler's record of failed launches, which the alerts read).

No I/O of its own (``leasing`` calls nodes only through connections its
caller gives it), and no imports of raggio beyond this package, ``rpc``,
``config`` and ``exceptions`` (the layer contract in ``.importlinter``
holds it to that). Importing this package imports none of its modules.
"""
