"""Order-book building shared by the engines: tick grids and depth-independent volume ladders."""

from __future__ import annotations

import numpy as np

from mkt_pipeline.core.keyed_random import keyed_rng
from mkt_pipeline.core.tables import BookColumn

_LADDER_ROWS = 4096
MAX_BOOK_LEVELS = 200  # per side; a 200-level book row is ~7 KB on the wire, deeper ones exhaust memory


def tick_prices(touch_ticks: np.ndarray, width: int, direction: int, ticks_per_unit: int | np.ndarray) -> np.ndarray:
    """``(rows, width)`` prices on a contiguous one-tick grid from the touch.

    ``direction`` is -1 for bids (worse = lower) and +1 for asks. Dividing whole tick counts by an
    exact power of ten yields the double closest to the decimal price, so every price is a whole
    number of ticks.
    """
    ticks = touch_ticks[:, None] + direction * np.arange(width)[None, :]
    if np.ndim(ticks_per_unit):  # one tick size per row (e.g. JPY and non-JPY pairs mixed)
        return ticks / np.asarray(ticks_per_unit, dtype=np.float64)[:, None]
    return ticks / float(ticks_per_unit)


class VolumeLadder:
    """Displayed volume per level, a function of the level index only (not of the book's depth).

    ``low[j]``–``high[j]`` bound level ``j``; a keyed table of log-uniform draws supplies the
    per-book variation, and each book picks a row of it, so drawing a book costs one integer.
    """

    def __init__(self, seed: int, stream: str, low: np.ndarray, high: np.ndarray, granularity: float = 1.0):
        self.low = np.asarray(low, dtype=np.float64)
        self.high = np.asarray(high, dtype=np.float64)
        rng = keyed_rng(seed, stream + "/ladder")
        # drawn level by level so level j's column is the same whatever the number of levels
        u = rng.random((len(self.low), _LADDER_ROWS)).T
        table = np.exp(np.log(self.low) + u * (np.log(self.high) - np.log(self.low)))
        self.granularity = granularity
        self.table = np.maximum(granularity, np.round(table / granularity) * granularity)
        self.rows = _LADDER_ROWS

    @property
    def max_levels(self) -> int:
        return len(self.low)

    def volumes(self, rows: np.ndarray, width: int, scale: np.ndarray | None = None) -> np.ndarray:
        """``(len(rows), width)`` volumes: ladder rows ``rows`` (ints), optionally scaled per book."""
        vol = self.table[rows % self.rows, :width]
        if scale is not None:
            g = self.granularity
            vol = np.maximum(g, np.round(vol * scale[:, None] / g) * g)
        return vol


def log_ladder(
    levels: int,
    first_low: float,
    first_high: float,
    deep_low: float,
    deep_high: float,
    deep_level: int,
    shape: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds growing in log space from level 1 to ``deep_level``, flat beyond it.

    ``shape`` < 1 front-loads the growth (liquidity thickens quickly behind a thin touch).
    """
    j = (np.minimum(np.arange(levels), deep_level - 1) / max(1, deep_level - 1)) ** shape
    low = first_low * (deep_low / first_low) ** j
    high = first_high * (deep_high / first_high) ** j
    return low, high


def build_books(
    touch_ticks: np.ndarray,
    depth: np.ndarray,
    direction: int,
    ticks_per_unit: int | np.ndarray,
    ladder: VolumeLadder,
    ladder_rows: np.ndarray,
    scale: np.ndarray | None = None,
) -> BookColumn:
    """One side of many books as a ragged ``BookColumn``."""
    width = int(depth.max()) if len(depth) else 1
    prices = tick_prices(touch_ticks, width, direction, ticks_per_unit)
    volumes = ladder.volumes(ladder_rows, width, scale)
    return BookColumn.from_dense(prices, volumes, depth)
