"""Pictures of the one-market FX facts: co-movement heatmap, sign memory, impact by size, triangular gap."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mkt_pipeline.core import cross_facts_fx as cx


def draw_fx_market(tape: cx.FxMarketTape, out: Path, save) -> list[Path]:
    """``fx_correlation_heatmap.png``, ``fx_sign_acf.png``, ``fx_impact_by_size.png``, ``fx_triangular_gap.png``."""
    import matplotlib.pyplot as plt

    written = []
    names = [s for s in cx.HEATMAP_PAIRS if s in tape.symbols]
    corr = tape.comovement(names)
    fig, ax = plt.subplots(figsize=(5.6, 4.6), dpi=90)
    im = ax.imshow(corr, vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    for i in range(len(names)):
        for j in range(len(names)):
            if np.isfinite(corr[i, j]):
                ax.text(j, i, f"{corr[i, j]:.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_title("FX majors: correlation of 5-min mid returns")
    fig.tight_layout()
    written.append(save(fig, out / "fx_correlation_heatmap.png"))

    lags = cx.SIGN_LAGS
    acf = tape.sign_acf(lags)
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=90)
    pos = np.isfinite(acf) & (acf > 0)
    ax.loglog(lags[pos], acf[pos], "o-", ms=3, label="aggressor sign, per order (each pair)")
    ax.axhline(0.02, color="grey", lw=0.8, ls=":", label="0.02 (lags 11–50 floor)")
    ax.set_xlabel("lag (orders)")
    ax.set_ylabel("autocorrelation")
    ax.set_title("FX order-flow memory")
    ax.legend()
    fig.tight_layout()
    written.append(save(fig, out / "fx_sign_acf.png"))

    imp = tape.impact()
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=90)
    sizes, after, se, before = imp["size"][:-1], imp["after"][:-1], imp["se"][:-1], imp["before"][:-1]
    ok = np.isfinite(sizes) & np.isfinite(after)
    ax.errorbar(sizes[ok], after[ok], yerr=2 * se[ok], fmt="o-", label=f"{cx.IMPACT_AFTER_S} s after")
    ax.plot(sizes[ok], before[ok], "s--", label=f"{cx.IMPACT_BEFORE_S} s before")
    ax.set_xscale("log")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xlabel("filled size (median of the quartile)")
    ax.set_ylabel("signed mid move (bp)")
    ax.set_title("FX price impact by order size")
    ax.legend()
    fig.tight_layout()
    written.append(save(fig, out / "fx_impact_by_size.png"))

    tri = tape.triangular()
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=90)
    for res in tri.values():
        gap = res["gap"]
        buckets = len(gap) // 300
        if buckets:
            with np.errstate(all="ignore"):
                per_bucket = np.nanmedian(gap[: buckets * 300].reshape(buckets, 300), axis=1)
            ax.plot(np.arange(buckets) / 12.0, per_bucket, lw=0.8, alpha=0.7)
    ax.axhline(1, color="grey", ls=":", lw=0.8)
    ax.axhline(-1, color="grey", ls=":", lw=0.8)
    ax.set_xlabel("hours into the window")
    ax.set_ylabel("cross − implied (pips, 5-min median)")
    ax.set_title(f"FX triangular gap over the day, {len(tri)} crosses")
    fig.tight_layout()
    written.append(save(fig, out / "fx_triangular_gap.png"))
    return written
