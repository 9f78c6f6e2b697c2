"""The cluster launcher: ``raggio up``/``down``/``exec``/``attach``... from a cluster file.

- ``schema`` and ``cluster_config``: the cluster file (Ray's schema and the
  seed's), checked with JSON Schema and normalised into one shape.
- ``node_provider``: the NodeProvider interface the launcher and the
  autoscaler share, and the registry of providers (``local_provider``: SSH
  hosts you already have).
- ``cluster_state``: the launcher's local record of a cluster, under a lock.
- ``ssh``: commands and file transfer over SSH (asyncssh).
- ``updater``: one node brought up to date (setup, file mounts, start).
- ``cluster_ops``: ``up`` and ``down``; ``remote_ops``: the commands on a
  running cluster; ``head_info``: what the head says over SSH;
  ``node_commands``: command strings written for Ray made raggio's;
  ``progress``: the per-node live view.

The launcher talks to a cluster only over SSH and through raggio's CLI on its
nodes; it imports nothing of ``gcs``, ``node`` or ``core``.
"""
