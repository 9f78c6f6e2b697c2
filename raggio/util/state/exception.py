"""Ray's ``ray.util.state.exception`` path: the errors of state queries. Thin: the classes
live with the queries in ``api.py``."""

from raggio.util.state.api import RayStateApiException, ServerUnavailable

__all__ = ["RayStateApiException", "ServerUnavailable"]
