"""Tests for order_flow.domain.calendar (no network: both holiday packages ship their data)."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from order_flow.domain.calendar import BusinessCalendar, WorkingHours

SH = ZoneInfo("Asia/Shanghai")
H = timedelta(hours=1)


def sh(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SH)


@pytest.fixture(scope="module")
def cal() -> BusinessCalendar:
    return BusinessCalendar()


# ---------------------------------------------------------------- workdays (official data)


def test_national_day_week_2026_is_not_workdays(cal: BusinessCalendar) -> None:
    for day in range(1, 8):
        assert not cal.is_workday(date(2026, 10, day)), f"2026-10-0{day}"
    assert cal.is_workday(date(2026, 9, 30))
    assert cal.is_workday(date(2026, 10, 8))


def test_national_day_week_2026_is_skipped_by_add(cal: BusinessCalendar) -> None:
    assert cal.add(sh(2026, 9, 30, 17), 2 * H) == sh(2026, 10, 8, 10)


def test_national_day_week_2026_has_no_business_time(cal: BusinessCalendar) -> None:
    assert cal.between(sh(2026, 9, 30, 18), sh(2026, 10, 8, 9)) == timedelta(0)


def test_make_up_saturday_2026_10_10_is_a_workday(cal: BusinessCalendar) -> None:
    saturday = date(2026, 10, 10)
    assert saturday.weekday() == 5
    assert chinese_calendar.is_workday(saturday)  # 调休 in the official data
    assert cal.is_workday(saturday)


def test_friday_before_make_up_saturday_rolls_into_saturday(cal: BusinessCalendar) -> None:
    assert cal.add(sh(2026, 10, 9, 17), 2 * H) == sh(2026, 10, 10, 10)


def test_ordinary_saturday_and_sunday_are_not_workdays(cal: BusinessCalendar) -> None:
    assert not cal.is_workday(date(2025, 3, 15))
    assert not cal.is_workday(date(2025, 3, 16))


def test_coverage_is_official_for_years_with_chinese_calendar_data(cal: BusinessCalendar) -> None:
    assert cal.coverage(2025) == "official"
    assert cal.coverage(2026) == "official"


# ---------------------------------------------------------------- add()


def test_friday_17_00_plus_2h_is_monday_10_00(cal: BusinessCalendar) -> None:
    assert cal.is_workday(date(2025, 3, 17))
    assert cal.add(sh(2025, 3, 14, 17), 2 * H) == sh(2025, 3, 17, 10)


def test_add_returns_an_aware_utc_datetime(cal: BusinessCalendar) -> None:
    result = cal.add(sh(2025, 3, 14, 10), H)
    assert result.tzinfo is UTC
    assert result == datetime(2025, 3, 14, 3, tzinfo=UTC)  # 11:00 Shanghai


def test_lunch_break_is_skipped(cal: BusinessCalendar) -> None:
    assert cal.add(sh(2025, 3, 14, 11, 30), H) == sh(2025, 3, 14, 13, 30)


def test_start_before_9_rolls_forward_to_9(cal: BusinessCalendar) -> None:
    assert cal.add(sh(2025, 3, 14, 7), H) == sh(2025, 3, 14, 10)


def test_start_after_18_rolls_forward_to_next_workday(cal: BusinessCalendar) -> None:
    assert cal.add(sh(2025, 3, 13, 19), H) == sh(2025, 3, 14, 10)
    assert cal.add(sh(2025, 3, 14, 19), H) == sh(2025, 3, 17, 10)


def test_zero_duration_returns_start_rolled_forward(cal: BusinessCalendar) -> None:
    assert cal.add(sh(2025, 3, 14, 10, 15), timedelta(0)) == sh(2025, 3, 14, 10, 15)
    assert cal.add(sh(2025, 3, 14, 12, 30), timedelta(0)) == sh(2025, 3, 14, 13)
    assert cal.add(sh(2025, 3, 14, 18), timedelta(0)) == sh(2025, 3, 17, 9)


def test_deadline_that_uses_up_a_period_lands_on_its_end(cal: BusinessCalendar) -> None:
    assert cal.add(sh(2025, 3, 14, 17), H) == sh(2025, 3, 14, 18)
    assert cal.add(sh(2025, 3, 14, 11), H) == sh(2025, 3, 14, 12)


def test_start_in_another_time_zone_uses_shanghai_hours(cal: BusinessCalendar) -> None:
    # 2025-03-14 00:30 UTC is 08:30 Friday in Shanghai, before opening.
    assert cal.add(datetime(2025, 3, 14, 0, 30, tzinfo=UTC), H) == sh(2025, 3, 14, 10)
    # Thursday 20:00 in New York is Friday 08:00 in Shanghai.
    ny = datetime(2025, 3, 13, 20, tzinfo=ZoneInfo("America/New_York"))
    assert cal.add(ny, H) == sh(2025, 3, 14, 10)


def test_multi_day_sla_skips_whole_days(cal: BusinessCalendar) -> None:
    # 3 business days (24 h) from Wednesday 10:00 ends Monday 10:00.
    assert cal.add(sh(2025, 3, 12, 10), 24 * H) == sh(2025, 3, 17, 10)


def test_year_long_sla_lands_on_the_250th_workday(cal: BusinessCalendar) -> None:
    start = sh(2025, 1, 2, 9)
    end = cal.add(start, 250 * 8 * H)
    # 250 full 8-hour workdays from the morning of 2025-01-02: ends 18:00 on the 250th workday.
    last = chinese_calendar.get_workdays(date(2025, 1, 2), date(2026, 3, 31))[249]
    assert end == datetime.combine(last, time(18), tzinfo=SH)
    assert cal.between(start, end) == 250 * 8 * H


def test_add_rejects_naive_start_and_negative_duration(cal: BusinessCalendar) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.add(datetime(2025, 3, 14, 10), H)
    with pytest.raises(ValueError, match="negative"):
        cal.add(sh(2025, 3, 14, 10), -H)


# ---------------------------------------------------------------- between()


def test_between_friday_17_00_and_monday_10_00_is_2h(cal: BusinessCalendar) -> None:
    assert cal.between(sh(2025, 3, 14, 17), sh(2025, 3, 17, 10)) == 2 * H


def test_between_excludes_lunch_break(cal: BusinessCalendar) -> None:
    assert cal.between(sh(2025, 3, 14, 11, 30), sh(2025, 3, 14, 13, 30)) == H


def test_between_is_negative_when_end_precedes_start(cal: BusinessCalendar) -> None:
    assert cal.between(sh(2025, 3, 17, 10), sh(2025, 3, 14, 17)) == -2 * H


def test_between_rejects_naive_datetimes(cal: BusinessCalendar) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.between(sh(2025, 3, 14, 10), datetime(2025, 3, 14, 11))


zones = st.sampled_from([SH, UTC, ZoneInfo("America/New_York"), timezone(timedelta(hours=-3))])
instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2026, 12, 31, 23, 59), timezones=zones
)
durations = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30))


@settings(max_examples=300, deadline=None)
@given(start=instants, duration=durations)
def test_between_is_the_inverse_of_add(start: datetime, duration: timedelta) -> None:
    cal = BusinessCalendar()
    end = cal.add(start, duration)
    assert end >= start
    assert cal.between(start, end) == duration


@settings(max_examples=200, deadline=None)
@given(start=instants, end=instants)
def test_add_of_between_never_overshoots_the_end(start: datetime, end: datetime) -> None:
    cal = BusinessCalendar()
    spent = cal.between(start, end)
    assert cal.between(end, start) == -spent
    if spent >= timedelta(0):
        reached = cal.add(start, spent)
        assert reached <= max(end, cal.add(start, timedelta(0)))
        assert cal.between(reached, end) == timedelta(0)


@settings(max_examples=200, deadline=None)
@given(a=instants, b=instants, c=instants)
def test_between_is_additive(a: datetime, b: datetime, c: datetime) -> None:
    cal = BusinessCalendar()
    assert cal.between(a, b) + cal.between(b, c) == cal.between(a, c)


# ---------------------------------------------------------------- years beyond official data


def test_2027_falls_back_to_holidays_china(cal: BusinessCalendar) -> None:
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(date(2027, 10, 1))
    assert not cal.is_workday(date(2027, 10, 1))  # National Day
    assert not cal.is_workday(date(2027, 10, 4))  # National Day (observed)
    assert cal.is_workday(date(2027, 10, 8))  # Friday after the holiday
    assert not cal.is_workday(date(2027, 10, 9))  # Saturday: make-up workdays unknown


def test_coverage_of_2027_is_estimated(cal: BusinessCalendar) -> None:
    assert cal.coverage(2027) == "estimated"


def test_add_crosses_from_official_into_estimated_year(cal: BusinessCalendar) -> None:
    # Thu 2026-12-31 17:00 + 2h: 2027-01-01 (Fri) New Year's Day, weekend, Monday 10:00.
    assert cal.add(sh(2026, 12, 31, 17), 2 * H) == sh(2027, 1, 4, 10)


def test_using_an_estimated_year_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    cal = BusinessCalendar()
    with caplog.at_level(logging.WARNING, logger="order_flow.domain.calendar"):
        cal.is_workday(date(2027, 3, 1))
        cal.is_workday(date(2027, 3, 2))
        cal.coverage(2027)
    assert len(caplog.records) == 1
    assert "2027" in caplog.records[0].getMessage()


# ---------------------------------------------------------------- operator overrides


def test_extra_holiday_turns_an_official_workday_off() -> None:
    cal = BusinessCalendar(extra_holidays=[date(2025, 3, 17)])
    assert not cal.is_workday(date(2025, 3, 17))
    assert cal.add(sh(2025, 3, 14, 17), 2 * H) == sh(2025, 3, 18, 10)


def test_extra_workday_turns_a_sunday_on() -> None:
    cal = BusinessCalendar(extra_workdays=[date(2025, 3, 16)])
    assert cal.is_workday(date(2025, 3, 16))
    assert cal.add(sh(2025, 3, 14, 17), 2 * H) == sh(2025, 3, 16, 10)


def test_extra_workday_overrides_an_official_holiday() -> None:
    cal = BusinessCalendar(extra_workdays=[date(2026, 10, 2)])
    assert cal.is_workday(date(2026, 10, 2))
    assert not cal.is_workday(date(2026, 10, 1))


def test_overrides_win_in_estimated_years_too() -> None:
    cal = BusinessCalendar(extra_workdays=[date(2027, 10, 9)], extra_holidays=[date(2027, 10, 8)])
    assert cal.is_workday(date(2027, 10, 9))
    assert not cal.is_workday(date(2027, 10, 8))


def test_a_date_cannot_be_both_extra_holiday_and_extra_workday() -> None:
    with pytest.raises(ValueError, match="both"):
        BusinessCalendar(extra_holidays=[date(2025, 3, 17)], extra_workdays=[date(2025, 3, 17)])


# ---------------------------------------------------------------- configuration & caching


def test_custom_working_hours_are_used() -> None:
    hours = WorkingHours(periods=((time(8, 30), time(17, 30)),), tz="Asia/Shanghai")
    cal = BusinessCalendar(hours=hours)
    assert cal.add(sh(2025, 3, 14, 17), H) == sh(2025, 3, 17, 9)


@pytest.mark.parametrize(
    "periods",
    [
        (),
        ((time(12), time(9)),),
        ((time(13), time(18)), (time(9), time(12))),
        ((time(9), time(13)), (time(12), time(18))),
    ],
)
def test_invalid_working_hours_are_rejected(periods: tuple[tuple[time, time], ...]) -> None:
    with pytest.raises(ValueError):
        WorkingHours(periods=periods)


def test_is_workday_is_cached_per_date(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[date] = []
    real = chinese_calendar.is_workday

    def counting(d: date) -> bool:
        calls.append(d)
        return bool(real(d))

    cal = BusinessCalendar()
    cal.coverage(2025)  # resolve year coverage first so only per-date lookups are counted
    monkeypatch.setattr(chinese_calendar, "is_workday", counting)
    for _ in range(3):
        assert cal.is_workday(date(2025, 3, 14))
    assert calls == [date(2025, 3, 14)]
