"""One worker process and the pipe the server calls it through: a request is one message there and back.

The calling thread writes the call and reads the answer itself, so a request crosses two processes and no
other thread (an executor's queue and result threads cost a fraction of a millisecond per request, beside a
Python hello world of about twelve). What runs in the worker crosses by reference: a module-level function
and its arguments. The worker runs one call at a time, in its own process group (Ctrl-C at the terminal
reaches only the server, which then stops it), and exits by itself if the server dies without closing it.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext
from multiprocessing.process import BaseProcess
from typing import Any

from functions import observability

# How often a worker checks that the server that started it is still there.
ORPHAN_CHECK_INTERVAL_S = 1.0


class WorkerGoneError(Exception):
    """The worker process died (or was killed) before it answered."""


class WorkerCallError(Exception):
    """The called function raised in the worker; the message carries its traceback."""


class WorkerProcess:
    """Started on construction (spawned: it imports what it runs); `call` one function at a time."""

    def __init__(self, context: SpawnContext) -> None:
        self._connection, child_end = context.Pipe()
        self.process: BaseProcess = context.Process(
            target=_serve, args=(child_end, os.getpid()), name="lambda-container", daemon=False
        )
        self.process.start()
        child_end.close()

    def send(self, function: Callable[..., Any], *args: Any) -> None:
        """Start a call; WorkerGoneError if the worker is no longer there to take it (nothing of it ran)."""
        try:
            self._connection.send((function, args))
        except (OSError, ValueError) as exc:
            raise WorkerGoneError(f"the worker is gone: {exc}") from exc

    def receive(self, timeout_s: float) -> Any:
        """The started call's result; TimeoutError if none within `timeout_s`, WorkerGoneError if the worker
        died, WorkerCallError if the function raised."""
        try:
            answered = self._connection.poll(timeout_s)  # also True at end of file: the worker died
            if answered:
                succeeded, value = self._connection.recv()
        except (EOFError, OSError) as exc:
            raise WorkerGoneError("the worker died before it answered") from exc
        if not answered:
            raise TimeoutError(f"no answer within {timeout_s:.1f} s")
        if not succeeded:
            raise WorkerCallError(value)
        return value

    def call(self, function: Callable[..., Any], *args: Any, timeout_s: float) -> Any:
        self.send(function, *args)
        return self.receive(timeout_s)

    def stop(self, *, timeout_s: float) -> None:
        """Close the pipe (an idle worker then exits by itself); kill it if it has not within `timeout_s`."""
        self._connection.close()
        self.process.join(timeout_s)
        self.kill()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self._connection.close()


def _serve(connection: Connection, server_pid: int) -> None:
    """The worker's loop: one call in, its result out, until the server closes the pipe."""
    # Its own process group: Ctrl-C at the terminal reaches only the server, which then stops the workers.
    os.setpgid(0, 0)
    # Nothing collects EMF metric lines locally; `serve` turns them off in the server process too.
    observability.set_metrics_enabled(False)
    threading.Thread(target=_exit_when_orphaned, args=(server_pid,), name="orphan-watch", daemon=True).start()
    while True:
        try:
            function, args = connection.recv()
        except (EOFError, OSError):
            return
        try:
            reply = (True, function(*args))
        except Exception:  # noqa: BLE001 - reported to the caller, which logs it as a bug of ours
            reply = (False, traceback.format_exc())
        connection.send(reply)


def _exit_when_orphaned(server_pid: int) -> None:
    """A server killed without closing its containers leaves no worker behind (nor, by bubblewrap's
    --die-with-parent, any sandbox)."""
    while os.getppid() == server_pid:
        time.sleep(ORPHAN_CHECK_INTERVAL_S)
    os._exit(1)
