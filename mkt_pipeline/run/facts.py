"""Measure the stylised facts (docs/data-model.md#realism-bands) on a stored dataset, and draw the pictures.

``measure_dataset`` reads a window of one market back from a sink (the Parquet dataset or QuestDB,
through the bounded ``stored_rows`` readers), ten minutes at a time, feeds the rows to the market's
tape from ``core.facts`` and returns the §11 table. ``draw_pictures`` writes the PNG files
(matplotlib, imported only when pictures are asked for, Agg backend: no display needed).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mkt_pipeline.core import facts as cf
from mkt_pipeline.core.cross_facts_fx import FxMarketTape
from mkt_pipeline.core.reference_prices import ReferencePrices, load_reference_prices
from mkt_pipeline.core.tables import EQUITIES_MARKET_DATA, EQUITIES_TRADES, FX_CORE_PRICE, FX_MARKET_DATA, FX_TRADES
from mkt_pipeline.core.timeline import SECONDS_PER_DAY, US_PER_S, Window

FX_MAJORS = ("EURUSD", "USDJPY", "GBPUSD", "USDCHF", "AUDUSD", "USDCAD", "NZDUSD")
EQUITIES_MEGA_CAPS = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META")
DAILY_CLOSE_DAYS = 120  # the history the daily volatility and the long-run wander are measured on
SLICE_S = 600  # seconds read at once: bounds the rows in flight (an hour of default-rate equities is ~23 M quotes)


@dataclass
class FactsReport:
    """The measured table of one market over one window, and the tape it came from (for pictures)."""

    market: str
    window: Window
    facts: list[cf.Fact]
    tape: Any
    reference_source: str
    extra: dict = field(default_factory=dict)
    market_facts: list[cf.Fact] = field(default_factory=list)  # one market: instruments together, flow and impact

    @property
    def passed(self) -> int:
        return sum(f.passed for f in self.facts + self.market_facts)

    def table(self) -> str:
        title = f"{self.market}: {self.window} (reference closes: {self.reference_source})"
        if not self.market_facts:
            return cf.format_table(self.facts, title)
        return (
            cf.format_table(self.facts, title)
            + "\n\n"
            + cf.format_table(self.market_facts, f"{self.market}: one market")
        )


def _universe(market: str):
    if market == "fx":
        from mkt_pipeline.fx import universe as u
    else:
        from mkt_pipeline.equities import universe as u
    return u


def business_closes(
    market: str, end_day: dt.date, days: int = DAILY_CLOSE_DAYS, offline: bool = False
) -> tuple[dict[str, np.ndarray], str]:
    """Closes of the ``days`` business days up to ``end_day`` per symbol (weekdays for FX, NYSE sessions
    for equities): Yahoo's when reachable (cached), else the built-in fallback the engines use."""
    u = _universe(market)
    calendar_days = [end_day - dt.timedelta(days=i) for i in range(int(days * 1.6) + 10)][::-1]
    if market == "fx":
        business = [d for d in calendar_days if d.weekday() < 5]
    else:
        from mkt_pipeline.equities.session import trading_day

        business = [d for d in calendar_days if trading_day(d) is not None]
    business = business[-days:]
    refs: ReferencePrices = load_reference_prices(
        u.SYMBOLS,
        u.YAHOO_TICKERS,
        u.FALLBACK_LEVELS,
        calendar_days,
        offline=offline,
        fallback_vols=u.FALLBACK_VOLS,
        implied=getattr(u, "IMPLIED_CROSSES", None),
    )
    table = np.array([refs.close(d) for d in business])
    return {s: table[:, i] for i, s in enumerate(refs.symbols)}, refs.source


def equities_sessions(window: Window) -> list[cf.Session]:
    from mkt_pipeline.equities.session import trading_days

    return [
        cf.Session(d.pre_open_s, d.open_s, d.close_s, d.post_end_s)
        for d in trading_days(window.first_second, window.end_second)
    ]


def new_tape(market: str, window: Window, timestamp: str | None = None):
    """The market's empty tape for ``window``."""
    u = _universe(market)
    if market == "fx":
        pips = [p.pip for p in u.PAIRS]
        return FxMarketTape(
            u.SYMBOLS,
            pips,
            FX_MAJORS,
            window.start_us,
            window.end_us,
            timestamp or FX_MARKET_DATA.timestamp,
            implied=u.IMPLIED_CROSSES,
        )
    from mkt_pipeline.run.facts_equities_market import market_tape  # the one-market rows ride on the same slices

    return cf.EquitiesTape(
        u.SYMBOLS,
        u.VENUES,
        EQUITIES_MEGA_CAPS,
        equities_sessions(window),
        window.start_us,
        window.end_us,
        timestamp or EQUITIES_MARKET_DATA.timestamp,
        market=market_tape(window),
    )


