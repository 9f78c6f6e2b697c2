"""The zygote: a pre-imported process that forks workers in milliseconds.

Started by the worker pool before any thread exists in it. It imports what
every worker needs (raggio's core, cloudpickle, msgpack, numpy), then reads
one JSON request per line on stdin and answers with the forked child's pid
on stdout, and one line per worker that exits, with its exit code (negative:
the signal that ended it). A fresh interpreter costs ~65-140 ms and 8-14 MiB unshared per
worker; a fork from here costs a few ms and shares the imported pages.
Exits when stdin closes or its node manager dies (``PR_SET_PDEATHSIG``), and
its workers die with it, so no worker outlives its node, even one forked a
moment before the node went away.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import sys

from raggio.launch import die_with_parent


def main() -> None:
    import numpy  # noqa: F401  (imported for its pages, shared with every worker)
    import raggio.core.worker_main as worker_main

    die_with_parent()  # the node manager: a node that dies takes its zygote with it
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer

    def reap(signum, frame):
        """Report each worker's exit code: the node manager tells its actors' callers."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            stdout.write(json.dumps({"exited": pid,
                                     "exit_code": os.waitstatus_to_exitcode(status)}).encode()
                         + b"\n")
            stdout.flush()

    signal.signal(signal.SIGCHLD, reap)
    # Move everything imported so far out of the collector's reach: a collection in a
    # worker would otherwise write to (and so copy) every page holding those objects.
    gc.freeze()
    while True:
        line = stdin.readline()
        if not line:
            return
        request = json.loads(line)
        # No exit report before the fork's: the node manager matches exits to workers by pid.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
            die_with_parent()  # and the zygote's end takes every worker with it
            os.close(0)
            os.close(1)
            worker_main.main(request)
            os._exit(0)
        stdout.write(json.dumps({"worker_id": request["worker_id"], "pid": pid}).encode() + b"\n")
        stdout.flush()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})


if __name__ == "__main__":
    main()
