"""The stall watch against real sockets: a listener that accepts and never answers is what a frozen
server looks like to a client (its kernel completes the handshake, its process never replies)."""

from __future__ import annotations

import logging
import socket
import time
from contextlib import contextmanager

import pytest

from mkt_pipeline.sinks.stall import StallError, StallWatch, shutdown_fd, shutdown_peer_sockets, warn_after


@contextmanager
def silent_server():
    """A loopback listener that never accepts: connections complete in the backlog and hear nothing."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=8)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def test_a_silent_server_is_warned_about_then_given_up_on_with_one_line(caplog):
    watch = StallWatch(1.0)
    assert watch.warn_s == 0.5
    with silent_server() as port, socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"SELECT 1\n")
        started = time.monotonic()
        with caplog.at_level(logging.WARNING), pytest.raises(StallError) as raised:
            with watch.call("PG wire, table t1", f"127.0.0.1:{port}", lambda: shutdown_fd(sock.fileno())):
                if sock.recv(1) == b"":  # woken by the breaker: the connection is shut down
                    raise ConnectionError("server closed the connection")
        took = time.monotonic() - started
    assert 1.0 <= took < 2.0
    message = str(raised.value)
    assert message.startswith(
        f"QuestDB at 127.0.0.1:{port} (PG wire, table t1): no answer for 1s, gave up after the stall timeout of 1s"
    )
    assert "\n" not in message and "--stall_timeout_secs / MKT_STALL_TIMEOUT_SECONDS" in message
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings[0].startswith(
        f"no answer from 127.0.0.1:{port} for 0.5 s, waiting (PG wire, table t1; giving up after 1 s"
    )
    assert warnings[-1] == f"no answer from 127.0.0.1:{port} for 1 s (PG wire, table t1): giving up"
    assert watch.stalls == 1


def test_a_call_that_answers_in_time_is_left_alone(caplog):
    watch = StallWatch(5.0)
    with caplog.at_level(logging.WARNING):
        with watch.call("ILP over http, table t2", "127.0.0.1:9"):
            time.sleep(0.05)
        # an error before the timeout is the caller's to report, unchanged
        with pytest.raises(ValueError, match="rejected"):
            with watch.call("ILP over http, table t2", "127.0.0.1:9"):
                raise ValueError("rejected")
    assert caplog.records == [] and watch.stalls == 0


def test_warnings_repeat_every_warn_interval_until_the_timeout(caplog):
    watch = StallWatch(1.0, warn_s=0.3)
    with caplog.at_level(logging.WARNING), pytest.raises(StallError):
        with watch.call("PG wire", "db:8812") as call:
            while not call.expired:
                time.sleep(0.02)
            raise ConnectionError("broken by the watch")
    lines = [r.getMessage() for r in caplog.records if "waiting" in r.getMessage()]
    waits = [line.split(" for ", 1)[1].split(" s", 1)[0] for line in lines]
    assert waits == ["0.3", "0.6", "0.9"]


def test_the_first_warning_comes_after_30_s_or_half_a_shorter_timeout():
    assert warn_after(120) == 30 and warn_after(600) == 30 and warn_after(40) == 20
    with pytest.raises(ValueError, match="must be > 0"):
        StallWatch(0)


def test_shutdown_peer_sockets_breaks_only_the_connections_to_that_endpoint():
    with silent_server() as a, silent_server() as b:
        with socket.create_connection(("127.0.0.1", a)) as to_a, socket.create_connection(("localhost", b)) as to_b:
            assert shutdown_peer_sockets("127.0.0.1", a) == 1
            to_a.settimeout(1.0)
            assert to_a.recv(1) == b""  # shut down: the read returns at once
            to_b.settimeout(0.2)
            with pytest.raises(TimeoutError):  # untouched: still waiting for its server
                to_b.recv(1)
            assert shutdown_peer_sockets("localhost", b) == 1


def test_the_stall_timeout_reaches_every_entry_point(clean_env, monkeypatch):
    import dagster as dg

    from mkt_pipeline.cli import parse_options, questdb_settings
    from mkt_pipeline.defs.resources import QuestDBResource
    from mkt_pipeline.sinks.questdb import QuestDBSettings, QuestDBSink

    assert QuestDBSettings().stall_timeout_s == 120
    assert questdb_settings(parse_options(["fx", "--stall_timeout_secs", "45"])).stall_timeout_s == 45
    monkeypatch.setenv("MKT_STALL_TIMEOUT_SECONDS", "7")
    assert questdb_settings(parse_options(["fx"])).stall_timeout_s == 7
    assert questdb_settings(parse_options(["fx", "--stall_timeout_secs", "9"])).stall_timeout_s == 9  # the flag wins
    with dg.build_resources({"questdb": QuestDBResource.from_env()}) as resources:
        settings = resources.questdb.settings()
    assert settings.stall_timeout_s == 7
    assert QuestDBSink(settings).stall.timeout_s == 7 and QuestDBSink(settings).stall.warn_s == 3.5
