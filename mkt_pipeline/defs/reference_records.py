"""Reference closes recorded in Dagster, one record per market and UTC day.

A materialization of ``<market>/reference_prices`` for day D carries, as metadata, the close of
every symbol that day and where it came from. Hourly runs read the latest record of each day they
need, and seed (fetch and record) only the days nobody recorded yet, so re-running a partition
reproduces it exactly and two partitions that share a day use the same close for it (which keeps
prices continuous across midnight).
"""

import datetime as dt
from collections.abc import Mapping, Sequence

import dagster as dg

from mkt_pipeline.core.reference_prices import ReferencePrices, reference_days
from mkt_pipeline.core.timeline import Window
from mkt_pipeline.markets import references_for_days, universe

CLOSES = "closes"
SOURCES = "sources"


def reference_key(market: str) -> dg.AssetKey:
    return dg.AssetKey([market, "reference_prices"])


def fetch_days(market: str, days: Sequence[dt.date]) -> ReferencePrices:
    """Closes for exactly ``days`` (Yahoo, cached; the built-in table offline or on failure)."""
    return references_for_days(market, days)


def record_metadata(references: ReferencePrices, day: dt.date) -> dict:
    """What the record of one day holds: that day's close of every symbol and each symbol's source."""
    closes = {day.isoformat(): {s: float(c) for s, c in zip(references.symbols, references.close(day))}}
    return {
        CLOSES: dg.MetadataValue.json(closes),
        SOURCES: dg.MetadataValue.json(dict(references.sources)),
        "source": references.source,
        "day": day.isoformat(),
        "dagster/row_count": len(references.symbols),  # closes of this day, one per symbol
    }


def recorded_days(instance: dg.DagsterInstance, market: str, days: Sequence[dt.date]) -> dict[str, tuple[dict, dict]]:
    """The latest record of each day that has one: ``{day: (closes by symbol, sources by symbol)}``."""
    wanted = [d.isoformat() for d in days]
    found: dict[str, tuple[dict, dict]] = {}
    cursor = None
    while True:
        result = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=reference_key(market), asset_partitions=wanted), limit=100, cursor=cursor
        )
        for record in result.records:  # newest first: keep the first seen per day
            md = record.asset_materialization.metadata if record.asset_materialization else {}
            day = record.partition_key
            if day not in found and CLOSES in md and day in md[CLOSES].value:
                found[day] = (md[CLOSES].value[day], md[SOURCES].value if SOURCES in md else {})
        if not result.has_more or len(found) == len(wanted):
            return found
        cursor = result.cursor


def assemble(market: str, records: Mapping[str, tuple[dict, dict]]) -> ReferencePrices:
    """One ``ReferencePrices`` from day records (a symbol counts as fallback if any day fell back)."""
    symbols = universe(market)[0]
    closes = {day: tuple(float(c[s]) for s in symbols) for day, (c, _) in records.items()}
    sources = {s: "yahoo" for s in symbols}
    for _, src in records.values():
        for s, kind in src.items():
            if kind != "yahoo" and s in sources:
                sources[s] = kind
    return ReferencePrices(tuple(symbols), closes, sources)


def references_for_window(context, market: str, window: Window) -> tuple[ReferencePrices, list[str]]:
    """References for ``window`` from the records, seeding missing days; (references, days seeded)."""
    first, last = window.days()[0], window.days()[-1]
    days = reference_days(first, last)
    records = recorded_days(context.instance, market, days)
    missing = [d for d in days if d.isoformat() not in records]
    if missing:
        fetched = fetch_days(market, missing)
        for day in missing:
            meta = record_metadata(fetched, day)
            context.log_event(
                dg.AssetMaterialization(asset_key=reference_key(market), partition=day.isoformat(), metadata=meta)
            )
            records[day.isoformat()] = (meta[CLOSES].value[day.isoformat()], meta[SOURCES].value)
    return assemble(market, records), [d.isoformat() for d in missing]


def build_reference_asset(market: str) -> dg.AssetsDefinition:
    """``<market>/reference_prices``: one record of daily closes per UTC day."""
    from mkt_pipeline.defs.partitions import REFERENCE_PARTITIONS

    @dg.asset(
        key=reference_key(market),
        # a group of its own: selecting the market's group and Materialize offers the hourly partitions only
        group_name=f"{market}_reference",
        partitions_def=REFERENCE_PARTITIONS[market],
        # one run fetches a month of days at once; each day still gets its own record
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=31),
        kinds={"yahoo"},
        description=(
            f"Daily {market} reference closes (Yahoo Finance, cached; built-in levels when offline). "
            "Hourly runs reuse the latest record of each day, so re-runs reproduce their rows."
        ),
    )
    def reference_prices(context: dg.AssetExecutionContext):
        tw = context.partition_time_window
        days = Window.from_datetimes(tw.start, tw.end).days()
        fetched = fetch_days(market, days)
        for day in days:  # each day's record shows that day's closes only
            context.add_asset_metadata(record_metadata(fetched, day), partition_key=day.isoformat())
        return dg.MaterializeResult()

    return reference_prices
