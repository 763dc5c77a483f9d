"""The one-market equities facts in the ``facts`` report: the tape that measures them, and the pictures.

``market_tape(window)`` builds the ``EquitiesMarketTape`` that ``run.facts`` hands the single-series
tape; ``draw_pictures`` draws the correlation heatmap by sector, the Epps curve, the sign
autocorrelation on log-log axes and the impact curve by trade size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mkt_pipeline.core import cross_facts_equities as cx
from mkt_pipeline.core.timeline import US_PER_S, Window


def market_tape(window: Window) -> cx.EquitiesMarketTape:
    from mkt_pipeline.equities.universe import SYMBOLS, UNIVERSE, VENUES

    start_s = window.start_us // US_PER_S
    end_s = -(-window.end_us // US_PER_S)
    return cx.EquitiesMarketTape(
        SYMBOLS, VENUES, [s.sector for s in UNIVERSE], [s.listing for s in UNIVERSE], start_s, end_s - start_s
    )


def draw_pictures(tape, out_dir: str | Path, save) -> list[Path]:
    """``equities_correlation.png`` (heatmap by sector), ``equities_epps.png``, ``equities_sign_acf.png``
    (log-log) and ``equities_impact.png`` (by size group), from a measured tape (``facts`` called);
    ``save(fig, path)`` writes and closes each figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    market = getattr(tape, "market", None)
    measured = getattr(market, "measured", None)
    if not measured:
        return []
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []

    order = sorted(range(len(market.symbols)), key=lambda i: (cx_sector_rank(market.sectors[i]), i))
    corr = measured["corr5"][np.ix_(order, order)]
    fig, ax = plt.subplots(figsize=(7.2, 6.2), dpi=90)
    im = ax.imshow(corr, vmin=-0.2, vmax=1.0, cmap="RdBu_r")
    ax.set_xticks(range(len(order)), [market.symbols[i] for i in order], rotation=90, fontsize=7)
    ax.set_yticks(range(len(order)), [market.symbols[i] for i in order], fontsize=7)
    edges = np.flatnonzero(np.diff([cx_sector_rank(market.sectors[i]) for i in order])) + 0.5
    for e in edges:
        ax.axhline(e, color="k", lw=0.6)
        ax.axvline(e, color="k", lw=0.6)
    fig.colorbar(im, ax=ax, shrink=0.8, label="correlation of 5-min NBBO mid returns")
    ax.set_title("Equities by sector: tech, finance, healthcare, energy, consumer", fontsize=10)
    fig.tight_layout()
    written.append(save(fig, out / "equities_correlation.png"))

    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=90)
    h = sorted(measured["epps"])
    ax.semilogx(h, [measured["epps"][k] for k in h], "o-")
    ax.set_xticks(h, [f"{k} s" if k < 60 else f"{k // 60} min" for k in h])
    ax.set_xlabel("return horizon")
    ax.set_ylabel("average pairwise correlation")
    ax.set_title("Equities: Epps effect (correlation builds up with the horizon)")
    ax.set_ylim(bottom=0)
    fig.tight_layout()
    written.append(save(fig, out / "equities_epps.png"))

    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=90)
    acf = measured["sign_acf"]
    lags = np.arange(1, len(acf) + 1)
    pos = acf > 0
    ax.loglog(lags[pos], acf[pos], "o", ms=3)
    ax.set_xlabel("lag (trades)")
    ax.set_ylabel("sign autocorrelation")
    ax.set_title("Equities: aggressor-sign autocorrelation per trade (log-log)")
    fig.tight_layout()
    written.append(save(fig, out / "equities_sign_acf.png"))

    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=90)
    by = measured["impact_by_size"]
    ax.bar(range(len(by)), list(by.values()))
    ax.set_xticks(range(len(by)), list(by.keys()))
    ax.set_ylabel("mid move after 10 s (spreads)")
    ax.set_title("Equities: price impact by trade size, in the aggressor's direction")
    fig.tight_layout()
    written.append(save(fig, out / "equities_impact.png"))
    return written


def cx_sector_rank(sector: str) -> int:
    from mkt_pipeline.equities.universe import SECTORS

    return SECTORS.index(sector)
