"""A stop request that signal handlers and threads can make any number of times.

A Python signal handler runs in the main thread between two bytecodes, so it
may interrupt the main thread anywhere, even inside another run of the same
handler. It must therefore take no lock: `threading.Event.set()` takes its
Condition's lock, and a second signal arriving while the first handler holds
it re-enters that lock and hangs the process for good (Ctrl-C on
`serve --workers 2` sends SIGINT to the group and the parent then forwards
SIGTERM, so two signals in a row are common). A `StopRequest` instead writes a
byte to a pipe, which is async-signal-safe, and the main thread reads it.

The same pipe is Python's wakeup fd: the interpreter's C-level handler writes
to it at once, from whichever thread the signal lands on. Without it, a signal
arriving just before the main thread blocks in `select` would only be noted
for the next bytecode, which never comes, and the process would not stop.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time
from types import FrameType

# The signal number recorded when no signal asked (a worker's parent watch);
# real ones start at 1.
_NO_SIGNAL = 0
# Longest block in `select`: a bound on how late a stop could ever be noticed.
_POLL_S = 1.0


class StopRequest:
    """A one-way latch made of a flag and a self-pipe; no locks anywhere.

    `request()` may be called from signal handlers and any thread, any number
    of times; `wait()` is for one thread (the main one).
    """

    def __init__(self) -> None:
        """Opens the pipe; nothing is requested yet."""
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)
        self._requested = False
        self._first_signal = _NO_SIGNAL

    @property
    def requested(self) -> bool:
        """Whether a stop was requested."""
        return self._requested

    @property
    def signal_name(self) -> str | None:
        """The signal that asked first (as SIGTERM), or None if none did."""
        if self._first_signal == _NO_SIGNAL:
            return None
        return signal.Signals(self._first_signal).name

    def request(self, signum: int = _NO_SIGNAL) -> None:
        """Asks the waiting thread to stop; safe in a signal handler."""
        # Plain assignments and os.write: nothing here takes a lock.
        if not self._requested:
            self._first_signal = signum
        self._requested = True
        # A full pipe already holds a wake-up, so the byte may be dropped.
        with contextlib.suppress(BlockingIOError):
            os.write(self._write_fd, b"\0")

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        """A handler for `signal.signal`: every call requests a stop."""
        self.request(signum)

    def install(self, *signums: signal.Signals) -> None:
        """Makes each of `signums` request a stop (call from the main thread)."""
        signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        for signum in signums:
            signal.signal(signum, self.on_signal)

    def wait(self, timeout_s: float | None = None) -> bool:
        """Blocks until a stop is requested; returns whether one was.

        A signal wakes the wait at once (the wakeup fd), and its Python
        handler runs at the next bytecode, before the loop checks again.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self._requested:
            poll_s = _POLL_S
            if deadline is not None:
                poll_s = min(poll_s, deadline - time.monotonic())
                if poll_s <= 0:
                    break
            ready, _, _ = select.select([self._read_fd], [], [], poll_s)
            if ready:
                os.read(self._read_fd, 512)
        return self._requested
