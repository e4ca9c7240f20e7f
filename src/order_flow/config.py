"""Settings from the environment, each with an embedded default.

Every tunable lives here, with its environment variable and its default, so that
an operator can find them all in one place (see docs/configuration.md).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ENV_PREFIX = "ORDER_FLOW_"


def _default_data_dir() -> Path:
    return Path.cwd() / "data"


@dataclass(frozen=True)
class Settings:
    """The whole configuration. Build it with :meth:`from_env`."""

    data_dir: Path = field(default_factory=_default_data_dir)
    #: SQLAlchemy URL; SQLite in the data folder unless set.
    database_url: str = ""
    #: Celery broker; empty means the embedded broker (a SQLite file in the data folder).
    broker_url: str = ""
    #: Folder with the workflow definition files.
    workflows_dir: Path = field(default_factory=lambda: Path.cwd() / "workflows")
    #: Business hours of the SLA clock, "HH:MM-HH:MM" periods separated by commas.
    business_hours: str = "09:00-12:00,13:00-18:00"
    #: Time zone of the business calendar.
    timezone: str = "Asia/Shanghai"
    #: Echo SQL statements (debugging only).
    sql_echo: bool = False

    def __post_init__(self) -> None:
        if not self.database_url:
            url = f"sqlite:///{self.data_dir / 'order_flow.db'}"
            object.__setattr__(self, "database_url", url)
        if not self.broker_url:
            url = f"sqla+sqlite:///{self.data_dir / 'broker.db'}"
            object.__setattr__(self, "broker_url", url)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(ENV_PREFIX + name)
            return value if value not in (None, "") else None

        kwargs: dict[str, object] = {}
        if (v := get("DATA_DIR")) is not None:
            kwargs["data_dir"] = Path(v)
        if (v := get("DATABASE_URL")) is not None:
            kwargs["database_url"] = v
        if (v := get("BROKER_URL")) is not None:
            kwargs["broker_url"] = v
        if (v := get("WORKFLOWS_DIR")) is not None:
            kwargs["workflows_dir"] = Path(v)
        if (v := get("BUSINESS_HOURS")) is not None:
            kwargs["business_hours"] = v
        if (v := get("TIMEZONE")) is not None:
            kwargs["timezone"] = v
        if (v := get("SQL_ECHO")) is not None:
            kwargs["sql_echo"] = v.lower() in ("1", "true", "yes", "on")
        kwargs.update(overrides)
        return cls(**kwargs)  # type: ignore[arg-type]
