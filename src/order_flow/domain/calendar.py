"""Business-time calendar for SLA deadlines (Chinese working days, 工作日).

Which days are workdays:

* ``chinese_calendar`` is authoritative for the years it ships data for (the official State
  Council schedule, including 调休 make-up workdays on weekends);
* for any other year the calendar falls back to ``holidays.China`` (public holidays including
  observed days, weekends off, plus whatever weekend make-up workdays that library happens to
  know).  Such years are reported by :meth:`BusinessCalendar.coverage` as ``"estimated"``,
  because the official 调休 make-up workdays are unknown until the State Council publishes them;
* operator overrides (``extra_holidays`` / ``extra_workdays``) win over both sources.

Business time is measured as real elapsed time inside the working periods of workdays, in the
time zone of :class:`WorkingHours`.  Working periods are half-open ``[start, end)`` intervals.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import chinese_calendar
import holidays

__all__ = ["BusinessCalendar", "Coverage", "WorkingHours"]

logger = logging.getLogger(__name__)

Coverage = Literal["official", "estimated"]

_ONE_DAY = timedelta(days=1)
_ZERO = timedelta(0)


@dataclass(frozen=True)
class WorkingHours:
    """Daily working periods (local wall-clock times) and the time zone they are in.

    Defaults: 09:00-12:00 and 13:00-18:00 (8 hours a day), Asia/Shanghai.
    """

    periods: tuple[tuple[time, time], ...] = ((time(9), time(12)), (time(13), time(18)))
    tz: str = "Asia/Shanghai"

    def __post_init__(self) -> None:
        if not self.periods:
            raise ValueError("WorkingHours needs at least one working period")
        previous_end: time | None = None
        for start, end in self.periods:
            if start.tzinfo is not None or end.tzinfo is not None:
                raise ValueError("working period times must be naive (the zone is `tz`)")
            if not start < end:
                raise ValueError(f"working period must end after it starts: {start}-{end}")
            if previous_end is not None and start < previous_end:
                raise ValueError("working periods must be sorted and must not overlap")
            previous_end = end
        ZoneInfo(self.tz)  # raises ZoneInfoNotFoundError for an unknown zone

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)


class BusinessCalendar:
    """Workdays and business-time arithmetic for SLA deadlines."""

    def __init__(
        self,
        hours: WorkingHours = WorkingHours(),
        extra_holidays: Collection[date] = (),
        extra_workdays: Collection[date] = (),
    ) -> None:
        self.hours = hours
        self._tz = hours.zone
        self._extra_holidays = frozenset(_as_date(d) for d in extra_holidays)
        self._extra_workdays = frozenset(_as_date(d) for d in extra_workdays)
        both = self._extra_holidays & self._extra_workdays
        if both:
            listed = ", ".join(sorted(d.isoformat() for d in both))
            raise ValueError(f"dates are both extra holidays and extra workdays: {listed}")
        self._workday_cache: dict[date, bool] = {}
        self._official_years: dict[int, bool] = {}
        self._lock = threading.Lock()
        self._cn_holidays: holidays.HolidayBase | None = None

    # ------------------------------------------------------------------ workdays

    def coverage(self, year: int) -> Coverage:
        """``"official"`` if ``chinese_calendar`` has the year's schedule (调休 included),
        ``"estimated"`` if the ``holidays.China`` fallback is used (make-up workdays unknown)."""
        return "official" if self._is_official_year(year) else "estimated"

    def is_workday(self, d: date) -> bool:
        """Whether ``d`` (a calendar date; a datetime is reduced to its date) is a workday."""
        d = _as_date(d)
        cached = self._workday_cache.get(d)
        if cached is not None:
            return cached
        with self._lock:
            result = self._compute_is_workday(d)
            self._workday_cache[d] = result
        return result

    def _compute_is_workday(self, d: date) -> bool:
        if d in self._extra_workdays:
            return True
        if d in self._extra_holidays:
            return False
        if self._is_official_year(d.year):
            return bool(chinese_calendar.is_workday(d))
        if self._cn_holidays is None:
            self._cn_holidays = holidays.China()
        return bool(self._cn_holidays.is_working_day(d))

    def _is_official_year(self, year: int) -> bool:
        known = self._official_years.get(year)
        if known is not None:
            return known
        try:
            chinese_calendar.is_workday(date(year, 1, 1))
        except NotImplementedError:
            known = False
            logger.warning(
                "no official Chinese holiday schedule for %d: using holidays.China "
                "(调休 make-up workdays unknown); SLA deadlines in %d are estimates",
                year,
                year,
            )
        else:
            known = True
        self._official_years[year] = known
        return known

    # ------------------------------------------------------------------ business time

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The UTC instant at which ``duration`` of business time has elapsed since ``start``.

        ``start`` outside working hours rolls forward to the next working period, so a zero
        duration returns ``start`` rolled forward.  A deadline that uses up a period exactly
        lands on the end of that period (17:00 + 1h = 18:00, not 09:00 next workday).
        """
        _require_aware(start, "start")
        if duration < _ZERO:
            raise ValueError(f"duration must not be negative: {duration}")
        cursor = start.astimezone(UTC)
        remaining = duration
        for _day, periods in self._working_days_from(start):
            for period_start, period_end in periods:
                begin = max(period_start, cursor)
                if period_end <= begin:  # already past (or a degenerate period at a DST gap)
                    continue
                available = period_end - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
        raise AssertionError("unreachable: the working-day iterator is unbounded")

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Business time from ``start`` to ``end`` (negative if ``end`` is before ``start``)."""
        _require_aware(start, "start")
        _require_aware(end, "end")
        if end < start:
            return -self.between(end, start)
        lo = start.astimezone(UTC)
        hi = end.astimezone(UTC)
        last_day = end.astimezone(self._tz).date()
        total = _ZERO
        for day, periods in self._working_days_from(start):
            if day > last_day:
                break
            for period_start, period_end in periods:
                overlap = min(period_end, hi) - max(period_start, lo)
                if overlap > _ZERO:
                    total += overlap
        return total

    def _working_days_from(
        self, start: datetime
    ) -> Iterator[tuple[date, list[tuple[datetime, datetime]]]]:
        """Workdays from ``start``'s local date on, each with its periods as UTC intervals.

        Non-workdays are skipped with a single cached lookup each, so the cost is one small
        step per calendar day, independent of the length of the working periods.
        """
        day = start.astimezone(self._tz).date()
        while True:
            if self.is_workday(day):
                yield day, self._periods_utc(day)
            day += _ONE_DAY

    def _periods_utc(self, day: date) -> list[tuple[datetime, datetime]]:
        tz = self._tz
        return [
            (
                datetime.combine(day, begin, tzinfo=tz).astimezone(UTC),
                datetime.combine(day, end, tzinfo=tz).astimezone(UTC),
            )
            for begin, end in self.hours.periods
        ]


def _as_date(d: date) -> date:
    return d.date() if isinstance(d, datetime) else d


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {value!r}")