def measure_dataset(
    market: str,
    rows,
    window: Window,
    *,
    rate_spans: Mapping[str, float] | None = None,
    daily_closes: Mapping[str, np.ndarray] | None = None,
    reference_source: str = "",
    offline: bool = False,
    slice_s: int = SLICE_S,
) -> FactsReport:
    """Read ``window`` of ``market`` from ``rows`` (a ``ParquetRows`` or ``QuestDBRows``) in slices of
    ``slice_s`` seconds and measure every §11 fact (the tapes carry their state across slices, so
    the slicing does not change the table). ``rate_spans``: max/min of the configured FX quote and order rates."""
    if daily_closes is None:
        last_day = (window.start_us + (window.end_us - window.start_us - 1)) // US_PER_S // SECONDS_PER_DAY
        daily_closes, reference_source = business_closes(
            market, dt.date(1970, 1, 1) + dt.timedelta(days=int(last_day)), offline=offline
        )
    tape = new_tape(market, window)
    for piece in window.split(slice_s):
        if market == "fx":
            tape.add(
                rows.read(FX_MARKET_DATA, piece, cf.FX_COLUMNS["market_data"]),
                rows.read(FX_CORE_PRICE, piece, cf.FX_COLUMNS["core_price"]),
                rows.read(FX_TRADES, piece, cf.FX_COLUMNS["fx_trades"]),
            )
        else:
            tape.add(
                rows.read(EQUITIES_MARKET_DATA, piece, cf.EQUITIES_COLUMNS["equities_market_data"]),
                rows.read(EQUITIES_TRADES, piece, cf.EQUITIES_COLUMNS["equities_trades"]),
                piece.start_us,
                piece.end_us,
            )
    facts = tape.facts(daily_closes, rate_spans) if market == "fx" else tape.facts(daily_closes)
    market_facts = tape.market_facts() if isinstance(tape, FxMarketTape) else []
    return FactsReport(market, window, facts, tape, reference_source, market_facts=market_facts)


# --------------------------------------------------------------------------------------------
# pictures


def draw_pictures(report: FactsReport, out_dir: str | Path) -> list[Path]:
    """Intraday activity profile, 1-minute return distribution against a normal, and the
    autocorrelation of |returns|, as ``{market}_*.png`` in ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tape, market = report.tape, report.market
    group = tape.majors if market == "fx" else tape.mega
    returns = tape.minute_returns()[group]
    written = []

    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=90)
    if market == "fx":
        hourly = tape.hourly_activity()
        hours = np.arange(24)
        ax.bar(hours - 0.2, hourly["quotes"] / np.nanmean(hourly["quotes"]), width=0.4, label="quotes")
        ax.bar(hours + 0.2, hourly["orders"] / np.nanmean(hourly["orders"]), width=0.4, label="orders")
        ax.set_xlabel("hour of day (UTC)")
        ax.set_ylabel("per second ÷ day mean")
        ax.set_title("FX intraday activity")
    else:
        minutes, volume = tape.volume_profile()
        if len(volume):
            midday = volume[4:-4].mean() if len(volume) > 8 else volume.mean()
            ax.bar(minutes / 60 + 9.5 + 0.25, volume / midday, width=0.45)
        ax.set_xlabel("New York time (30-min buckets, continuous trading)")
        ax.set_ylabel("volume ÷ midday mean")
        ax.set_title("Equities intraday volume")
    ax.legend() if market == "fx" else None
    fig.tight_layout()
    written.append(_save(fig, out / f"{market}_intraday_profile.png"))

    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=90)
    z = []
    for r in returns:
        r = r[np.isfinite(r)]
        if len(r) > 8 and r.std() > 0:
            z.append((r - r.mean()) / r.std())
    if z:
        z = np.concatenate(z)
        bins = np.linspace(-8, 8, 81)
        ax.hist(z, bins=bins, density=True, alpha=0.7, label="1-min returns (standardised)")
        x = np.linspace(-8, 8, 400)
        ax.plot(x, np.exp(-x * x / 2) / np.sqrt(2 * np.pi), "k--", label="normal")
        ax.set_yscale("log")
        ax.set_ylim(1e-5, 1)
    ax.set_xlabel("standard deviations")
    ax.set_title(f"{market}: return distribution ({'majors' if market == 'fx' else 'mega-caps'})")
    ax.legend()
    fig.tight_layout()
    written.append(_save(fig, out / f"{market}_return_distribution.png"))

    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=90)
    acf = cf.mean_abs_return_acf(returns)
    ax.bar(cf.ACF_LAGS, acf)
    ax.fill_between([0.5, 5.5], 0.10, 0.40, color="green", alpha=0.15, label="band, lags 1–5")
    ax.axhline(0.03, color="grey", lw=0.8, ls=":", label="lag-30 floor")
    ax.set_xlabel("lag (minutes)")
    ax.set_ylabel("autocorrelation")
    ax.set_title(f"{market}: autocorrelation of |1-min returns|")
    ax.legend()
    fig.tight_layout()
    written.append(_save(fig, out / f"{market}_abs_return_acf.png"))
    if isinstance(tape, FxMarketTape):  # the one-market FX pictures
        from mkt_pipeline.run.fx_market_pictures import draw_fx_market

        written += draw_fx_market(tape, out, _save)
    if market == "equities":  # correlation heatmap, Epps curve, sign autocorrelation, impact by size
        from mkt_pipeline.run import facts_equities_market

        written += facts_equities_market.draw_pictures(tape, out, _save)
    return written


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.savefig(path)
    plt.close(fig)
    return path


def fx_rate_spans(values: Mapping[str, Any]) -> dict[str, float]:
    """max/min of the configured FX quote and order rates (the seasonality band depends on them)."""
    return {
        "quotes": values["market_data_max_eps"] / max(values["market_data_min_eps"], 1),
        "orders": values["orders_max_per_sec"] / max(values["orders_min_per_sec"], 1),
    }
