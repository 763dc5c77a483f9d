"""Per-day reference prices: Yahoo Finance daily closes (through ``yfinance``), cached on disk, with an offline fallback.

Prices mean-revert toward these references (docs/data-model.md#stateless-time). A ``ReferencePrices`` object holds one
close per symbol per UTC day, already gap-filled, plus where each symbol's numbers came from; it is serialisable so a
re-run of a window can reproduce it exactly.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mkt_pipeline.core.keyed_random import keyed_rng

log = logging.getLogger(__name__)

SOURCE_YAHOO = "yahoo"
SOURCE_FALLBACK = "fallback"
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "mkt_pipeline"  # the faces pass MKT_CACHE_DIR as cache_dir


@dataclass(frozen=True)
class ReferencePrices:
    """Daily closes for a fixed symbol list; ``closes[day_iso][i]`` belongs to ``symbols[i]``."""

    symbols: tuple[str, ...]
    closes: Mapping[str, tuple[float, ...]]
    sources: Mapping[str, str]

    @property
    def source(self) -> str:
        """``yahoo``, ``fallback`` or ``yahoo+fallback`` when some symbols fell back."""
        kinds = sorted(set(self.sources.values()))
        return "+".join(sorted(kinds, key=lambda k: k != SOURCE_YAHOO))

    def close(self, day: dt.date) -> np.ndarray:
        """Closes for ``day``; a day after the last one held carries the latest close forward.

        A day before the first one held is an error rather than a guess: the rows of a window must
        not depend on which days happened to be loaded with it.
        """
        key = day.isoformat()
        if key not in self.closes:
            earlier = [d for d in self.closes if d <= key]
            if not earlier:
                raise KeyError(f"no reference close on or before {key} (held: {min(self.closes)}..{max(self.closes)})")
            key = max(earlier)
        return np.asarray(self.closes[key], dtype=np.float64)

    def days(self) -> list[str]:
        return sorted(self.closes)

    def to_json(self) -> dict:
        return {
            "symbols": list(self.symbols),
            "closes": {d: list(v) for d, v in sorted(self.closes.items())},
            "sources": dict(self.sources),
        }

    @classmethod
    def from_json(cls, data: Mapping) -> ReferencePrices:
        return cls(tuple(data["symbols"]), {d: tuple(v) for d, v in data["closes"].items()}, dict(data["sources"]))

    def merged(self, other: ReferencePrices) -> ReferencePrices:
        """This table with the days of ``other`` added (``other`` wins on overlap)."""
        if other.symbols != self.symbols:
            raise ValueError("cannot merge reference prices of different symbol lists")
        return ReferencePrices(self.symbols, {**self.closes, **other.closes}, {**self.sources, **other.sources})


def reference_days(first: dt.date, last: dt.date) -> list[dt.date]:
    """Every day a window over ``first``..``last`` can touch: from two days before ``first`` through ``last``.

    Prices interpolate from the previous day's close, and the engines look back up to an hour
    before a window, which at midnight reaches the previous day and so the close before that.
    """
    start = first - dt.timedelta(days=2)
    return [start + dt.timedelta(days=i) for i in range((last - start).days + 1)]


# Offline closes wander like real ones: locally a random walk (daily log sd = FALLBACK_DAILY_SHARE of
# the symbol's daily vol, the rest of a day's move comes from the intraday path), reverting to the
# built-in level over FALLBACK_MEMORY_DAYS, so a year-long backfill neither sits on one level nor drifts off.
FALLBACK_DAILY_SHARE = 1.0
FALLBACK_MEMORY_DAYS = 250
_FALLBACK_BLOCK_DAYS = 64
_EPOCH = dt.date(1970, 1, 1)


def fallback_wander(symbol: str, annual_vol: float, days: Sequence[dt.date]) -> np.ndarray:
    """Log deviation of the built-in close of ``symbol`` from its level on each of ``days``.

    A linearly tapered moving sum of keyed daily normals: each day's value depends only on the
    symbol and the date (never on the dataset seed or on which days were asked for).
    """
    if not len(days):
        return np.zeros(0)
    index = np.array([(d - _EPOCH).days for d in days], dtype=np.int64)
    taps = FALLBACK_MEMORY_DAYS
    first, last = int(index.min()) - taps + 1, int(index.max())
    blocks = range(first // _FALLBACK_BLOCK_DAYS, last // _FALLBACK_BLOCK_DAYS + 1)
    normals = np.concatenate(
        [keyed_rng(0, f"reference/fallback/{symbol}", b).standard_normal(_FALLBACK_BLOCK_DAYS) for b in blocks]
    )
    base = blocks[0] * _FALLBACK_BLOCK_DAYS
    weights = 1.0 - np.arange(taps) / taps  # today's draw fully, a draw `taps` days old not at all
    daily_sd = FALLBACK_DAILY_SHARE * annual_vol / np.sqrt(260.0)
    out = np.empty(len(index))
    for i, day in enumerate(index):
        window = normals[day - base - taps + 1 : day - base + 1][::-1]  # window[j] = draw of day - j
        out[i] = daily_sd * float(window @ weights)
    return out


def fallback_reference_prices(
    symbols: Sequence[str],
    levels: Mapping[str, float],
    days: Sequence[dt.date],
    annual_vols: Mapping[str, float] | None = None,
) -> ReferencePrices:
    """The built-in table: realistic levels that, given ``annual_vols``, wander day to day like real closes.

    Without ``annual_vols`` every day holds the same level.
    """
    days = list(days)
    columns = []
    for s in symbols:
        level = float(levels[s])
        if annual_vols is None:
            columns.append([level] * len(days))
        else:
            columns.append((level * np.exp(fallback_wander(s, float(annual_vols[s]), days))).tolist())
    closes = {d.isoformat(): tuple(col[i] for col in columns) for i, d in enumerate(days)}
    return ReferencePrices(tuple(symbols), closes, {s: SOURCE_FALLBACK for s in symbols})


def load_reference_prices(
    symbols: Sequence[str],
    tickers: Mapping[str, str],
    fallback_levels: Mapping[str, float],
    days: Sequence[dt.date],
    *,
    offline: bool = False,
    cache_dir: Path | None = None,
    timeout_s: float = 3.0,
    fallback_vols: Mapping[str, float] | None = None,
    implied: Mapping[str, Sequence[tuple[str, int]]] | None = None,
) -> ReferencePrices:
    """Yahoo daily closes for ``days`` (cached per ticker), falling back per symbol when unavailable.

    Tickers whose cache does not cover the days yet are fetched in one ``yfinance`` batch download
    (threaded, short timeout). ``offline`` (the faces' ``MKT_OFFLINE``) means the fallback table only,
    without touching the network. ``implied``: symbols whose close is the product of other symbols'
    closes raised to powers (an FX cross and its two USD legs), whatever the source said, so the table
    is consistent (see ``implied_closes``).
    """
    days = sorted(days)
    if offline or not days:
        return implied_closes(fallback_reference_prices(symbols, fallback_levels, days, fallback_vols), implied)
    cache = Path(cache_dir or DEFAULT_CACHE_DIR) / "yahoo"
    today = utc_today()
    series = {tickers[s]: _read_cache(cache, tickers[s]) for s in symbols}
    missing = [t for t, cached in series.items() if not _covers(cached, days, today)]
    if missing and _yahoo_reachable(cache):
        fresh = _download_closes(missing, days[0] - dt.timedelta(days=7), days[-1] + dt.timedelta(days=1), timeout_s)
        if not fresh:
            _remember_unreachable(cache, "the download gave no closes")
        for ticker in missing:
            # today's bar is still moving: it is not a close (today carries yesterday's close
            # forward), and caching it would make later backfills of today depend on when the
            # cache was filled
            closes = {d: v for d, v in fresh.get(ticker, {}).items() if d < today.isoformat()}
            if closes:
                series[ticker] = {**series[ticker], **closes}
                _write_cache(cache, ticker, series[ticker])
    closes: dict[str, list[float]] = {d.isoformat(): [] for d in days}
    sources: dict[str, str] = {}
    fallback = fallback_reference_prices(symbols, fallback_levels, days, fallback_vols)
    for i, sym in enumerate(symbols):
        filled = _fill_days(series[tickers[sym]], days)
        if filled is None:
            sources[sym] = SOURCE_FALLBACK
            filled = [fallback.closes[d.isoformat()][i] for d in days]
        else:
            sources[sym] = SOURCE_YAHOO
        for d, v in zip(days, filled):
            closes[d.isoformat()].append(v)
    result = implied_closes(ReferencePrices(tuple(symbols), {d: tuple(v) for d, v in closes.items()}, sources), implied)
    if result.source != SOURCE_YAHOO:
        fell_back = [s for s, src in sources.items() if src == SOURCE_FALLBACK]
        log.info("reference prices: built-in fallback used for %d of %d symbols", len(fell_back), len(symbols))
    return result


# Yahoo out of reach (no network, DNS or a firewall) is found out within PROBE_TIMEOUT_S and
# remembered for UNREACHABLE_REMEMBER_S in a marker file of the cache, so runs in between do not try
# again: without it every run paid the download's full timeouts (about 8 s) before falling back.
YAHOO_ADDRESS = ("query2.finance.yahoo.com", 443)
PROBE_TIMEOUT_S = 1.0
UNREACHABLE_REMEMBER_S = 600.0
UNREACHABLE_MARKER = "yahoo_unreachable.json"  # beside the closes' folder, in the cache directory


def _yahoo_reachable(cache: Path, now: float | None = None) -> bool:
    """False while a marker says Yahoo was out of reach, or when a TCP connection to it does not open
    within ``PROBE_TIMEOUT_S`` (name lookup included); then the marker is written."""
    import socket
    import threading
    import time

    now = time.time() if now is None else now
    try:
        marker = json.loads((cache.parent / UNREACHABLE_MARKER).read_text())
        if now < float(marker["until"]):
            log.debug(
                "yahoo: out of reach at %s (%s); not trying again before then", marker.get("since"), marker.get("why")
            )
            return False
    except (OSError, ValueError, KeyError, TypeError):
        pass
    outcome: list[str] = []

    def probe() -> None:
        try:
            socket.create_connection(YAHOO_ADDRESS, timeout=PROBE_TIMEOUT_S).close()
            outcome.append("")
        except OSError as exc:
            outcome.append(exc.strerror or type(exc).__name__)

    thread = threading.Thread(target=probe, name="yahoo-probe", daemon=True)  # name lookup has no timeout of its own
    thread.start()
    thread.join(PROBE_TIMEOUT_S)
    if outcome and outcome[0] == "":
        return True
    _remember_unreachable(cache, outcome[0] if outcome else f"no connection within {PROBE_TIMEOUT_S:g}s", now)
    return False


def _remember_unreachable(cache: Path, why: str, now: float | None = None) -> None:
    import time

    now = time.time() if now is None else now
    stamp = dt.datetime.fromtimestamp(now, dt.UTC).isoformat(timespec="seconds")
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        (cache.parent / UNREACHABLE_MARKER).write_text(
            json.dumps({"since": stamp, "until": now + UNREACHABLE_REMEMBER_S, "why": why})
        )
    except OSError:
        pass


def implied_closes(refs: ReferencePrices, implied: Mapping[str, Sequence[tuple[str, int]]] | None) -> ReferencePrices:
    """``refs`` with each symbol of ``implied`` set to ``Π close(leg) ** power`` over its legs, every day.

    A cross's source becomes ``yahoo`` only when all its legs came from Yahoo.
    """
    if not implied:
        return refs
    index = {s: i for i, s in enumerate(refs.symbols)}
    closes = {}
    for day, values in refs.closes.items():
        row = list(values)
        for sym, legs in implied.items():
            row[index[sym]] = float(np.prod([values[index[leg]] ** power for leg, power in legs]))
        closes[day] = tuple(row)
    sources = dict(refs.sources)
    for sym, legs in implied.items():
        sources[sym] = (
            SOURCE_YAHOO if all(refs.sources.get(leg) == SOURCE_YAHOO for leg, _ in legs) else SOURCE_FALLBACK
        )
    return ReferencePrices(refs.symbols, closes, sources)


def utc_today() -> dt.date:
    """The current UTC day (its bar is not a close yet)."""
    return dt.datetime.now(dt.UTC).date()


def _download_closes(
    tickers: Sequence[str], start: dt.date, end: dt.date, timeout_s: float
) -> dict[str, dict[str, float]]:
    """Daily closes by ISO day per ticker over ``[start, end)``, in one threaded yfinance batch.

    Any failure (no network, Yahoo refusing, an unexpected frame) gives no closes for the tickers
    concerned; the caller then falls back per symbol.
    """
    try:
        import yfinance  # imported here: engines and the CLI's --help stay light without it

        with _quiet_yfinance():
            frame = yfinance.download(
                list(tickers),
                start=start.isoformat(),
                end=end.isoformat(),
                interval="1d",
                auto_adjust=False,  # the traded close, as a chart shows it
                actions=False,
                threads=True,
                timeout=timeout_s,
                progress=False,
                multi_level_index=True,
            )
    except Exception as exc:  # yfinance raises whatever its HTTP stack raises
        log.debug("yahoo download of %d tickers failed: %s", len(tickers), exc)
        return {}
    if frame is None or frame.empty or "Close" not in frame.columns.get_level_values(0):
        return {}
    close = frame["Close"]
    out: dict[str, dict[str, float]] = {}
    for ticker in tickers:
        if ticker not in close.columns:
            continue
        values = close[ticker]
        out[ticker] = {
            day.date().isoformat(): float(v)
            for day, v in zip(values.index, values.to_numpy(dtype=float))
            if np.isfinite(v) and v > 0
        }
    return out


@contextlib.contextmanager
def _quiet_yfinance():
    """yfinance logs every failed ticker at ERROR and its pandas calls warn; the run reports the
    fallback itself (``references: fallback``), once."""
    logger = logging.getLogger("yfinance")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _cache_path(cache: Path, ticker: str) -> Path:
    return cache / f"{ticker.replace('/', '_')}.json"


def _read_cache(cache: Path, ticker: str) -> dict[str, float]:
    try:
        return {str(k): float(v) for k, v in json.loads(_cache_path(cache, ticker).read_text()).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def _write_cache(cache: Path, ticker: str, closes: Mapping[str, float]) -> None:
    try:
        cache.mkdir(parents=True, exist_ok=True)
        _cache_path(cache, ticker).write_text(json.dumps(dict(closes), sort_keys=True))
    except OSError:
        pass  # a read-only cache only costs a download next time


def _covers(cached: Mapping[str, float], days: Sequence[dt.date], today: dt.date) -> bool:
    """Past days are final: once the cache spans them (weekends have no bar), skip the network."""
    wanted = [d for d in days if d < today]
    return (
        bool(cached and wanted)
        and min(cached) <= wanted[0].isoformat()
        and max(cached) >= _last_weekday(wanted[-1]).isoformat()
    )


def _fill_days(series: Mapping[str, float] | None, days: Sequence[dt.date]) -> list[float] | None:
    """Carry the latest close at or before each day forward; the first known close backward."""
    if not series:
        return None
    known = sorted(series.items())
    out, i, last = [], 0, None
    for d in days:
        key = d.isoformat()
        while i < len(known) and known[i][0] <= key:
            last = known[i][1]
            i += 1
        out.append(last if last is not None else known[0][1])
    return out


def _last_weekday(day: dt.date) -> dt.date:
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    return day
