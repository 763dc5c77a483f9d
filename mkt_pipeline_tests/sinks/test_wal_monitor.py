"""WAL backpressure driven by scripted lag values, a fake clock and a fake sleep."""

from __future__ import annotations

import logging

import pytest

from mkt_pipeline.sinks.wal_monitor import (
    WalLagTimeoutError,
    WalMonitor,
    WalStatus,
    WalSuspendedError,
    statuses_from_rows,
)


class Script:
    """Answers one scripted {table: lag} per poll; the clock advances only through ``sleep``."""

    def __init__(self, lags: list[dict[str, int]], suspended: dict[int, str] | None = None):
        self.lags = list(lags)
        self.suspended = suspended or {}
        self.polls = 0
        self.now = 0.0
        self.sleeps: list[float] = []

    def fetch(self, tables):
        step = min(self.polls, len(self.lags) - 1)
        self.polls += 1
        out = {}
        for table, lag in self.lags[step].items():
            out[table] = WalStatus(
                table,
                writer_txn=100,
                sequencer_txn=100 + lag,
                suspended=table == self.suspended.get(step),
                error="disk full" if table == self.suspended.get(step) else "",
            )
        return out

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self):
        return self.now


def monitor(script: Script, **kw) -> WalMonitor:
    kw.setdefault("pause_above", 5)
    kw.setdefault("resume_at", 1)
    kw.setdefault("poll_interval_s", 0.5)
    return WalMonitor(script.fetch, sleep=script.sleep, clock=script.clock, where="db:8812", **kw)


def test_no_pause_while_lag_is_at_or_below_threshold():
    script = Script([{"md": 0}, {"md": 5}, {"md": 3}])
    m = monitor(script)
    for _ in range(3):
        m.throttle(["md"], force=True)
    assert script.sleeps == [] and m.pauses == 0
    assert m.max_lag_seen == 5


def test_pause_above_threshold_and_resume_with_hysteresis(caplog):
    # 7 > 5 pauses; 4 and 2 are below the pause threshold but above resume_at=1, so it keeps waiting
    script = Script([{"md": 7}, {"md": 6}, {"md": 4}, {"md": 2}, {"md": 1}, {"md": 9}])
    m = monitor(script)
    with caplog.at_level(logging.WARNING, logger="mkt_pipeline.sinks.wal_monitor"):
        m.throttle(["md"], force=True)
    assert script.polls == 5
    assert script.sleeps == [0.5] * 4
    assert m.pauses == 1 and m.paused_s == pytest.approx(2.0)
    assert m.max_lag_seen == 7
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "WAL lag on md is 7 transactions (> 5): pausing ingestion until it drains to 1"
    assert messages[1] == "WAL lag drained to 1 after 2.0s: resuming ingestion"


def test_worst_table_decides_and_unwritten_tables_are_ignored():
    script = Script([{"md": 0, "cp": 8, "other": 50}, {"md": 0, "cp": 0, "other": 50}])
    m = monitor(script)
    m.throttle(["md", "cp"], force=True)
    assert m.pauses == 1 and script.polls == 2
    assert m.max_lag_seen == 8  # 'other' is not written by this run


def test_polls_are_rate_limited_by_the_interval():
    script = Script([{"md": 0}])
    m = monitor(script, poll_interval_s=1.0)
    m.throttle(["md"])
    m.throttle(["md"])
    assert script.polls == 1
    script.now += 1.0
    m.throttle(["md"])
    assert script.polls == 2


def test_suspended_table_stops_with_the_resume_fix():
    script = Script([{"md": 0}, {"md": 9}, {"md": 9}], suspended={2: "md"})
    m = monitor(script)
    m.throttle(["md"], force=True)
    with pytest.raises(WalSuspendedError) as err:
        m.throttle(["md"], force=True)
    assert (
        str(err.value)
        == "QuestDB table md at db:8812 is suspended (disk full); fix the cause, then run: ALTER TABLE md RESUME WAL"
    )


def test_lag_that_never_drains_times_out():
    script = Script([{"md": 20}])
    m = monitor(script, max_pause_s=3.0)
    with pytest.raises(WalLagTimeoutError, match="stayed at 20 transactions"):
        m.throttle(["md"], force=True)
    assert sum(script.sleeps) > 3.0


def test_wait_drained_returns_zero_once_applied():
    script = Script([{"md": 3}, {"md": 1}, {"md": 0}])
    m = monitor(script)
    assert m.wait_drained(["md"], timeout_s=10) == 0
    assert script.polls == 3


class Moving:
    """A table whose writer and sequencer both advance while it is read (ingestion goes on)."""

    def __init__(self, steps: list[tuple[int, int]]):
        self.steps, self.polls, self.now = steps, 0, 0.0

    def fetch(self, tables):
        writer, sequencer = self.steps[min(self.polls, len(self.steps) - 1)]
        self.polls += 1
        return {"md": WalStatus("md", writer_txn=writer, sequencer_txn=sequencer)}

    def sleep(self, seconds):
        self.now += seconds


def test_wait_applied_waits_for_what_was_committed_before_not_after():
    # committed up to 10 when asked; the writer reaches 10 while new transactions keep arriving
    script = Moving([(4, 10), (7, 12), (10, 15), (13, 16)])
    m = WalMonitor(script.fetch, sleep=script.sleep, clock=lambda: script.now)
    assert m.wait_applied(["md"], timeout_s=10) == 0
    assert script.polls == 3, "returns once transaction 10 is applied, although the lag is still 5"
    # wait_drained on the same history would still be waiting for a lag of 0
    script = Moving([(4, 10), (7, 12), (10, 15), (13, 16)])
    assert WalMonitor(script.fetch, sleep=script.sleep, clock=lambda: script.now).wait_drained(["md"], timeout_s=1) == 3


def test_wait_applied_reports_what_is_left_at_the_timeout():
    script = Moving([(4, 10), (5, 11)])
    m = WalMonitor(script.fetch, sleep=script.sleep, clock=lambda: script.now)
    assert m.wait_applied(["md"], timeout_s=1) == 5


def test_invalid_hysteresis_rejected():
    with pytest.raises(ValueError):
        WalMonitor(lambda t: {}, pause_above=2, resume_at=2)


def test_statuses_from_wal_tables_rows():
    rows = [("md", False, 10, 14, None), ("cp", "true", 3, 3, "boom"), ("zz", False, 0, 9, None)]
    out = statuses_from_rows(rows, ["md", "cp"])
    assert out == {"md": WalStatus("md", 10, 14, False, ""), "cp": WalStatus("cp", 3, 3, True, "boom")}
    assert out["md"].lag == 4
