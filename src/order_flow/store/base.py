"""The declarative base every table hangs off, with stable constraint names."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import MetaData, Numeric
from sqlalchemy.orm import DeclarativeBase

from order_flow.store.types import JSONType, UTCDateTime

#: Money: 2 decimal places. Quantities and unit prices: up to 8 (DOMAIN.md).
MONEY = Numeric(18, 2, asdecimal=True)
QTY = Numeric(18, 8, asdecimal=True)
RATE = Numeric(6, 4, asdecimal=True)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
        list[str]: JSONType,
        list[dict[str, Any]]: JSONType,
        Decimal: MONEY,
    }
