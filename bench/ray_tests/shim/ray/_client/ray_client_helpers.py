"""``ray.util.client.ray_client_helpers``: run a block with or without Ray Client."""

import contextlib


@contextlib.contextmanager
def connect_to_client_or_not(connect_to_client: bool):
    """Without Ray Client, run the block as is; with it, fail: raggio has no Ray Client."""
    if connect_to_client:
        raise NotImplementedError("Ray Client (ray.util.connect / ray:// addresses) is not "
                                  "implemented in raggio")
    yield
