"""Settings from the environment, each with an embedded default.

Every tunable lives here: the field name upper-cased with the ORDER_FLOW_ prefix
is its environment variable (``invoice_max_lines`` -> ``ORDER_FLOW_INVOICE_MAX_LINES``).
docs/configuration.md lists them for operators.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

ENV_PREFIX = "ORDER_FLOW_"


@dataclass(frozen=True)
class Settings:
    """The whole configuration. Build it with :meth:`from_env`."""

    # -- where things live ----------------------------------------------------
    #: Folder for the SQLite database, the embedded broker, PDFs.
    data_dir: Path = field(default_factory=lambda: Path.cwd() / "data")
    #: SQLAlchemy URL; SQLite in the data folder unless set.
    database_url: str = ""
    #: Celery broker; empty means the embedded broker (a SQLite file in the data folder).
    broker_url: str = ""
    #: Prefix of every broker key on Redis (lets several systems or test runs share one).
    broker_key_prefix: str = ""
    #: Seconds before Redis hands an unacknowledged message to another worker; longer
    #: than any step can take.
    broker_visibility_timeout_s: int = 3600
    #: How often (seconds) workers sweep unacknowledged messages back to the queue;
    #: 0 keeps kombu's default.
    broker_restore_every_s: int = 0
    #: A job published this long ago (seconds) and still unfinished is published again
    #: by the relay (its message was lost: a worker killed outright, a flushed broker).
    outbox_republish_after_s: int = 600
    #: Priority lanes (worker/lanes.py): deliveries in a row a worker takes from the
    #: urgent lanes while other jobs wait; the others keep 1 in (this + 1) at least.
    #: Raise it to favour urgent orders harder at peak, lower it (to 1) for fairness.
    urgent_burst: int = 3
    #: Seconds between a worker's looks at its own consumption (worker/watchdog.py, Redis
    #: only): messages waiting, a pool process free and nothing received at two looks in
    #: a row make it reconnect to the broker. 0 turns the watchdog off.
    worker_stall_check_s: int = 15
    #: Attempts before a failing step becomes an incident.
    job_max_attempts: int = 5
    #: Minutes between the rungs of the SLA ladder for an overdue task: remind the
    #: assignee, then back to the group's queue, then to the supervisors.
    sla_ladder_step_minutes: int = 60
    #: Folder with the workflow definition files.
    workflows_dir: Path = field(default_factory=lambda: Path.cwd() / "workflows")
    #: Echo SQL statements (debugging only).
    sql_echo: bool = False

    #: werkzeug password hash method: "scrypt" (n=2^15) by default; the tests use cheaper
    #: parameters ("scrypt:1024:8:1") to save time. Never lower it in production.
    password_hash: str = "scrypt"

    # -- the SLA clock -------------------------------------------------------------
    #: Business hours, "HH:MM-HH:MM" periods separated by commas.
    business_hours: str = "09:00-12:00,13:00-18:00"
    #: Time zone of the business calendar and of dates shown to people.
    timezone: str = "Asia/Shanghai"

    # -- order rules -----------------------------------------------------------------
    #: Orders at or above this gross amount need double review (双重审核).
    double_review_amount: Decimal = Decimal("50000.00")
    #: Orders not made from a template need double review too.
    double_review_without_template: bool = True
    #: Without a customer PO reference, the same customer and lines within this many
    #: hours count as a duplicate.
    duplicate_window_hours: int = 72
    #: Active reservations older than this are released by the timer.
    reservation_stale_hours: int = 72
    #: Largest quantity on one line (SQLite keeps 15 significant digits).
    max_line_qty: Decimal = Decimal("9999999")
    #: Largest unit price.
    max_unit_price: Decimal = Decimal("99999999")
    #: An approved order short of stock re-runs its reservation after this many
    #: minutes, until every line is reserved (backorder); what arrives is invoiced.
    backorder_retry_minutes: int = 30
    #: Days an uploaded import file and its rejects file are kept under data_dir/imports
    #: (for the clerk to download the rejects); 0 keeps them forever. Older files are
    #: deleted at the next upload.
    import_files_keep_days: int = 30
    #: Mail customers when an order is confirmed or put on hold, and when an invoice
    #: falls overdue (each logged in the communication log, sent once per event).
    order_notifications: bool = True

    # -- invoices --------------------------------------------------------------------
    #: Per-invoice ceiling of the amount before tax (开票限额).
    invoice_max_net: Decimal = Decimal("100000.00")
    #: Lines per invoice.
    invoice_max_lines: int = 8
    #: Largest difference between a line's tax and net × rate before the invoice goes to problem.
    invoice_tax_tolerance: Decimal = Decimal("0.06")
    #: Invoice double review (the reviewer is never the preparer).
    invoice_review: bool = False
    #: The seller printed on every invoice.
    seller_name: str = "示例贸易有限公司"
    seller_tax_id: str = "91350100M000100Y43"
    seller_address_phone: str = "福州市鼓楼区示例路1号 0591-88880000"
    seller_bank_account: str = "中国工商银行福州分行 1402020000000000000"

    # -- invoice PDFs and customer mail ---------------------------------------------
    #: Outgoing mail server: smtp://[user:pass@]host[:port], smtp+starttls://... or
    #: smtps://...; empty means no server: messages are written as .eml files to
    #: data_dir/outbox-mail (quick start).
    smtp_url: str = ""
    #: The From address of customer notifications.
    mail_from: str = "order-flow <noreply@example.com>"
    #: A TrueType/OpenType CJK font (.ttf/.ttc, first face) for invoice PDFs; empty
    #: means WenQuanYi Zen Hei when installed, else reportlab's built-in STSong-Light.
    pdf_font: str = ""
    #: Folder for issued invoice PDFs (<series>/<number>.pdf); empty means data_dir/invoices.
    pdf_dir: str = ""
    #: Render each invoice's PDF when it is numbered (stored in pdf_dir, attached to the
    #: invoice mail). Off: invoices are issued and mailed without a PDF, e.g. where the
    #: tax platform delivers the official e-invoice; the invoice page then offers none.
    invoice_pdf: bool = True

    def __post_init__(self) -> None:
        if self.urgent_burst < 1:
            raise ValueError(
                f"{ENV_PREFIX}URGENT_BURST={self.urgent_burst}: must be at least 1 "
                "(urgent jobs first, then one of the others)"
            )
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
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every field from ``ORDER_FLOW_<NAME>``; a bad value names its variable."""
        env = os.environ if environ is None else environ
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            name = ENV_PREFIX + f.name.upper()
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            kwargs[f.name] = _convert(name, raw, f.type)
        kwargs.update(overrides)
        return cls(**kwargs)


def _convert(name: str, raw: str, kind: object) -> Any:
    kind = str(kind)
    try:
        if kind == "Path":
            return Path(raw)
        if kind == "bool":
            value = raw.strip().lower()
            if value not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError("use true or false")
            return value in ("1", "true", "yes", "on")
        if kind == "int":
            return int(raw)
        if kind == "Decimal":
            return Decimal(raw)
    except (ValueError, InvalidOperation) as exc:
        raise ValueError(f"{name}={raw!r} is not a valid {kind}: {exc}") from None
    return raw
