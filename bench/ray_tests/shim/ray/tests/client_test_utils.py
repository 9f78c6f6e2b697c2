"""``ray.tests.client_test_utils``: a signal actor class made with a given ``ray`` module."""

import asyncio


def create_remote_signal_actor(ray):
    """Return a remote class whose ``wait()`` calls block until ``send()`` (as in Ray)."""

    class SignalActor:
        def __init__(self):
            self._event = asyncio.Event()

        def send(self, clear=False):
            self._event.set()
            if clear:
                self._event.clear()

        async def wait(self, should_wait=True):
            if should_wait:
                await self._event.wait()

    return ray.remote(SignalActor)
