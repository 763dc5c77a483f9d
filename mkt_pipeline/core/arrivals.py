"""Where events fall inside each second, for any number of streams of quotes.

A "group" is whatever must be quoted on its own clock: an FX pair, or an equities (symbol, venue).
For every second the engine decides how many events there are; this module spreads them across
groups (each group guaranteed a minimum, the rest by weight) and gives each group sorted, distinct
microsecond offsets with a minimum gap, so ``(timestamp, group)`` is unique by construction and
there is always room to stamp a trade strictly between two quotes of a group.

All draws for a second come from that second's own generator, in a fixed order, so the layout of a
second never depends on its neighbours.

Real events come in bursts, not as a Poisson stream: with ``burstiness`` > 0 a second draws a
random intensity profile (shared by all its groups) and its events are warped into the busy parts
of the second, so inter-arrival times are far more variable than exponential ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mkt_pipeline.core.timeline import US_PER_S

_SPACING_SCALE = float(1 << 16)  # exponential spacings are quantised so their sums are exact
_WARP_BINS = 32  # a second's intensity profile is piecewise constant on this many bins
_WARP_ONE = 1 << 20  # warp CDFs and event positions in integer units, so the mapping is exact


@dataclass
class SecondDraw:
    """The raw draws of one second: per-group counts and per-event spacings."""

    counts: np.ndarray  # (n_groups,)
    spacings: np.ndarray  # int64, one per event plus one closing spacing per group
    warp: np.ndarray | None = None  # int64 CDF of the second's intensity profile, _WARP_BINS + 1 knots


def draw_second(
    rng: np.random.Generator, n_events: int, cdf: np.ndarray, guaranteed: int, burstiness: float = 0.0
) -> SecondDraw:
    """Counts per group (``guaranteed`` each, the rest by weight), quantised spacings and,
    when ``burstiness`` > 0, the second's intensity profile (log-normal bin weights of that sigma)."""
    n_groups = len(cdf)
    base = min(guaranteed, n_events // n_groups)
    extra = n_events - base * n_groups
    picks = np.searchsorted(cdf, rng.random(extra), side="right")
    counts = np.bincount(picks, minlength=n_groups) + base
    spacings = (rng.standard_exponential(n_events + n_groups) * _SPACING_SCALE).astype(np.int64) + 1
    warp = None
    if burstiness > 0.0:
        weights = np.exp(burstiness * rng.standard_normal(_WARP_BINS))
        weights = np.maximum(1, np.round(weights / weights.sum() * _WARP_ONE)).astype(np.int64)
        warp = np.concatenate(([0], np.cumsum(weights)))
        warp = warp * _WARP_ONE // warp[-1]  # exactly 0 .. _WARP_ONE, strictly increasing
    return SecondDraw(counts, spacings, warp)


@dataclass
class Layout:
    """Events of a run of consecutive seconds, ordered by (second, group, time).

    ``group_first[k]``/``group_size[k]`` index the (second, group) cells in the same order, so
    cell ``k`` is second ``first_second + k // n_groups``, group ``k % n_groups``.
    """

    first_second: int
    n_groups: int
    second: np.ndarray  # absolute second of each event
    group: np.ndarray  # group of each event
    rank: np.ndarray  # 0-based position of the event inside its (second, group) cell
    size: np.ndarray  # number of events in that cell
    time_us: np.ndarray  # absolute microseconds
    cell_first: np.ndarray  # index of the first event of each cell
    cell_size: np.ndarray  # events per cell

    def __len__(self) -> int:
        return len(self.second)

    @property
    def cell(self) -> np.ndarray:
        return (self.second - self.first_second) * self.n_groups + self.group


def build_layout(first_second: int, draws: list[SecondDraw], min_gap_us: int = 2) -> Layout:
    """Lay the events of consecutive seconds out, with strictly increasing times inside each cell."""
    n_groups = len(draws[0].counts)
    cell_size = np.concatenate([d.counts for d in draws]).astype(np.int64)
    n_cells = len(cell_size)
    total = int(cell_size.sum())
    cell_first = np.zeros(n_cells, dtype=np.int64)
    np.cumsum(cell_size[:-1], out=cell_first[1:])
    cell_index = np.repeat(np.arange(n_cells), cell_size)
    rank = np.arange(total) - cell_first[cell_index]

    # Each second's spacings: its events in layout order, then one closing spacing per group.
    events = np.concatenate([d.spacings[: len(d.spacings) - n_groups] for d in draws])
    closing = np.concatenate([d.spacings[len(d.spacings) - n_groups :] for d in draws])
    running = np.cumsum(events)  # exact: integer arithmetic, so cell sums never depend on the batch
    before_cell = np.concatenate(([0], running))[cell_first]
    inclusive = running - before_cell[cell_index]
    cell_total = np.concatenate(([0], running))[cell_first + cell_size] - before_cell + closing
    size = cell_size[cell_index]
    room = US_PER_S - min_gap_us * size
    if draws[0].warp is None:
        local = (inclusive * room) // cell_total[cell_index] + min_gap_us * rank
    else:
        local = _warped(draws, cell_index // n_groups, inclusive, cell_total[cell_index], room) + min_gap_us * rank

    second = first_second + cell_index // n_groups
    return Layout(
        first_second=first_second,
        n_groups=n_groups,
        second=second,
        group=(cell_index % n_groups).astype(np.int64),
        rank=rank,
        size=size,
        time_us=second * US_PER_S + local,
        cell_first=cell_first,
        cell_size=cell_size,
    )


def _warped(
    draws: list[SecondDraw], sec_index: np.ndarray, inclusive: np.ndarray, total: np.ndarray, room: np.ndarray
) -> np.ndarray:
    """Offsets in ``[0, room)`` of events at uniform positions ``inclusive / total``, pushed
    through their second's intensity profile (the inverse of its CDF; monotone, so order holds)."""
    knots = np.stack([d.warp for d in draws])  # (n_seconds, _WARP_BINS + 1)
    pos = inclusive * _WARP_ONE // total  # integer position in [0, _WARP_ONE)
    # one sorted key space for all seconds: integers, so the result never depends on the batch
    span = np.int64(2 * _WARP_ONE)
    keys = (np.arange(len(draws), dtype=np.int64)[:, None] * span + knots[:, :-1]).ravel()
    flat = np.searchsorted(keys, sec_index * span + pos, side="right") - 1
    bin_ = flat - sec_index * _WARP_BINS
    lo = knots[sec_index, bin_]
    width = knots[sec_index, bin_ + 1] - lo
    x = (bin_ * width + (pos - lo)) * room // (width * _WARP_BINS)
    return x


WARP_POSITIONS = _WARP_ONE  # integer positions in a second that ``warp_offsets`` maps


def warp_offsets(draws: list[SecondDraw], sec_index: np.ndarray, positions: np.ndarray, room: int) -> np.ndarray:
    """Offsets in ``[0, room)`` of events at integer ``positions`` in ``[0, WARP_POSITIONS)`` of the
    seconds ``draws[sec_index]``, pushed through each second's intensity profile (uniform when the
    seconds have none), so other events of a second (trades, say) crowd into the same bursts as its
    quotes. Integer arithmetic: an event's offset never depends on which seconds share the call."""
    positions = np.asarray(positions, dtype=np.int64)
    if draws[0].warp is None:
        return positions * room // _WARP_ONE
    return _warped(draws, np.asarray(sec_index, dtype=np.int64), positions, np.int64(_WARP_ONE), np.int64(room))


def weights_cdf(weights: np.ndarray) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    cdf = np.cumsum(w / w.sum())
    cdf[-1] = 1.0
    return cdf
