"""Ingestion into a real QuestDB over ILP/HTTP and over QWP: committed rows/s against each protocol's
own ceiling, and the whole command's time against its writing time, in one run on one server.

For each market (fx, equities), book depth (3 and 40 levels) and protocol (``http``: ILP over
HTTP; ``ws``: QWP over WebSocket, QuestDB 9.4+), one fresh process measures:

* pipeline: engine -> ``run_window`` -> ``QuestDBSink`` (the path of the CLI and the Dagster steps)
  into fresh tables; the clock stops once every table's WAL is applied, and the rows stored are
  counted back with SQL. ``committed/s`` = rows stored / that time.
* ceiling: the same window generated beforehand and encoded beforehand into what the bare
  ``questdb`` client takes (ILP: pandas frames into a ``Sender`` buffer, one flush per slice of
  the sink's size; QWP: Arrow tables into ``QuestDB.dataframe``), sent into other fresh tables and
  timed the same way. ``ratio`` = pipeline / ceiling (goal >= 0.8).
* gen: the seconds generating the window alone takes (one core, nothing sent): the pipeline
  generates and sends at once, so with too little free CPU its time tends to gen + ceiling time.
* cli: ``mkt-pipeline <market> --protocol P`` over the same window into a third set of tables,
  timed from start to exit in a fresh interpreter (``cli s``), and the writing time it reports
  itself (``cli wrt``); ``cli/write`` = ``cli s`` / the pipeline's writing time (goal <= 1.25).

``qwp/ilp`` (printed after the table) = QWP's committed rows/s / ILP's, per market and depth
(goal >= 1.5 at 3 levels). Peak memory is the case process's ru_maxrss plus its children's (the
generation child and the CLI run), in MB. Every table a case creates is dropped at its end.

CPU seconds, when the server runs on this machine (its process found by its HTTP port): ``cpu pipe``
and ``cpu ceil`` are the case process's CPU (all threads, the generation child included) + the
server's, while the pipeline and the ceiling ran. On a shared machine their quotient ``cpu ratio`` =
cpu ceil / cpu pipe says what ``ratio`` becomes when the cores are the limit, without the noise of
other work: the pipeline's extra CPU is essentially generation, which the ceiling did beforehand.

    ../shared/questdb/qdb start --version 9.4 --root "$(mktemp -d)" --http 9000 --pg 8812 --ilp 9009
    .venv/bin/python bench/bench_questdb.py [--host 127.0.0.1 --http-port 9000 --pg-port 8812]
        [--markets fx equities] [--levels 3 40] [--protocols http ws] [--seconds fx:3:60 ...]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MKT_OFFLINE", "1")

WAL_TIMEOUT_S = 1800.0
# seconds of data per (market, levels) at the markets' default rates: small enough for a shared machine
DEFAULT_SECONDS = ["fx:3:60", "fx:40:15", "equities:3:30", "equities:40:10"]
START = {"fx": "2025-06-02T10:00:00Z", "equities": "2025-06-02T14:00:00Z"}  # equities: 10:00 in New York


def _rss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024.0


def _server_pid(port: int) -> int | None:
    """The process listening on ``port`` on this machine (``ss``), or None."""
    try:
        out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"pid=(\d+)", out)
    return int(found.group(1)) if found else None


def _cpu_s(server_pid: int | None) -> tuple[float, float]:
    """CPU seconds so far of this process and its reaped children, and of the server (nan when unknown)."""
    own = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        use = resource.getrusage(who)
        own += use.ru_utime + use.ru_stime
    server = float("nan")
    if server_pid is not None:
        try:
            with open(f"/proc/{server_pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            server = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return own, server


def _cpu_since(started: tuple[float, float], server_pid: int | None) -> tuple[float, float]:
    now = _cpu_s(server_pid)
    return now[0] - started[0], now[1] - started[1]


def _engine(market: str, levels: int, window):
    from mkt_pipeline.markets import market_references

    refs = market_references(market, window, offline=True)
    if market == "fx":
        from mkt_pipeline.fx.engine import FxConfig, FxEngine

        return FxEngine(FxConfig(min_levels=levels, max_levels=levels), refs)
    from mkt_pipeline.equities.engine import EquitiesConfig, EquitiesEngine

    return EquitiesEngine(EquitiesConfig(min_levels=levels, max_levels=levels), refs)


def _bare_ilp(settings, prepared) -> None:
    from mkt_pipeline.sinks.questdb import make_sender

    sender = make_sender(settings)
    sender.establish()
    try:
        buf = sender.new_buffer()
        for name, frame, symbols, at in prepared:
            buf.dataframe(frame, table_name=name, symbols=symbols, at=at)
            sender.flush(buf)
    finally:
        sender.close(flush=False)


def _bare_qwp(settings, prepared) -> None:
    import questdb

    from mkt_pipeline.sinks.questdb import QWP_ROWS_PER_BATCH, qwp_conf

    with questdb.connect(qwp_conf(settings)) as db:
        for name, table, symbols, at in prepared:
            db.dataframe(table, table_name=name, symbols=symbols, at=at, max_rows_per_batch=QWP_ROWS_PER_BATCH)


def _case(
    market: str, levels: int, seconds: int, protocol: str, host: str, http_port: int, pg_port: int, out: mp.Queue
) -> None:
    import numpy as np

    from mkt_pipeline.core.timeline import Window, format_us, parse_timestamp
    from mkt_pipeline.run.ingest import run_window, wants_process
    from mkt_pipeline.sinks import ilp, qwp
    from mkt_pipeline.sinks.base import TableNaming
    from mkt_pipeline.sinks.questdb import QuestDBSettings, QuestDBSink, pg_connect

    start = parse_timestamp(START[market])
    window = Window(start, start + seconds * 1_000_000)
    engine = _engine(market, levels, window)
    settings = QuestDBSettings(host=host, http_port=http_port, pg_port=pg_port, protocol=protocol, create_views=False)
    run_id = uuid.uuid4().hex[:6]
    suffixes = {k: f"_bq{run_id}{k[0]}" for k in ("pipeline", "ceiling", "cli")}

    def new_sink(which: str) -> QuestDBSink:
        sink = QuestDBSink(settings, TableNaming(suffix=suffixes[which]))
        sink.prepare(engine.schemas)
        return sink

    def committed(sink: QuestDBSink, started: float, suffix: str) -> tuple[int, float]:
        """Wait for WAL apply on every table; rows stored (counted by SQL) and seconds since ``started``."""
        lag = sink.monitor.wait_drained([TableNaming(suffix=suffix).name(s) for s in engine.schemas], WAL_TIMEOUT_S)
        elapsed = time.perf_counter() - started
        if lag:
            raise RuntimeError(f"WAL still {lag} transactions behind after {WAL_TIMEOUT_S:.0f}s on {host}:{pg_port}")
        with pg_connect(settings) as conn:
            rows = sum(
                conn.execute(f"SELECT count() FROM {TableNaming(suffix=suffix).name(s)}").fetchone()[0]
                for s in engine.schemas
            )
        return rows, elapsed

    server_pid = _server_pid(http_port) if host in ("127.0.0.1", "localhost") else None
    try:
        sink = new_sink("pipeline")
        cpu_started, started = _cpu_s(server_pid), time.perf_counter()
        result = run_window(engine, sink, window, chunk_seconds=900)
        stored, elapsed = committed(sink, started, suffixes["pipeline"])
        cpu_pipeline = _cpu_since(cpu_started, server_pid)
        sink.close()
        r = dict(market=market, levels=levels, seconds=seconds, protocol=protocol, rows=result.total_rows, stored=stored,
                 pipeline=stored / elapsed, write_s=elapsed, producer="process" if wants_process(engine, window) else "thread")  # fmt: skip

        # the ceiling: the same rows, generated and encoded before the clock starts, sent by the bare client
        sink = new_sink("ceiling")
        naming = TableNaming(suffix=suffixes["ceiling"])
        prepared = []
        gen_started = time.perf_counter()
        batches = [b.take(np.arange(len(b))) for group in engine.generate(window) for b in group if len(b)]
        r["gen_s"] = time.perf_counter() - gen_started  # generating alone, on one core
        for batch in batches:
            name = naming.name(batch.schema)
            for lo, hi in ilp.slices(ilp.row_size_estimate(batch, name), settings.flush_bytes):
                data = qwp.table(batch, lo, hi) if settings.qwp else ilp.frame(batch, lo, hi)
                prepared.append((name, data, qwp.symbol_columns(batch), batch.schema.timestamp))
        cpu_started, started = _cpu_s(server_pid), time.perf_counter()
        (_bare_qwp if settings.qwp else _bare_ilp)(settings, prepared)
        stored_ceiling, _ = committed(sink, started, suffixes["ceiling"])
        elapsed_ceiling = time.perf_counter() - started
        cpu_ceiling = _cpu_since(cpu_started, server_pid)
        sink.close()
        del prepared, batches
        r.update(ceiling=stored_ceiling / elapsed_ceiling, ceiling_rows=stored_ceiling)
        r.update(
            cpu_pipe=cpu_pipeline if server_pid else float("nan"), cpu_ceil=cpu_ceiling if server_pid else float("nan")
        )

        # the whole command, start to exit, in a fresh interpreter
        cmd = [sys.executable, "-m", "mkt_pipeline.cli", market, "--mode", "faster-than-life", "--protocol", protocol,
               "--host", host, "--http_port", str(http_port), "--pg_port", str(pg_port), "--suffix", suffixes["cli"],
               "--create_views", "false", "--min_levels", str(levels), "--max_levels", str(levels),
               "--start_ts", format_us(window.start_us), "--end_ts", format_us(window.end_us), "--chunk_seconds", "900"]  # fmt: skip
        started = time.perf_counter()
        run = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        r["cli_s"] = time.perf_counter() - started
        if run.returncode != 0:
            raise RuntimeError(f"the CLI failed: {run.stderr.strip()[-300:]}")
        wrote = re.search(r"wrote [\d,]+ rows in ([\d.]+)s", run.stdout)
        r["cli_write_s"] = float(wrote.group(1)) if wrote else float("nan")  # the CLI's own writing time
        r["rss"] = _rss_mb(resource.RUSAGE_SELF) + _rss_mb(resource.RUSAGE_CHILDREN)
        out.put(r)
    finally:
        with pg_connect(settings) as conn:
            for (name,) in conn.execute("SELECT table_name FROM tables()").fetchall():
                if name.endswith(tuple(suffixes.values())):
                    conn.execute(f"DROP TABLE IF EXISTS {name}")


def _cpu(own_server: tuple[float, float]) -> str:
    return "{:.2f}+{:.2f}".format(*own_server)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("QUESTDB_HOST", "127.0.0.1"))
    parser.add_argument("--http-port", type=int, default=int(os.environ.get("QUESTDB_HTTP_PORT", "9000")))
    parser.add_argument("--pg-port", type=int, default=int(os.environ.get("QUESTDB_PG_PORT", "8812")))
    parser.add_argument("--markets", nargs="+", default=["fx", "equities"], choices=["fx", "equities"])
    parser.add_argument("--levels", type=int, nargs="+", default=[3, 40])
    parser.add_argument("--protocols", nargs="+", default=["http", "ws"], choices=["http", "ws"])
    parser.add_argument("--seconds", nargs="+", default=DEFAULT_SECONDS, metavar="MARKET:LEVELS:SECONDS",
                        help="seconds of data (default rates) per market and book depth")  # fmt: skip
    args = parser.parse_args(argv)
    seconds = {(m, int(k)): int(v) for m, k, v in (item.split(":") for item in args.seconds)}

    ctx = mp.get_context("spawn")
    print(f"load average at the start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"{'market':>8} {'levels':>6} {'secs':>5} {'proto':>5} {'rows':>9} {'committed/s':>11} {'ceiling/s':>10} {'ratio':>5} "
          f"{'gen s':>6} {'write s':>7} {'cli s':>6} {'cli wrt':>7} {'cli/write':>9} {'peak MB':>7} "
          f"{'cpu pipe':>11} {'cpu ceil':>11} {'cpu ratio':>9}", flush=True)  # fmt: skip
    rates: dict[tuple[str, int, str], float] = {}
    for market in args.markets:
        for levels in args.levels:
            for protocol in args.protocols:
                out = ctx.Queue()
                secs = seconds.get((market, levels), 30)
                case = ctx.Process(
                    target=_case, args=(market, levels, secs, protocol, args.host, args.http_port, args.pg_port, out)
                )
                case.start()
                case.join()
                if case.exitcode != 0 or out.empty():
                    print(f"{market:>8} {levels:>6} {protocol:>5} case failed (exit {case.exitcode})")
                    return 1
                r = out.get()
                assert r["stored"] == r["rows"] == r["ceiling_rows"], r  # every row sent is visible, in both runs
                rates[market, levels, protocol] = r["pipeline"]
                print(
                    f"{market:>8} {levels:>6} {secs:>5} {protocol:>5} {r['rows']:>9,} {r['pipeline']:>11,.0f} {r['ceiling']:>10,.0f} "
                    f"{r['pipeline'] / r['ceiling']:>5.2f} {r['gen_s']:>6.2f} {r['write_s']:>7.2f} {r['cli_s']:>6.2f} "
                    f"{r['cli_write_s']:>7.2f} {r['cli_s'] / r['write_s']:>9.2f} "
                    f"{r['rss']:>7,.0f} {_cpu(r['cpu_pipe']):>11} {_cpu(r['cpu_ceil']):>11} {sum(r['cpu_ceil']) / sum(r['cpu_pipe']):>9.2f}",
                    flush=True,
                )
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for market in args.markets:
        for levels in args.levels:
            if (market, levels, "ws") in rates and (market, levels, "http") in rates:
                print(
                    f"qwp/ilp {market} {levels} levels: {rates[market, levels, 'ws'] / rates[market, levels, 'http']:.2f}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
