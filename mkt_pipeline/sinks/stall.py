"""Noticing a server that stopped answering, and giving up on it after a bounded time.

A frozen server (a paused process, a full disk on its side, a dead switch that keeps the TCP
session half-open) does not refuse anything: its kernel still accepts connections and
acknowledges bytes, so a request simply never gets an answer. Neither TCP keep-alives nor the
clients' connect timeouts notice that. Every blocking call a sink makes to its server therefore
runs under a ``StallWatch``:

- after ``warn_s`` without an answer (30 s, or half the timeout when that is shorter) it logs one
  line, ``no answer from HOST:PORT for 30 s, waiting``, and again at each further ``warn_s``;
- after ``timeout_s`` it gives up: the call's ``breaker`` shuts down the sockets the call waits on
  (``shutdown``, never ``close``: the descriptor stays the owner's), so the blocked read or write
  returns at once with an error, and the watch turns that error into one ``StallError`` line that
  names the endpoint and the timeout. A client that retries on a new connection meets the same
  breaker again each second until its own retry budget is spent.

Breakers exist for a socket whose descriptor is known (``shutdown_fd``: psycopg's connection) and,
where ``/proc/self/fd`` exists (Linux), for every socket of this process connected to a given
host and port (``shutdown_peer_sockets``: the ``questdb`` client keeps its sockets to itself).
Elsewhere only the warning and the clients' own request timeouts apply.

The watch is transport-neutral: a sink passes what the call is (``label``, e.g. ``PG wire, table
x``), the server's ``host:port`` and how to break the wait; the warning and the error name both.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

# A bounded default: long enough for a 16 MiB flush over a slow link or a server busy with a big
# commit, short enough that a frozen server fails the run (and frees its Dagster slot) within minutes.
DEFAULT_STALL_TIMEOUT_S = 120
STALL_WARN_S = 30.0
BREAK_EVERY_S = 1.0  # after the timeout, how often the breaker runs until the call has returned
STALL_TIMEOUT_ENV = "MKT_STALL_TIMEOUT_SECONDS"
STALL_TIMEOUT_FLAG = "--stall_timeout_secs"


class StallError(RuntimeError):
    """A server gave no answer within the stall timeout; the message is one line."""


def warn_after(timeout_s: float) -> float:
    """When the first warning comes: 30 s, or half the timeout when that is sooner."""
    return min(STALL_WARN_S, timeout_s / 2)


class _Call:
    """One watched call: when it started, when it is next due for a warning, whether it expired."""

    def __init__(self, label: str, peer: str, breaker: Callable[[], object] | None, started: float, warn_s: float):
        self.label, self.peer, self.breaker = label, peer, breaker
        self.started = started
        self.next_warning = warn_s  # seconds after ``started``
        self.next_break = 0.0
        self.expired = False
        self.done = False


class StallWatch:
    """Warns while a call waits on a server and breaks the wait after ``timeout_s``.

    One watcher thread serves every call of the watch (started with the first call, ended after a
    while without calls), so watching costs a lock and a notify per call, not a thread.
    """

    IDLE_S = 10.0  # the watcher thread ends after this long without a call

    def __init__(
        self,
        timeout_s: float = DEFAULT_STALL_TIMEOUT_S,
        warn_s: float | None = None,
        logger: logging.Logger | None = None,
    ):
        if not timeout_s > 0:
            raise ValueError(f"stall timeout must be > 0 seconds (got {timeout_s})")
        self.timeout_s = float(timeout_s)
        self.warn_s = warn_after(self.timeout_s) if warn_s is None else float(warn_s)
        self.log = logger or log
        self.stalls = 0  # calls that were warned about
        self._cond = threading.Condition()
        self._calls: set[_Call] = set()
        self._thread: threading.Thread | None = None

    @contextmanager
    def call(
        self, label: str, peer: str, breaker: Callable[[], object] | None = None, server: str = "QuestDB"
    ) -> Iterator[_Call]:
        """Run the block as one call to ``server`` at ``peer`` (``host:port``); ``label`` says what the call is
        (e.g. ``ILP over http, table fx_market_data``) in the warning and the error.

        An exception leaving the block after the timeout becomes ``StallError``; a block that
        returns normally (even late) is left alone.
        """
        call = _Call(label, peer, breaker, time.monotonic(), self.warn_s)
        with self._cond:
            self._calls.add(call)
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="mkt-stall-watch", daemon=True)
                self._thread.start()
            self._cond.notify()
        try:
            yield call
        except Exception:
            if call.expired:
                waited = time.monotonic() - call.started
                self.log.warning(f"no answer from {peer} for {self.timeout_s:g} s ({label}): giving up")
                raise StallError(
                    f"{server} at {peer} ({label}): no answer for {waited:.0f}s, gave up after the stall timeout of "
                    f"{self.timeout_s:g}s ({STALL_TIMEOUT_FLAG} / {STALL_TIMEOUT_ENV}): the server is frozen or "
                    "overloaded; re-run the same command once it answers"
                ) from None
            raise
        finally:
            with self._cond:  # a breaker never runs once the call is over (it holds this lock while it runs)
                call.done = True
                self._calls.discard(call)

    def _watch(self) -> None:
        idle_since = time.monotonic()
        while True:
            lines: list[str] = []
            with self._cond:
                now = time.monotonic()
                if not self._calls:
                    if now - idle_since >= self.IDLE_S:
                        self._thread = None
                        return
                    self._cond.wait(self.IDLE_S - (now - idle_since))
                    continue
                idle_since = now
                wake = now + self.IDLE_S
                for call in list(self._calls):
                    lines += self._step(call, now - call.started)
                    due = call.next_break if call.expired else min(call.next_warning, self.timeout_s)
                    wake = min(wake, call.started + due)
            for line in lines:  # outside the lock: a logger may be slow (Dagster's writes to the event log)
                self.log.warning(line)
            with self._cond:
                if self._calls:
                    self._cond.wait(max(0.0, wake - time.monotonic()))

    def _step(self, call: _Call, waited: float) -> list[str]:
        """Warnings due for ``call`` after ``waited`` seconds; expires and breaks it at the timeout (lock held)."""
        lines = []
        while not call.expired and call.next_warning < self.timeout_s and waited >= call.next_warning:
            if call.next_warning == self.warn_s:
                self.stalls += 1
            lines.append(
                f"no answer from {call.peer} for {round(call.next_warning, 1):g} s, waiting ({call.label}; giving up "
                f"after {self.timeout_s:g} s: {STALL_TIMEOUT_FLAG} / {STALL_TIMEOUT_ENV})"
            )
            call.next_warning += self.warn_s
        if not call.expired and waited >= self.timeout_s:
            call.expired = True
            call.next_break = waited
        if call.expired and waited >= call.next_break:
            call.next_break = waited + BREAK_EVERY_S
            if call.breaker is not None:
                try:
                    call.breaker()
                except Exception:  # a breaker that cannot break leaves the client's own timeouts
                    pass
        return lines


def shutdown_fd(fd: int) -> bool:
    """Shut down (both ways) the socket behind descriptor ``fd``, leaving the descriptor open."""
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:
        return False
    try:
        sock.shutdown(socket.SHUT_RDWR)
        return True
    except OSError:
        return False
    finally:
        sock.close()


def _addresses(host: str, port: int) -> set[tuple[str, int]]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return set()
    return {(info[4][0], port) for info in infos}


def shutdown_peer_sockets(host: str, port: int) -> int:
    """Shut down every socket of this process connected to ``host:port``; how many (0 without ``/proc``)."""
    wanted = _addresses(host, port)
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return 0
    broken = 0
    for name in fds:
        try:
            if not os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                continue
            sock = socket.socket(fileno=os.dup(int(name)))
        except (OSError, ValueError):
            continue
        try:
            if sock.type != socket.SOCK_STREAM:
                continue
            peer = sock.getpeername()
            if isinstance(peer, tuple) and (peer[0], peer[1]) in wanted:
                sock.shutdown(socket.SHUT_RDWR)
                broken += 1
        except OSError:  # not connected, or not an internet socket
            pass
        finally:
            sock.close()
    return broken
