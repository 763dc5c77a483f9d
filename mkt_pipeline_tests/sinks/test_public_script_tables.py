"""Tables made by the public equities script (designated ``timestamp``, ``eq_`` prefix) on a real QuestDB.

With ``--timestamp_column timestamp`` a run appends to them; with the default it stops before
writing, naming the column. Tables without DEDUP keys are refused with the ALTER that fixes them.
"""

from __future__ import annotations

import pytest

from mkt_pipeline.cli import EXIT_FAILED, main

pytestmark = pytest.mark.questdb

# The public script's schema: the seed document's, with the designated timestamp renamed.
PUBLIC_DDL = {
    "equities_market_data": (
        "CREATE TABLE {name} (timestamp TIMESTAMP_NS, symbol SYMBOL CAPACITY 256, venue SYMBOL CAPACITY 32, "
        "bids DOUBLE[][], asks DOUBLE[][]) timestamp(timestamp) PARTITION BY HOUR WAL{dedup}"
    ),
    "equities_trades": (
        "CREATE TABLE {name} (timestamp TIMESTAMP_NS, symbol SYMBOL CAPACITY 256, venue SYMBOL CAPACITY 32, "
        "price DOUBLE, size LONG, side SYMBOL, cond SYMBOL) timestamp(timestamp) PARTITION BY DAY WAL{dedup}"
    ),
}
DEDUP = " DEDUP UPSERT KEYS(timestamp, symbol, venue)"


def run(questdb, suffix, *extra) -> int:
    return main([
        "equities", "--mode", "faster-than-life", *questdb.cli_flags(), "--prefix", "eq_", "--suffix", suffix, "--create_views", "false",
        "--market_data_min_eps", "300", "--market_data_max_eps", "400", "--trades_min_eps", "50", "--trades_max_eps", "80",
        "--min_levels", "3", "--max_levels", "3", "--start_ts", "2025-11-11T15:00:00Z", "--end_ts", "2025-11-11T15:00:05Z", *extra,
    ])  # fmt: skip


def create_public_tables(questdb, suffix, dedup=DEDUP) -> dict[str, str]:
    names = {base: f"eq_{base}{suffix}" for base in PUBLIC_DDL}
    for base, name in names.items():
        questdb.execute(PUBLIC_DDL[base].format(name=name, dedup=dedup))
    return names


def counts(questdb, names) -> dict[str, int]:
    return {name: questdb.query(f"SELECT count() FROM {name}")[0][0] for name in names.values()}


def test_timestamp_column_appends_to_the_public_scripts_tables(questdb, qdb_suffix, capsys):
    names = create_public_tables(questdb, qdb_suffix)
    # the default names the column timestamp_ns: refused before anything is written
    assert run(questdb, qdb_suffix) == EXIT_FAILED
    err = capsys.readouterr().err
    assert f"QuestDB table {names['equities_market_data']}" in err and "column timestamp_ns is missing" in err
    assert counts(questdb, names) == {n: 0 for n in names.values()}
    # the public script's name: rows land in its tables, and a re-run changes nothing
    assert run(questdb, qdb_suffix, "--timestamp_column", "timestamp") == 0
    questdb.wait_until(lambda: all(c > 0 for c in counts(questdb, names).values()), 30, "rows to apply")
    first = counts(questdb, names)
    assert run(questdb, qdb_suffix, "--timestamp_column", "timestamp", "--overwrite", "true") == 0
    questdb.wait_until(
        lambda: (
            questdb.query(f"SELECT sum(sequencerTxn - writerTxn) FROM wal_tables() WHERE name LIKE '%{qdb_suffix}'")[0][
                0
            ]
            == 0
        ),
        30,
        "WAL",
    )
    assert counts(questdb, names) == first


def test_tables_without_dedup_keys_are_refused_with_the_alter_that_fixes_them(questdb, qdb_suffix, capsys):
    names = create_public_tables(questdb, qdb_suffix, dedup="")
    assert run(questdb, qdb_suffix, "--timestamp_column", "timestamp") == EXIT_FAILED
    err = capsys.readouterr().err
    md = names["equities_market_data"]
    fix = f"ALTER TABLE {md} DEDUP ENABLE UPSERT KEYS(timestamp, symbol, venue)"
    assert "DEDUP UPSERT KEYS are (none)" in err and fix in err
    for name in names.values():
        questdb.execute(f"ALTER TABLE {name} DEDUP ENABLE UPSERT KEYS(timestamp, symbol, venue)")
    assert run(questdb, qdb_suffix, "--timestamp_column", "timestamp") == 0
