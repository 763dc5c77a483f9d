"""Time windows on absolute UTC time.

Engines work on whole seconds since the Unix epoch; windows are half-open ``[start, end)`` in
microseconds so a caller may cut anywhere and adjacent windows still add up exactly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

US_PER_S = 1_000_000
NS_PER_US = 1_000
SECONDS_PER_HOUR = 3600
SECONDS_PER_DAY = 86400

# Timestamps the tables can hold: from the Unix epoch to the last whole second a signed 64-bit
# nanosecond count reaches (2262-04-11T23:47:16Z); TIMESTAMP_NS columns overflow after it.
MIN_TIMESTAMP_US = 0
MAX_TIMESTAMP_US = (2**63 - 1) // (NS_PER_US * US_PER_S) * US_PER_S


def parse_timestamp(text: str) -> int:
    """ISO-8601 text to epoch microseconds. ``Z`` and offsets are honoured; naive means UTC."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return datetime_to_us(parsed)


def check_timestamp_range(us: int) -> None:
    """ValueError unless ``us`` lies within what the tables can store (1970 to 2262-04-11)."""
    if not MIN_TIMESTAMP_US <= us <= MAX_TIMESTAMP_US:
        raise ValueError(
            f"must lie between {format_us(MIN_TIMESTAMP_US)[:19]}Z and {format_us(MAX_TIMESTAMP_US)[:19]}Z (nanosecond timestamps)"
        )


def datetime_to_us(value: dt.datetime) -> int:
    """Aware (or naive-as-UTC) datetime to epoch microseconds, exactly."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    delta = value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * SECONDS_PER_DAY + delta.seconds) * US_PER_S + delta.microseconds


def us_to_datetime(us: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=int(us))


def format_us(us: int) -> str:
    """Epoch microseconds as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    return us_to_datetime(us).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def hour_start_us(us: int) -> int:
    """Start of the UTC hour holding the microsecond ``us``."""
    return us - us % (SECONDS_PER_HOUR * US_PER_S)


@dataclass(frozen=True)
class Window:
    """A half-open time window ``[start_us, end_us)``."""

    start_us: int
    end_us: int

    def __post_init__(self) -> None:
        if self.end_us <= self.start_us:
            raise ValueError(f"window end {format_us(self.end_us)} must be after start {format_us(self.start_us)}")

    @classmethod
    def from_iso(cls, start: str, end: str) -> Window:
        return cls(parse_timestamp(start), parse_timestamp(end))

    @classmethod
    def from_datetimes(cls, start: dt.datetime, end: dt.datetime) -> Window:
        return cls(datetime_to_us(start), datetime_to_us(end))

    @property
    def first_second(self) -> int:
        """First whole second touched by the window."""
        return self.start_us // US_PER_S

    @property
    def end_second(self) -> int:
        """One past the last second touched by the window."""
        return -(-self.end_us // US_PER_S)

    @property
    def seconds(self) -> int:
        return self.end_second - self.first_second

    def split(self, seconds: int) -> Iterator[Window]:
        """Consecutive sub-windows of at most ``seconds`` whole seconds, cut on second boundaries."""
        cut = self.start_us
        while cut < self.end_us:
            nxt = min(self.end_us, (cut // US_PER_S + seconds) * US_PER_S)
            yield Window(cut, nxt)
            cut = nxt

    def hours(self) -> Iterator[Window]:
        """The window cut at UTC hour boundaries."""
        cut = self.start_us
        while cut < self.end_us:
            nxt = min(self.end_us, hour_start_us(cut) + SECONDS_PER_HOUR * US_PER_S)
            yield Window(cut, nxt)
            cut = nxt

    def days(self) -> list[dt.date]:
        """UTC dates the window touches."""
        first = us_to_datetime(self.start_us).date()
        last = us_to_datetime(self.end_us - 1).date()
        return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]

    def __str__(self) -> str:
        return f"[{format_us(self.start_us)}, {format_us(self.end_us)})"
