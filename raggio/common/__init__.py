"""Definitions that several roles share, below ``gcs``, ``node`` and ``core``.

The control store, the node manager and the core worker never import each
other; what all of them must agree on lives here, one module per concern:
``ids`` (typed ids and how ids are made), ``resources`` (resource arithmetic
and why a request waits), ``placement_group_resources`` (Ray's names for a
group's reserved resources), ``labels`` (node labels and selectors),
``scheduling_policy`` (where a lease request should run), ``states`` (task
and actor states) and ``task_records`` (the task history's record layout).

Pure code: no I/O, and no imports of raggio beyond this package (the
layer contract in ``.importlinter`` holds it to that). Importing this
package imports none of its modules.
"""
