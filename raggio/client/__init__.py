"""Remote drivers: ``raggio.init("ray://HOST:10001")`` from a machine that reaches one port.

Three parts, one module each:

- ``server.py``: the client server, in the head's control-store process, listening on
  ``--ray-client-server-port``. It checks each client's token and versions, keeps its
  session across short disconnections, and relays its requests to the session's driver.
- ``session.py``: one process per client session, started by the server: a real driver
  (``raggio.init(address=...)`` on the head) that makes the calls on the client's behalf
  and holds the client's objects and actors.
- ``client_core.py``: the client's side, set as the process's core by ``init()`` so that
  the public API (``raggio.get``, ``.remote()``, ``raggio.wait`` ...) works unchanged.

``protocol.py`` holds what both ends agree on. See docs/ARCHITECTURE.md, "Remote drivers".
"""
