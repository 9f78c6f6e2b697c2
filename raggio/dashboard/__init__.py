"""The dashboard: Ray's web UI and HTTP API on :8265, behind the cluster token.

A process of its own beside the control store (``python -m raggio.dashboard``),
started and restarted by the head (``supervisor.py``), which holds its
listening socket: the port is taken, and its URL known, before the process
has imported anything, and a restarted dashboard serves the same socket. It
reads the cluster only through the control store's RPC surface
(``control_store.py``) and the state API's shaping (``raggio.util.state``);
killing it never touches the cluster.
"""
