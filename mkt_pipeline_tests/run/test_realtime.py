"""Real-time driver: pacing and lookahead (fake and real clocks), catch-up without overlap, stop, limits,
reference refresh, and the CLI's signal handling in a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import pytest

from mkt_pipeline.core.reference_prices import ReferencePrices
from mkt_pipeline.core.tables import FX_TABLES, TIMESTAMP_NS, concat_batches
from mkt_pipeline.core.timeline import NS_PER_US, US_PER_S, Window
from mkt_pipeline.fx.engine import FxConfig, FxEngine
from mkt_pipeline.run.realtime import ReferenceRefresher, live_reference_window, pace_window, pin_references
from mkt_pipeline.sinks.base import Sink, TableNaming, WindowWriter
from mkt_pipeline.sinks.parquet import ParquetSink
from mkt_pipeline_tests.conftest import LIGHT_FLAGS, fx_references

LIGHT = FxConfig(
    market_data_min_eps=110, market_data_max_eps=150, core_min_eps=70, core_max_eps=100, min_levels=5, max_levels=5
)
T0 = 1_762_830_000  # 2025-11-11T03:00:00Z


def engine_for(window: Window) -> FxEngine:
    return FxEngine(LIGHT, fx_references(window))


class FakeClock:
    def __init__(self, now: float):
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class MemorySink(Sink):
    """Keeps committed windows with their batches and the clock at commit time."""

    def __init__(self, clock=time.time, on_commit=None):
        self.naming = TableNaming()
        self.clock = clock
        self.on_commit = on_commit
        self.commits: list[tuple[Window, float, list]] = []

    def prepare(self, schemas):
        pass

    @contextmanager
    def window(self, window):
        writer = _Collect()
        yield writer
        self.commits.append((window, self.clock(), writer.batches))
        if self.on_commit:
            self.on_commit(window)

    def latest_timestamp_us(self, schema):
        return None

    def table(self, schema):
        return concat_batches([b for _, _, batches in self.commits for b in batches if b.schema is schema])


class _Collect(WindowWriter):
    def __init__(self):
        self.batches = []

    def write(self, batch):
        self.batches.append(batch)


def row_us(batch) -> list[int]:
    ts = batch.timestamps
    return (ts // NS_PER_US if batch.schema.timestamp_kind == TIMESTAMP_NS else ts).tolist()


def assert_contiguous(windows: list[Window], start_us: int, end_us: int) -> None:
    assert windows[0].start_us == start_us and windows[-1].end_us == end_us
    assert all(a.end_us == b.start_us for a, b in zip(windows, windows[1:])), "gap or overlap between commits"


def all_rows_equal(sink: MemorySink, engine, window: Window) -> None:
    expected = [concat_batches(group) for group in zip(*engine.generate(window))]
    for schema, want in zip(FX_TABLES, expected):
        got = sink.table(schema)
        assert got.to_arrow().equals(want.to_arrow()), schema.base_name


# --------------------------------------------------------------------------------------------
# fake clock


def test_pacing_keeps_rows_at_most_lookahead_ahead_of_the_clock():
    window = Window(T0 * US_PER_S, (T0 + 10) * US_PER_S)
    clock = FakeClock(T0 - 3.5)
    sink = MemorySink(clock)
    result = pace_window(engine_for(window), sink, window, lookahead_s=2.0, clock=clock, sleep=clock.sleep)
    assert result.written_until_us == window.end_us and not result.stopped
    assert_contiguous([w for w, _, _ in sink.commits], window.start_us, window.end_us)
    for w, at, batches in sink.commits:
        assert w.end_us - w.start_us == US_PER_S  # one second per commit while keeping pace
        assert max(max(row_us(b), default=0) for b in batches) / US_PER_S <= at + 2.0
        # and not later than needed: committed within one poll of falling due
        assert at <= w.end_us / US_PER_S - 2.0 + 0.25 + 1e-9
    assert result.catch_up_commits == 0


def test_min_commit_groups_seconds_into_fewer_commits():
    """For file sinks: rows are held until min_commit_s seconds are due, then written at once."""
    window = Window(T0 * US_PER_S, (T0 + 12) * US_PER_S)
    clock = FakeClock(T0 - 3.5)
    sink = MemorySink(clock)
    engine = engine_for(window)
    pace_window(engine, sink, window, lookahead_s=2.0, clock=clock, sleep=clock.sleep, min_commit_s=5)
    windows = [w for w, _, _ in sink.commits]
    assert [w.seconds for w in windows] == [5, 5, 2]
    assert_contiguous(windows, window.start_us, window.end_us)
    for w, at, _ in sink.commits:
        assert w.end_us / US_PER_S <= at + 2.0  # never beyond the lookahead
    all_rows_equal(sink, engine, window)


def test_no_lookahead_writes_only_completed_seconds():
    window = Window(T0 * US_PER_S, (T0 + 5) * US_PER_S)
    clock = FakeClock(T0 + 0.2)
    sink = MemorySink(clock)
    pace_window(engine_for(window), sink, window, lookahead_s=0.0, clock=clock, sleep=clock.sleep)
    for w, at, _ in sink.commits:
        assert w.end_us / US_PER_S <= at


def test_catch_up_after_a_stall_without_overlapping_seconds():
    window = Window(T0 * US_PER_S, (T0 + 60) * US_PER_S)
    clock = FakeClock(T0 - 2.0)

    def stall(committed: Window):
        if committed.end_us == (T0 + 5) * US_PER_S:
            clock.now += 37.3  # e.g. the machine slept, or QuestDB paused us

    sink = MemorySink(clock, on_commit=stall)
    engine = engine_for(window)
    result = pace_window(engine, sink, window, lookahead_s=2.0, clock=clock, sleep=clock.sleep, max_group_s=10)
    windows = [w for w, _, _ in sink.commits]
    assert_contiguous(windows, window.start_us, window.end_us)
    assert result.catch_up_commits >= 4
    assert max(w.end_us - w.start_us for w in windows) == 10 * US_PER_S
    # caught up: after the backlog it is back to one-second commits at pace
    assert (windows[-1].end_us - windows[-1].start_us) == US_PER_S
    all_rows_equal(sink, engine, window)


def test_resumes_mid_second_and_ends_mid_second():
    window = Window(T0 * US_PER_S + 250_000, (T0 + 3) * US_PER_S + 500_000)
    clock = FakeClock(T0 - 1.0)
    sink = MemorySink(clock)
    engine = engine_for(window)
    pace_window(engine, sink, window, lookahead_s=2.0, clock=clock, sleep=clock.sleep)
    assert_contiguous([w for w, _, _ in sink.commits], window.start_us, window.end_us)
    all_rows_equal(sink, engine, window)
    # the last partial second is not written before its whole second falls due
    last, at, _ = sink.commits[-1]
    assert at + 2.0 >= T0 + 4


def test_row_limit_stops_at_the_second_that_reaches_it():
    window = Window(T0 * US_PER_S, (T0 + 100) * US_PER_S)
    clock = FakeClock(T0 + 50.0)  # 50 s behind: catching up, yet the limit is exact
    sink = MemorySink(clock)
    engine = engine_for(window)
    result = pace_window(engine, sink, window, clock=clock, sleep=clock.sleep, max_market_data_rows=1000)
    assert result.limit_reached
    seconds = (result.written_until_us - window.start_us) // US_PER_S
    counts = [engine.planned_counts(T0 + i, T0 + i + 1)["market_data"] for i in range(seconds)]
    assert sum(counts) >= 1000 > sum(counts[:-1])
    assert result.market_data_rows == sum(counts)


def test_stop_event_finishes_completed_seconds_and_returns():
    window = Window(T0 * US_PER_S, (T0 + 100) * US_PER_S)
    clock = FakeClock(T0 + 0.5)
    stop = threading.Event()

    def stop_after_3(committed: Window):
        if committed.end_us >= (T0 + 3) * US_PER_S and not stop.is_set():
            stop.set()
            clock.now += 4.0  # the completed seconds 3..6 are still owed when the stop arrives

    sink = MemorySink(clock, on_commit=stop_after_3)
    result = pace_window(engine_for(window), sink, window, clock=clock, sleep=clock.sleep, stop_event=stop)
    assert result.stopped
    assert (
        result.written_until_us == int(clock.now) * US_PER_S == (T0 + 5) * US_PER_S
    )  # every completed second, nothing ahead
    assert_contiguous([w for w, _, _ in sink.commits], window.start_us, result.written_until_us)


# --------------------------------------------------------------------------------------------
# references


def _refs(closes: dict[str, float]) -> ReferencePrices:
    return ReferencePrices(("A",), {d: (v,) for d, v in closes.items()}, {"A": "yahoo"})


def test_refreshed_references_only_change_days_not_reached_yet():
    current = _refs({"2025-11-10": 1.0, "2025-11-11": 1.1})
    fresh = _refs({"2025-11-10": 2.0, "2025-11-11": 2.1, "2025-11-12": 2.2})
    at_3am = T0 * US_PER_S  # 2025-11-11T03:00Z
    pinned = pin_references(current, fresh, at_3am)
    assert pinned.closes == {"2025-11-10": (1.0,), "2025-11-11": (1.1,), "2025-11-12": (2.2,)}
    # close to midnight the next day is pinned too (the path already looks into it)
    late = (T0 + 20 * 3600 + 1800) * US_PER_S  # 23:30Z
    assert pin_references(current, fresh, late) is current
    assert pin_references(pinned, fresh, at_3am) is pinned  # nothing new: same object


def test_reference_refresher_runs_in_background_and_survives_failures():
    window = live_reference_window(T0)
    base = fx_references(window)
    tomorrow = sorted(base.closes)[-1]
    bumped = ReferencePrices(base.symbols, {tomorrow: tuple(v * 1.01 for v in base.closes[tomorrow])}, base.sources)
    calls = []

    def load():
        calls.append(threading.current_thread().name)
        if len(calls) == 1:
            raise OSError("network down")
        return bumped

    engine = FxEngine(LIGHT, base)
    refresher = ReferenceRefresher(load, lambda refs: FxEngine(LIGHT, refs), interval_s=0.02).start()
    try:
        deadline = time.time() + 5
        while refresher.refreshes == 0 and time.time() < deadline:
            time.sleep(0.01)
    finally:
        refresher.stop()
    assert calls[0] == "mkt-reference-refresh"
    updated = refresher.engine_update(T0 * US_PER_S, engine)
    assert updated is not engine and updated.references.closes[tomorrow] == bumped.closes[tomorrow]
    assert refresher.engine_update(T0 * US_PER_S, updated) is updated  # nothing pending


# --------------------------------------------------------------------------------------------
# real clock


def test_short_real_run_into_parquet_tracks_the_wall_clock(tmp_path):
    start = int(time.time()) + 1
    window = Window(start * US_PER_S, (start + 3) * US_PER_S)
    parquet = ParquetSink(tmp_path)
    parquet.prepare(FX_TABLES)
    lead = []

    class Recording:
        naming = parquet.naming

        def __getattr__(self, name):  # the ledger is the Parquet sink's
            return getattr(parquet, name)

        @contextmanager
        def window(self, w):
            with parquet.window(w) as writer:
                yield writer
            lead.append((w, time.time()))

    result = pace_window(engine_for(window), Recording(), window, lookahead_s=2.0)
    assert result.written_until_us == window.end_us
    for w, at in lead:
        assert w.end_us / US_PER_S <= at + 2.0 + 0.05  # never more than the lookahead ahead
        assert w.end_us / US_PER_S >= at + 2.0 - 1.0 - 0.5  # and not lagging
    md = parquet.read(FX_TABLES[0]).column("timestamp").cast("int64").to_numpy()
    assert md.min() >= window.start_us and md.max() < window.end_us and len(md) >= 3 * 110


LIGHT_ARGS = LIGHT_FLAGS["fx"]
EQ_LIGHT_ARGS = LIGHT_FLAGS["equities"]


@pytest.mark.parametrize(
    "market,sig",
    [("fx", signal.SIGINT), ("fx", signal.SIGTERM), ("equities", signal.SIGINT)],  # equities: no lookahead
)
def test_signal_flushes_completed_seconds_and_exits_zero(tmp_path, market, sig):
    from mkt_pipeline.core.tables import EQUITIES_TABLES

    md_table, min_rows = (FX_TABLES[0], 110) if market == "fx" else (EQUITIES_TABLES[0], 1)
    env = {**os.environ, "MKT_OFFLINE": "1", "MKT_PARQUET_COMMIT_SECONDS": "1"}  # watch seconds land one by one
    light = (
        LIGHT_ARGS if market == "fx" else EQ_LIGHT_ARGS + ["--offsession_trades", "full", "--session_pacing", "false"]
    )
    cmd = [
        sys.executable,
        "-m",
        "mkt_pipeline.cli",
        market,
        "--mode",
        "real-time",
        "--sink",
        "parquet",
        "--parquet_dir",
        str(tmp_path),
        *light,
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sink = ParquetSink(tmp_path)

    def covered() -> list[tuple[int, int]]:
        return [(a, b) for a, b, _ in sink.parts(md_table)]

    try:
        deadline = time.time() + 20
        while time.time() < deadline and len(covered()) < 3:
            time.sleep(0.1)
        assert len(covered()) >= 3, proc.stderr.read() if proc.poll() is not None else "no data yet"
        sent = time.time()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert time.time() - sent < 5
    assert "stopped; wrote" in out
    parts = covered()
    assert all(b == a2 for (_, b), (a2, _) in zip(parts, parts[1:]))  # contiguous, no overlap
    assert parts[-1][1] >= int(sent) * US_PER_S  # every second completed before the signal is stored
    md = sink.read(md_table).column(md_table.timestamp).cast("int64").to_numpy()
    md_s = md // (US_PER_S * (NS_PER_US if md_table.timestamp_kind == TIMESTAMP_NS else 1))
    seconds = range(parts[0][0] // US_PER_S + 1, parts[-1][1] // US_PER_S)
    assert all((md_s == s).sum() >= min_rows for s in seconds)  # every whole second holds its rows


def test_cli_real_time_stops_at_end_ts(tmp_path, capsys):
    from mkt_pipeline.cli import main
    from mkt_pipeline.core.timeline import format_us

    end = (int(time.time()) + 2) * US_PER_S
    assert (
        main(
            [
                "fx",
                "--mode",
                "real-time",
                "--sink",
                "parquet",
                "--parquet_dir",
                str(tmp_path),
                *LIGHT_ARGS,
                "--end_ts",
                format_us(end),
            ]
        )
        == 0
    )
    assert "end reached" in capsys.readouterr().out
    assert ParquetSink(tmp_path).resume_after_us(FX_TABLES[0]) == end
    # a second run never writes behind stored data: nothing is left before --end_ts
    assert (
        main(
            [
                "fx",
                "--mode",
                "real-time",
                "--sink",
                "parquet",
                "--parquet_dir",
                str(tmp_path),
                *LIGHT_ARGS,
                "--end_ts",
                format_us(end),
            ]
        )
        == 0
    )
    assert "nothing to do" in capsys.readouterr().out


def test_stop_with_a_long_backlog_returns_within_the_grace_period():
    window = Window(T0 * US_PER_S, (T0 + 1000) * US_PER_S)
    clock = FakeClock(T0 + 500.0)  # 500 s owed
    stop = threading.Event()
    stop.set()
    sink = MemorySink(clock, on_commit=lambda w: setattr(clock, "now", clock.now + 0.5))  # each commit takes 0.5 s
    result = pace_window(
        engine_for(window), sink, window, clock=clock, sleep=clock.sleep, stop_event=stop, stop_grace_s=3.0
    )
    assert result.stopped and clock.now <= T0 + 500.0 + 3.5
    assert_contiguous([w for w, _, _ in sink.commits], window.start_us, result.written_until_us)
