"""Demo data for the quick start: people, customers, products, templates and a backlog.

Everything goes through the real services, and the automated steps run in-process
(a failing step is handled as the worker would: retry later or an incident), so the
demo backlog looks exactly like one the system made itself. Loading is skipped when
any user exists, so `order-flow up` can call it every time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from order_flow.domain.taxid import compute_id_card_check, compute_uscc_check
from order_flow.engine.actors import Actor
from order_flow.engine.outbox import handle_failure
from order_flow.engine.steps import pending_job_ids, run_job
from order_flow.services.users import actor_of
from order_flow.store.models import User
from order_flow.store.orders import Order
from order_flow.store.tables import tasks

if TYPE_CHECKING:
    from order_flow.bootstrap import App

#: (username, role, groups, display name). Every password is ``<username>-demo``.
USERS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("clerk1", "clerk", ("sales",), "王芳"),
    ("clerk2", "clerk", ("sales",), "李娜"),
    ("clerk3", "clerk", ("sales",), "刘洋 (录单)"),
    ("wh1", "clerk", ("warehouse",), "陈强 (仓库)"),
    ("prod1", "clerk", ("production",), "杨磊 (生产)"),
    ("log1", "clerk", ("logistics",), "赵敏 (物流)"),
    ("fin1", "clerk", ("finance",), "孙丽 (财务)"),
    ("boss", "supervisor", ("sales", "finance", "warehouse"), "周主管"),
    ("admin", "admin", ("sales", "finance"), "系统管理员"),
)
PASSWORD_SUFFIX = "-demo"

_BANK = "中国工商银行福州分行"


def demo_password(username: str) -> str:
    return username + PASSWORD_SUFFIX


def _uscc(serial: int) -> str:
    first17 = f"91350100MA{serial:07d}"
    return first17 + compute_uscc_check(first17)


def _id_card() -> str:
    first17 = "35010219900307123"
    return first17 + compute_id_card_check(first17)


@dataclass
class DemoResult:
    loaded: bool
    users: list[tuple[str, str, str]] = field(default_factory=list)  # username, role, password
    orders: dict[str, list[str]] = field(default_factory=dict)  # state -> order numbers


def load_demo(app: App) -> DemoResult:
    """Load the demo once; returns what was made (or ``loaded=False`` if users exist)."""
    with app.engine.session_factory() as s:
        if s.scalar(select(func.count()).select_from(User)):
            return DemoResult(loaded=False)
    return _Demo(app).load()


def demo_users() -> list[tuple[str, str, str]]:
    return [(u, role, demo_password(u)) for u, role, _, _ in USERS]


def run_steps(app: App, max_jobs: int = 2000) -> int:
    """The worker, in-process: run due jobs; a failure is retried later or an incident."""
    ran = 0
    while ran < max_jobs:
        ids = pending_job_ids(app)
        if not ids:
            break
        for job_id in ids:
            ran += 1
            try:
                run_job(app, job_id)
            except Exception as exc:  # noqa: BLE001 - handled exactly as the worker does
                handle_failure(app, job_id, exc)
    return ran


class _Demo:
    def __init__(self, app: App) -> None:
        self.app = app
        self.people: dict[str, Actor] = {}
        self.customers: dict[str, int] = {}
        self.products: dict[str, int] = {}
        self.templates: dict[str, int] = {}

    def load(self) -> DemoResult:
        self.app.catalog.seed_tax_rates()
        self._users()
        self._customers()
        self._products()
        self._templates()
        self._orders()
        result = DemoResult(loaded=True, users=demo_users())
        rows, _ = self.app.orders.list(limit=500)
        for row in sorted(rows, key=lambda r: r.order.id):
            result.orders.setdefault(row.state, []).append(row.order.number)
        return result

    # -- master data ---------------------------------------------------------------

    def _users(self) -> None:
        for username, role, groups, name in USERS:
            user = self.app.users.create(username, role, groups, demo_password(username), name)
            self.people[username] = actor_of(user)

    def _customers(self) -> None:
        entry = self.people["clerk3"]
        special = {"kind": "company", "invoice_type": "special", "bank": _BANK}
        rows: dict[str, dict[str, Any]] = {
            "huamin": {
                **special,
                "name": "福州华闽贸易有限公司",
                "tax_id": _uscc(1),
                "address": "福州市台江区五一中路88号",
                "phone": "0591-83330001",
                "account": "1402020009000000001",
                "credit_limit": "2000000",
                "email": "finance@huamin.example.cn",
            },
            "haicang": {
                **special,
                "name": "厦门海沧机械制造有限公司",
                "tax_id": _uscc(2),
                "address": "厦门市海沧区新阳路168号",
                "phone": "0592-65550002",
                "account": "1402020009000000002",
                "credit_limit": "5000000",
                "stock_policy": "complete",
            },
            "jinjiang": {
                **special,
                "name": "泉州晋江鞋业有限公司",
                "tax_id": _uscc(3),
                "address": "晋江市陈埭镇鞋都路6号",
                "phone": "0595-85550003",
                "account": "1402020009000000003",
                "credit_limit": "1000",
            },
            "putian": {
                **special,
                "name": "莆田兴化建材有限公司",
                "tax_id": _uscc(4),
                "address": "莆田市城厢区文献路9号",
                "phone": "0594-22220004",
                "account": "1402020009000000004",
                "credit_limit": "500000",
            },
            "zhangwei": {
                "kind": "individual",
                "invoice_type": "ordinary",
                "name": "张伟",
                "tax_id": _id_card(),
                "phone": "13800000005",
                "credit_limit": "20000",
                "locale": "zh_CN",
            },
            "harbour": {
                "kind": "company",
                "invoice_type": "ordinary",
                "name": "Harbour Trading (Fuzhou) Co., Ltd.",
                "tax_id": _uscc(6),
                "credit_limit": "300000",
                "locale": "en",
                "email": "ap@harbour.example.com",
            },
        }
        for key, data in rows.items():
            self.customers[key] = self.app.customers.create(data, entry).customer.id

    def _products(self) -> None:
        boss = self.people["boss"]
        rows: dict[str, dict[str, Any]] = {
            "bolt": dict(name="不锈钢螺栓 M8×30", unit="个", price="2.50", on_hand="20000"),
            "bearing": dict(name="深沟球轴承 6204", unit="个", price="18.00", on_hand="800"),
            "oil": dict(name="抗磨液压油 46号", unit="桶", price="320.00", on_hand="60"),
            "lathe": dict(name="数控车床 CK6140", unit="台", price="60000.00", on_hand="4"),
            "carton": dict(name="五层瓦楞纸箱", unit="个", price="3.20", on_hand="30"),
            "rice": dict(
                name="东北大米 (10kg)",
                unit="袋",
                price="65.00",
                on_hand="200",
                tax_category="general_9",
            ),
            "service": dict(
                name="设备安装调试服务",
                unit="次",
                price="800.00",
                on_hand="1000",
                tax_category="general_6",
                tax_code="",
            ),
            "legacy": dict(name="旧型号密封圈 (停产)", unit="个", price="1.20", on_hand="500"),
        }
        for n, (key, data) in enumerate(rows.items(), start=1):
            data.setdefault("tax_code", f"10{n:02d}000000000000000")
            data["sku"] = f"P-{n:03d}"
            self.products[key] = self.app.catalog.create_product(data, boss).id

    def _templates(self) -> None:
        entry = self.people["clerk3"]
        p = self.products
        rows = {
            "huamin": ("huamin", [(p["bolt"], "1000"), (p["bearing"], "50")]),
            "huamin_oil": ("huamin", [(p["oil"], "2")]),
            "haicang": ("haicang", [(p["bearing"], "20"), (p["carton"], "40")]),
            "zhangwei": ("zhangwei", [(p["rice"], "3")]),
            "harbour": ("harbour", [(p["bolt"], "200"), (p["oil"], "1")]),
            "jinjiang": ("jinjiang", [(p["bearing"], "100")]),
            "putian": ("putian", [(p["bolt"], "500")]),
            "service": ("huamin", [(p["service"], "1")]),
            "lathe": ("haicang", [(p["lathe"], "1")]),
        }
        for key, (customer, lines) in rows.items():
            items = [{"product_id": pid, "qty": qty} for pid, qty in lines]
            template = self.app.orders.create_template(
                self.customers[customer], f"常用订单 {key}", items, entry
            )
            self.templates[key] = template.id

    # -- the backlog ---------------------------------------------------------------------

    def _from(self, template: str, **overrides: Any) -> Order:
        return self.app.orders.from_template(
            self.templates[template], self.people["clerk3"], overrides or None
        )

    def _submit(self, *orders: Order) -> None:
        for order in orders:
            self.app.orders.submit(order.id, self.people["clerk3"])
        run_steps(self.app)

    def _open_task(self, order: Order) -> int:
        with self.app.engine.session_factory() as s:
            task_id = s.scalar(
                select(tasks.c.id).where(
                    tasks.c.instance_id == order.instance_id, tasks.c.status == "open"
                )
            )
        assert task_id is not None, f"order {order.number} has no open task"
        return int(task_id)

    def _orders(self) -> None:
        app, who, p, c = self.app, self.people, self.products, self.customers
        soon = (app.orders.today() + timedelta(days=7)).isoformat()

        # Approved and invoiced (the invoice steps run too; one invoice lacks a tax code).
        self._submit(
            self._from("huamin", customer_po="HM-2024-001"),
            self._from("zhangwei"),
            self._from("harbour", customer_po="HB-7781"),
            self._from("huamin_oil", customer_po="HM-2024-002"),
            self._from("service", customer_po="HM-2024-003"),  # -> a problem invoice
        )

        # On hold, one per reason.
        duplicate = self._from("huamin", customer_po="HM-2024-001")  # DUPLICATE
        credit = self._from("jinjiang")  # CREDIT: 2,034.00 > 1,000.00
        short = self._from("haicang", customer_po="HC-0301")  # STOCK_SHORT: 40 cartons, 30 left
        blocked = self._from("putian", customer_po="PT-0009")  # CUSTOMER_BLOCKED
        data = app.orders.create(  # DATA: the product is discontinued after entry
            {
                "customer_id": c["huamin"],
                "customer_po": "HM-2024-004",
                "lines": [{"product_id": p["legacy"], "qty": "100"}],
            },
            who["clerk3"],
        )
        app.customers.update(c["putian"], {"blocked": True}, who["boss"])
        app.catalog.update_product(p["legacy"], {"active": False}, who["boss"])
        urgent = self._from("harbour", customer_po="HB-URGENT-1", priority="urgent")
        app.customers.update(c["harbour"], {"credit_limit": "100"}, who["boss"])  # CREDIT, urgent
        self._submit(duplicate, credit, short, blocked, data, urgent)
        app.customers.update(c["harbour"], {"credit_limit": "300000"}, who["boss"])

        # SPECIAL: warehouse signs, production rejects.
        special = app.orders.create(
            {
                "customer_id": c["haicang"],
                "customer_po": "HC-CUSTOM-7",
                "special": True,
                "signoff_groups": ["warehouse", "production"],
                "priority": "high",
                "promised_date": soon,
                "notes": "非标定制: 轴承加长型",
                "lines": [{"product_id": p["bearing"], "qty": "30"}],
            },
            who["clerk3"],
        )
        # Feasibility still open: warehouse and logistics must sign.
        feasibility = app.orders.create(
            {
                "customer_id": c["huamin"],
                "customer_po": "HM-CUSTOM-8",
                "special": True,
                "signoff_groups": ["warehouse", "logistics"],
                "promised_date": soon,
                "notes": "需要专车配送",
                "lines": [{"product_id": p["oil"], "qty": "10"}],
            },
            who["clerk3"],
        )
        # Review: by amount (from a template), without a template, and one half-approved.
        big = self._from("lathe", customer_po="HC-LATHE-1", priority="high")
        scratch = app.orders.create(
            {
                "customer_id": c["huamin"],
                "customer_po": "HM-2024-005",
                "lines": [
                    {"product_id": p["bolt"], "qty": "300"},
                    {"product_id": p["bearing"], "qty": "12"},
                ],
            },
            who["clerk3"],
        )
        half = app.orders.create(
            {
                "customer_id": c["zhangwei"],
                "lines": [{"product_id": p["rice"], "qty": "5"}],
                "priority": "urgent",
            },
            who["clerk3"],
        )
        self._submit(special, feasibility, big, scratch, half)
        app.tasks.complete(self._open_task(special), "approve", who["wh1"])
        app.tasks.complete(
            self._open_task(special),
            "reject",
            who["prod1"],
            comment="加长型轴承需新开模具, 交期不够",
        )
        app.tasks.complete(self._open_task(half), "approve", who["clerk1"], comment="价格已核对")
        run_steps(app)

        # Drafts a clerk has not submitted yet.
        self._from("haicang", notes="等客户确认数量")
        app.orders.copy(scratch.id, who["clerk3"])
