"""Child processes that die with this one, however it ends, and SIGTERM that unwinds a run.

``start_tied`` starts a child (the local ``llama-server``) that the kernel kills when this
process dies, SIGKILL included (a parent-death signal on Linux, a watchdog process
elsewhere); ``interrupt_on_termination`` makes SIGTERM and SIGHUP raise ``Terminated``, a
``KeyboardInterrupt``, so every ``finally`` of a run gets to stop what it started.
"""

from __future__ import annotations

import ctypes
import functools
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any

_PR_SET_PDEATHSIG = 1
# Run by a watchdog process where prctl is missing: the parent holds the write end of its
# stdin, so the read ends when the parent stops the server itself (it writes first) or
# dies, however it died (the kernel closes the pipe; then nothing was written).
_WATCHDOG = """
import os, signal, sys, time
pid, patience = int(sys.argv[1]), float(sys.argv[2])
if sys.stdin.buffer.read():
    sys.exit(0)
for sig in (signal.SIGTERM, getattr(signal, "SIGKILL", signal.SIGTERM)):
    try:
        os.kill(pid, sig)
    except OSError:
        sys.exit(0)
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            sys.exit(0)
        time.sleep(0.1)
"""


@functools.cache
def _prctl() -> Callable[..., int] | None:
    """libc's ``prctl`` on Linux; ``None`` elsewhere, where the watchdog takes its place."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


def _die_with_parent(prctl: Callable[..., int]) -> Callable[[], None]:
    """A ``preexec_fn`` that has the kernel SIGKILL the child when its parent dies."""
    parent = os.getpid()
    args = (ctypes.c_int(_PR_SET_PDEATHSIG), ctypes.c_ulong(signal.SIGKILL),
            ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))

    def arm() -> None:
        if prctl(*args) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the parent died before the signal was armed
            os.kill(os.getpid(), signal.SIGKILL)

    return arm


class _Spawner:
    """Starts processes from one thread that lives as long as this process: Linux sends
    the parent-death signal when the *thread* that started a child ends, and a run's first
    LLM call may come from a short-lived worker thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._jobs: queue.SimpleQueue[tuple[Future[Any], list[str], dict[str, Any]]]
        self._jobs = queue.SimpleQueue()

    def popen(self, command: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():  # first use, or forked
                self._jobs = queue.SimpleQueue()
                self._thread = threading.Thread(target=self._serve, args=(self._jobs,),
                                                name="hyperpilot-spawner", daemon=True)
                self._thread.start()
            done: Future[subprocess.Popen[bytes]] = Future()
            self._jobs.put((done, command, kwargs))
        return done.result()

    @staticmethod
    def _serve(jobs: queue.SimpleQueue[tuple[Future[Any], list[str], dict[str, Any]]]) -> None:
        while True:
            done, command, kwargs = jobs.get()
            try:
                done.set_result(subprocess.Popen(command, **kwargs))
            except BaseException as err:  # handed to the caller, which raises it
                done.set_exception(err)


_SPAWNER = _Spawner()


def start_tied(command: list[str], **kwargs: Any) -> tuple[subprocess.Popen[bytes],
                                                           subprocess.Popen[bytes] | None]:
    """``Popen(command, **kwargs)`` for a child that must not outlive this process, even
    when it is SIGKILLed; returns the child and its watchdog (``None`` on Linux, where the
    kernel's parent-death signal does the job). ``release_watchdog`` stands a watchdog down."""
    prctl = _prctl()
    if prctl is not None:
        return _SPAWNER.popen(command, preexec_fn=_die_with_parent(prctl), **kwargs), None
    child = subprocess.Popen(command, **kwargs)
    watchdog = subprocess.Popen(
        [sys.executable, "-I", "-c", _WATCHDOG, str(child.pid), "5"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return child, watchdog


def release_watchdog(watchdog: subprocess.Popen[bytes] | None) -> None:
    """Tell a watchdog from ``start_tied`` that its child is taken care of, and reap it."""
    if watchdog is None:
        return
    try:
        watchdog.communicate(b"stop\n", timeout=5)
    except subprocess.TimeoutExpired:
        watchdog.kill()
        watchdog.wait()


class Terminated(KeyboardInterrupt):
    """A termination signal arrived; it unwinds like Ctrl-C, through every ``finally``."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by {signal.Signals(signum).name}")
        self.signum = signum


def interrupt_on_termination(
    signums: Iterable[int] = (signal.SIGTERM, getattr(signal, "SIGHUP", signal.SIGTERM)),
) -> dict[int, Any]:
    """Make SIGTERM (and SIGHUP) raise ``Terminated``, a ``KeyboardInterrupt``, in the main
    thread, so a run shuts down as after Ctrl-C: ``finally`` blocks stop its llama-server and
    close its checkpoint. A second signal ends the process at once. Call it from the main
    thread; returns the handlers it replaced, for ``signal.signal`` to put back."""
    owner = os.getpid()

    def handle(signum: int, frame: object) -> None:
        signal.signal(signum, signal.SIG_DFL)
        if os.getpid() != owner:  # a forked child inherited the handler: die as by default
            os.kill(os.getpid(), signum)
            return
        raise Terminated(signum)

    return {signum: signal.signal(signum, handle) for signum in dict.fromkeys(signums)}
