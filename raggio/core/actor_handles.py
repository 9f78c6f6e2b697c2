"""Which actors this process holds handles to, told to the control store.

An actor that is not detached lives while some process holds a handle to it
(as in Ray): its creator's, and those that other processes got by receiving a
pickled handle (as a task argument, inside an object, in an actor's state).
Each process counts its live *counted* handles per actor and keeps the
control store's view in step: it is a holder of an actor while it has at least
one handle to it or calls through one still in flight (so
``ray.get(A.remote().f.remote())`` works). When the last holder lets go, the
control store ends the actor (``gcs/actor_directory.py``).

A pickled handle travels with a token: the pickling process tells the control
store the handle is in transit before the bytes leave it, and the process that
unpickles it says so when it has become a holder, so an actor is not ended
while its only handle is on the wire. A handle pickled but never unpickled keeps
its actor until the pickling process exits (the same simplification as
escaped object refs, see ``object_table``).

Handles from ``get_actor`` and the actor's own ``current_actor`` are weak: they
are not counted, as in Ray.

Counts change in any thread (a handle dies wherever the garbage collector
runs); the messages are worked out on the core worker's loop from the counts
on the loop in the order the counts changed, so a handle made and dropped around a call
still registers first and lets go only once the call is done.
"""

from __future__ import annotations

import os
import threading
import weakref

#: Every ActorHandle alive in this process, counted or weak (one per actor: handles compare
#: by actor id), for the ACTOR_HANDLE references of ``raggio memory``.
live_handles: weakref.WeakSet = weakref.WeakSet()


def live_actor_ids() -> list[bytes]:
    return [handle._actor_id for handle in list(live_handles)]


class ActorHandleCounts:
    """This process's counted handles per actor, and its holder status at the control store."""

    def __init__(self, core):
        self._core = core
        self._lock = threading.Lock()
        self._counts: dict[bytes, int] = {}  #: actor id -> live counted handles
        self._registered: set[bytes] = set()  #: actors the control store knows we hold

    # -- any thread --

    def acquire(self, actor_id: bytes, token: bytes | None = None) -> None:
        """A counted handle was made here (``token``: it arrived pickled with that token)."""
        with self._lock:
            count = self._counts.get(actor_id, 0)
            self._counts[actor_id] = count + 1
            if token is not None or (count == 0 and actor_id not in self._registered):
                self._call_soon(self._acquired, actor_id, token)

    def release(self, actor_id: bytes) -> None:
        """A counted handle died."""
        with self._lock:
            left = self._counts.get(actor_id, 0) - 1
            if left > 0:
                self._counts[actor_id] = left
                return
            self._counts.pop(actor_id, None)
            self._call_soon(self._maybe_release, actor_id)

    def in_transit(self, actor_id: bytes) -> bytes:
        """A counted handle is being pickled: the token the copy will carry."""
        token = os.urandom(8)
        with self._lock:
            self._call_soon(self._send, "actor_handle_in_transit",
                            {"actor_id": actor_id, "token": token})
        return token

    def created(self, actor_id: bytes) -> None:
        """The control store made us a holder of the actor we just created (user thread,
        before the first handle exists)."""
        with self._lock:
            self._registered.add(actor_id)

    # -- the loop: messages go out in the order the counts changed --

    def _acquired(self, actor_id: bytes, token: bytes | None) -> None:
        with self._lock:
            if actor_id not in self._registered:
                self._registered.add(actor_id)
                self._send("actor_handle_acquired", {"actor_id": actor_id, "token": token})
            elif token is not None:
                self._send("actor_handle_arrived", {"actor_id": actor_id, "token": token})

    def _maybe_release(self, actor_id: bytes) -> None:
        """Let go of the actor if no handle is left here and no call to it is in flight
        (else ``calls_done`` comes back here when the last call ends)."""
        with self._lock:
            if (actor_id in self._counts or actor_id not in self._registered
                    or not self._core.actor_submitter.idle(actor_id)):
                return
            self._registered.discard(actor_id)
            self._send("actor_handle_released", {"actor_id": actor_id})

    def calls_done(self, actor_id: bytes) -> None:
        """The submitter has no call left in flight to this actor (loop thread)."""
        if actor_id not in self._counts and actor_id in self._registered:
            self._maybe_release(actor_id)

    def resend(self) -> None:
        """After the control store restarted: tell it again what we hold (loop)."""
        with self._lock:
            for actor_id in self._registered:
                self._send("actor_handle_acquired", {"actor_id": actor_id, "token": None})

    def _call_soon(self, fn, *args) -> None:
        if self._core._closed:
            return
        try:
            self._core.call_soon(fn, *args)
        except RuntimeError:  # the loop is gone (interpreter shutdown)
            pass

    def _send(self, op: str, msg: dict) -> None:
        if not self._core._closed and self._core.gcs is not None:
            self._core.gcs.notify(op, msg)
