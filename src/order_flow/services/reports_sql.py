"""SQL pieces the reports share, spelled once per dialect (PostgreSQL and SQLite).

Timestamps are stored as naive UTC. Periods (day, week, month) are cut in the business
time zone. Over many rows (PostgreSQL sales by period) the periods are made in Python
from the zone database (``periods``) and each is summed over its UTC range, so no row
is converted; per row, PostgreSQL converts with ``timezone()`` and SQLite, which has no
zone database, shifts by the zone's fixed UTC offset (exact for zones without daylight
saving, such as Asia/Shanghai). Date filters are turned into UTC instants in Python,
so they are exact on both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Date,
    Float,
    Integer,
    String,
    Values,
    cast,
    column,
    func,
    literal,
    literal_column,
    select,
    type_coerce,
    union_all,
    values,
)
from sqlalchemy.orm import Session

from order_flow.store.base import MONEY
from order_flow.store.types import UTCDateTime

GRAINS = ("day", "week", "month")
_ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Dialect:
    """The SQL spellings of one database, in one business time zone."""

    name: str
    tz: str

    @classmethod
    def of(cls, session: Session, tz: str) -> Dialect:
        bind = session.get_bind()
        return cls(bind.dialect.name, tz)

    @property
    def is_pg(self) -> bool:
        return self.name == "postgresql"

    def _offset_minutes(self) -> int:
        offset = datetime.now(ZoneInfo(self.tz)).utcoffset() or timedelta(0)
        return int(offset.total_seconds() // 60)

    def local(self, col: ColumnElement[Any]) -> ColumnElement[Any]:
        """A stored UTC timestamp as local wall-clock time."""
        if self.is_pg:
            return func.timezone(self.tz, func.timezone("UTC", col))
        return func.datetime(col, f"{self._offset_minutes():+d} minutes")

    def period(self, col: ColumnElement[Any], grain: str) -> ColumnElement[Any]:
        """The start of the local day / ISO week (Monday) / month: a key to GROUP BY
        (a timestamp on PostgreSQL, hashed faster than text); label() makes it text."""
        if grain not in GRAINS:
            raise ValueError(f"grain must be one of {', '.join(GRAINS)}")
        local = self.local(col)
        if self.is_pg:
            return func.date_trunc(grain, local)
        if grain == "day":
            return func.date(local)
        if grain == "week":  # next Sunday (or today), back six days: the Monday
            return func.date(local, "weekday 0", "-6 days")
        return func.strftime("%Y-%m-01", local)

    def label(self, period: ColumnElement[Any]) -> ColumnElement[str]:
        """A period key as 'YYYY-MM-DD' (formatted after grouping: once per group)."""
        if self.is_pg:
            return func.to_char(period, "YYYY-MM-DD")
        return period

    def hours_between(self, start: Any, end: Any) -> ColumnElement[Any]:
        if self.is_pg:
            return func.date_part("epoch", end - start) / 3600.0  # float8, not numeric
        return (func.julianday(end) - func.julianday(start)) * 24.0

    def days_since(self, as_of: date, col: ColumnElement[Any]) -> ColumnElement[int]:
        """Whole days from a DATE column to ``as_of`` (positive when the column is earlier)."""
        if self.is_pg:
            return type_coerce(literal(as_of, Date) - col, Integer)
        return cast(func.julianday(as_of.isoformat()) - func.julianday(col), Integer)


def money_sum(col: ColumnElement[Any]) -> ColumnElement[Decimal]:
    """SUM of a money column as Decimal (SQLite sums REAL: round to fen first)."""
    return type_coerce(func.round(func.coalesce(func.sum(col), 0), 2), MONEY)


def money(value: Any) -> Decimal:
    if value is None:
        return _ZERO
    return Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def ratio(part: int | Decimal, whole: int | Decimal, places: str = "0.1") -> Decimal | None:
    """``part / whole`` in per cent, half-up; None when there is nothing to divide."""
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal(places), rounding=ROUND_HALF_UP)


def dec(value: Any, places: str = "0.01") -> Decimal | None:
    """A float or Decimal from the database as a rounded Decimal (None stays None)."""
    if value is None:
        return None
    return Decimal(str(value)).quantize(Decimal(places), rounding=ROUND_HALF_UP)


def local_midnight(d: date, tz: str) -> datetime:
    """The UTC instant a local day starts."""
    return datetime.combine(d, time(), tzinfo=ZoneInfo(tz)).astimezone(UTC)


def utc_local_date(value: datetime, tz: str) -> date:
    """The local date of a stored UTC timestamp (aware or naive UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(ZoneInfo(tz)).date()


def utc_bounds(
    date_from: date | None, date_to: date | None, tz: str
) -> tuple[datetime | None, datetime | None]:
    """Inclusive local dates as a half-open UTC interval [from 00:00, to+1 00:00)."""
    start = local_midnight(date_from, tz) if date_from else None
    end = local_midnight(date_to + timedelta(days=1), tz) if date_to else None
    return start, end


def period_start(d: date, grain: str) -> date:
    """The local day / Monday / first of the month of the period holding ``d``."""
    if grain == "day":
        return d
    if grain == "week":
        return d - timedelta(days=d.weekday())
    if grain == "month":
        return d.replace(day=1)
    raise ValueError(f"grain must be one of {', '.join(GRAINS)}")


def _next_start(d: date, grain: str) -> date:
    if grain == "day":
        return d + timedelta(days=1)
    if grain == "week":
        return d + timedelta(days=7)
    return (d.replace(day=28) + timedelta(days=4)).replace(day=1)


def periods(first: date, last: date, grain: str, tz: str) -> list[tuple[str, datetime, datetime]]:
    """Every local period from the one holding ``first`` to the one holding ``last``:
    (label 'YYYY-MM-DD', UTC start, UTC end). The boundaries come from the zone
    database, so they are exact across daylight saving changes."""
    out: list[tuple[str, datetime, datetime]] = []
    d = period_start(first, grain)
    start = local_midnight(d, tz)
    while d <= last:
        nxt = _next_start(d, grain)
        end = local_midnight(nxt, tz)
        out.append((d.isoformat(), start, end))
        d, start = nxt, end
    return out


def period_values(rows: Sequence[tuple[str, datetime, datetime]]) -> Values:
    """``periods(...)`` as a VALUES relation (label, lo, hi) to join or go LATERAL on."""
    return values(
        column("label", String()),
        column("lo", UTCDateTime()),
        column("hi", UTCDateTime()),
        name="periods",
    ).data(list(rows))


def percentiles(
    session: Session,
    dialect: Dialect,
    source: Any,
    metrics: dict[str, ColumnElement[Any]],
    quantiles: Sequence[float] = (0.5, 0.9),
) -> dict[str, tuple[int, list[float | None]]]:
    """{metric: (count, [percentile_cont(q) for q])} of expressions over ``source``
    (NULLs ignored), computed in the database.

    PostgreSQL: one pass with ``percentile_cont`` per metric. SQLite: the values of all
    metrics as (metric, x) rows, ranked per metric with window functions, then
    interpolated between the two ranks around q·(n-1), as percentile_cont does.
    """
    out: dict[str, tuple[int, list[float | None]]] = {}
    if dialect.is_pg:
        # One sort per metric: percentile_cont over an array of fractions.
        fractions: ColumnElement[Any] = literal_column(
            "ARRAY[" + ", ".join(repr(float(q)) for q in quantiles) + "]::float8[]"
        )
        columns: list[ColumnElement[Any]] = []
        for x in metrics.values():
            columns.append(func.count(x))
            columns.append(func.percentile_cont(fractions).within_group(x))
        row = session.execute(select(*columns).select_from(source)).one()
        for i, key in enumerate(metrics):
            n, found = row[2 * i], row[2 * i + 1] or [None] * len(quantiles)
            out[key] = (int(n), [None if v is None else float(v) for v in found])
        return out
    values = union_all(
        *(
            select(literal(key).label("metric"), x.label("x")).select_from(source)
            for key, x in metrics.items()
        )
    ).subquery()
    metric, x = values.c.metric, values.c.x
    ranked = (
        select(
            metric.label("metric"),
            cast(x, Float).label("x"),
            (func.row_number().over(partition_by=metric, order_by=x) - 1).label("rn"),
            func.count().over(partition_by=metric).label("n"),
        )
        .where(x.is_not(None))
        .subquery()
    )
    cols: list[ColumnElement[Any]] = []
    for q in quantiles:
        pos: ColumnElement[Any] = literal_column(repr(float(q))) * (ranked.c.n - 1)
        lo = cast(pos, Integer)  # pos >= 0: truncation is floor
        low = func.max(func.iif(ranked.c.rn == lo, ranked.c.x, None))
        high = func.max(func.iif(ranked.c.rn == lo + 1, ranked.c.x, None))
        cols.append(low + func.coalesce(high - low, 0) * func.max(pos - lo))
    stmt = select(ranked.c.metric, func.max(ranked.c.n), *cols).group_by(ranked.c.metric)
    for row in session.execute(stmt):
        out[str(row[0])] = (int(row[1]), [None if v is None else float(v) for v in row[2:]])
    return out
