"""`order-flow ...`: the operator's and developer's command line."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from order_flow.bootstrap import App, bootstrap
from order_flow.config import Settings
from order_flow.engine.actors import Actor
from order_flow.errors import DefinitionError, OrderFlowError

console = Console()
err_console = Console(stderr=True)

#: The CLI acts as this operator in the audit trail.
OPERATOR = Actor(name="cli", role="admin")


@contextmanager
def _app() -> Iterator[App]:
    app = bootstrap(Settings.from_env())
    try:
        yield app
    finally:
        app.close()


def _fail(message: str, code: int = 1) -> None:
    err_console.print(f"[red]error:[/red] {message}", highlight=False)
    sys.exit(code)


def _handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn expected errors into one clear message and a non-zero exit."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DefinitionError as exc:
            for problem in exc.problems:
                err_console.print(str(problem), highlight=False, markup=False)
            _fail(f"{len(exc.problems)} problem(s) found; nothing was changed")
        except OrderFlowError as exc:
            _fail(str(exc))

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


@click.group()
def main() -> None:
    """order_flow: orders, VAT invoices and review tasks for order clerks."""


# -- database ------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@_handle_errors
def db_upgrade() -> None:
    """Create or update the schema to the newest migration."""
    from order_flow.store import migrate

    with _app() as app:
        migrate.upgrade(app.db)
        console.print(f"schema is up to date ({app.db.url.render_as_string()})")


@db.command("check")
@_handle_errors
def db_check() -> None:
    """Exit non-zero if the models and the migrations disagree."""
    from order_flow.store import migrate

    with _app() as app:
        diffs = migrate.pending_differences(app.db)
        for d in diffs:
            err_console.print(repr(d), markup=False)
        if diffs:
            _fail("models and migrations disagree; write a migration")
        console.print("models and migrations agree")


# -- workflows -----------------------------------------------------------------


@main.group()
def workflows() -> None:
    """Workflow definitions: check, deploy, diff, migrate, diagram."""


def _paths_or_default(paths: tuple[str, ...], settings: Settings) -> list[str]:
    return list(paths) or [str(settings.workflows_dir)]


@workflows.command("check")
@click.argument("paths", nargs=-1, type=click.Path())
def workflows_check(paths: tuple[str, ...]) -> None:
    """Validate definition files; every problem is printed as FILE:LINE: message."""
    from order_flow.workflow.loader import check_files

    with _app() as app:
        targets = _paths_or_default(paths, app.settings)
        missing = [p for p in targets if not Path(p).exists()]
        if missing:
            _fail(f"no such file or folder: {', '.join(missing)}", code=2)
        problems = check_files(targets, app.engine.guards.names(), app.engine.steps.names())
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        _fail(f"{len(problems)} problem(s) found")
    console.print(f"ok: {', '.join(targets)}")


@workflows.command("deploy")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@_handle_errors
def workflows_deploy(paths: tuple[str, ...]) -> None:
    """Store each changed definition as a new version (all or nothing)."""
    from order_flow.engine.versions import deploy_files

    with _app() as app:
        for r in deploy_files(app.engine, _paths_or_default(paths, app.settings), by="cli"):
            status = "deployed" if r.created else "unchanged"
            console.print(f"{r.name}: v{r.version} {status}")


@workflows.command("list")
@click.argument("name", required=False)
@_handle_errors
def workflows_list(name: str | None) -> None:
    """The deployed versions, with hashes and running instances."""
    from sqlalchemy import func, select

    from order_flow.store.tables import instances

    with _app() as app, app.engine.session_factory() as s:
        counts: dict[int, int] = dict(
            s.execute(
                select(instances.c.definition_id, func.count()).group_by(instances.c.definition_id)
            ).all()
        )
        table = Table("workflow", "version", "hash", "deployed", "instances")
        for v in app.engine.definitions.versions(s, name):
            table.add_row(
                v.name,
                str(v.version),
                v.content_hash[:12],
                v.deployed_at.strftime("%Y-%m-%d %H:%M"),
                str(counts.get(v.id, 0)),
            )
        console.print(table)


@workflows.command("diff")
@click.argument("name")
@click.argument("v1", type=int)
@click.argument("v2", type=int)
@_handle_errors
def workflows_diff(name: str, v1: int, v2: int) -> None:
    """States and transitions added or removed between two versions."""
    from order_flow.engine.versions import diff_versions

    with _app() as app:
        d = diff_versions(app.engine, name, v1, v2)
    if d.is_empty:
        console.print(
            f"{name} v{v1} and v{v2} have the same states and transitions "
            "(only labels or guards differ, if anything)"
        )
        return
    for s in d.added_states:
        click.echo(f"+ state {s}")
    for s in d.removed_states:
        click.echo(f"- state {s}")
    for s in d.changed_states:
        click.echo(f"~ state {s}")
    for trigger, source, dest in d.added_transitions:
        click.echo(f"+ transition {trigger}: {source} -> {dest}")
    for trigger, source, dest in d.removed_transitions:
        click.echo(f"- transition {trigger}: {source} -> {dest}")


def _parse_map(items: tuple[str, ...]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for item in items:
        old, sep, new = item.partition("=")
        if not sep or not old or not new:
            raise click.BadParameter(f"'{item}' is not OLD=NEW", param_hint="--map")
        mapping[old] = new
    return mapping


@workflows.command("migrate")
@click.argument("name")
@click.option("--from", "from_version", type=int, required=True)
@click.option("--to", "to_version", type=int, required=True)
@click.option("--map", "maps", multiple=True, help="OLD=NEW state mapping; repeatable.")
@click.option("--dry-run", is_flag=True, help="Report what would move; change nothing.")
@_handle_errors
def workflows_migrate(
    name: str, from_version: int, to_version: int, maps: tuple[str, ...], dry_run: bool
) -> None:
    """Move running instances from one version to another."""
    from order_flow.engine.versions import migrate

    mapping = _parse_map(maps)
    with _app() as app:
        plan = migrate(
            app.engine, name, from_version, to_version, OPERATOR, mapping, dry_run=dry_run
        )
    for instance_id, old, new in plan.moves:
        arrow = f"{old} -> {new}" if old != new else old
        click.echo(f"{'would move' if not plan.applied else 'moved'} #{instance_id}: {arrow}")
    for instance_id, state, why in plan.blocked:
        click.echo(f"cannot move #{instance_id} ({state}): {why}", err=True)
    if plan.blocked:
        _fail(f"{len(plan.blocked)} instance(s) cannot move; nothing was changed")
    verb = "moved" if plan.applied else "would move"
    console.print(f"{verb} {len(plan.moves)} instance(s) from v{from_version} to v{to_version}")


@workflows.command("diagram")
@click.argument("name")
@click.option("--version", "version", type=int, default=None, help="Default: the newest.")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "svg"]), default="mermaid")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None)
@_handle_errors
def workflows_diagram(
    name: str, version: int | None, fmt: str, lang: str, output: str | None
) -> None:
    """Write a diagram generated from a deployed definition (or a file path)."""
    from order_flow.workflow.diagram import to_mermaid, to_svg
    from order_flow.workflow.loader import load_file

    if Path(name).is_file():
        definition = load_file(name)
    else:
        with _app() as app, app.engine.session_factory() as s:
            row = app.engine.definitions.version_row(s, name, version)
            definition = app.engine.definitions.load(row).definition
    text = to_svg(definition, lang=lang) if fmt == "svg" else to_mermaid(definition, lang=lang)
    if output:
        Path(output).write_text(text, encoding="utf-8")
        console.print(f"wrote {output}")
    else:
        click.echo(text)


# -- instances -----------------------------------------------------------------


@main.command("why")
@click.argument("instance_id", type=int)
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh")
@_handle_errors
def why_cmd(instance_id: int, lang: str) -> None:
    """Why is this instance waiting?"""
    from order_flow.engine.why import why

    with _app() as app:
        report = why(app.engine, instance_id, lang=lang)
    console.print(
        f"#{report.instance_id} {report.workflow} v{report.version}: "
        f"{report.state_label} ({report.state})"
    )
    console.print(report.summary(), highlight=False)
    for m in report.moves:
        mark = "ready" if m.ready else "blocked by " + ", ".join(m.failing_guards)
        console.print(f"  {m.trigger} -> {m.dest} [{'/'.join(m.actors)}]: {mark}")


# -- the system ----------------------------------------------------------------


@main.command("init")
@_handle_errors
def init_cmd() -> None:
    """Migrate the database and deploy the workflow files (safe to repeat)."""
    from order_flow.engine.versions import deploy_files
    from order_flow.store import migrate

    with _app() as app:
        migrate.upgrade(app.db)
        for r in deploy_files(app.engine, [str(app.settings.workflows_dir)], by="cli"):
            console.print(f"{r.name}: v{r.version} {'deployed' if r.created else 'unchanged'}")
        console.print(f"ready: {app.db.url.render_as_string()}")


# -- users ---------------------------------------------------------------------


@main.group()
def users() -> None:
    """People: add, disable, set-role, password, token, list."""


@users.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(["clerk", "supervisor", "admin"]), default="clerk")
@click.option("--group", "groups", multiple=True, default=("sales",), show_default=True)
@click.option("--name", "display_name", default="")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@_handle_errors
def users_add(
    username: str, role: str, groups: tuple[str, ...], display_name: str, password: str
) -> None:
    with _app() as app:
        app.users.create(username, role, groups, password, display_name)
    console.print(f"user {username} added ({role}; {', '.join(groups)})")


@users.command("disable")
@click.argument("username")
@_handle_errors
def users_disable(username: str) -> None:
    """Disable the account; its sessions and token stop working at once."""
    with _app() as app:
        app.users.disable(username)
    console.print(f"user {username} disabled")


@users.command("set-role")
@click.argument("username")
@click.argument("role", type=click.Choice(["clerk", "supervisor", "admin"]))
@click.option("--group", "groups", multiple=True, help="Replace the groups (repeatable).")
@_handle_errors
def users_set_role(username: str, role: str, groups: tuple[str, ...]) -> None:
    """Change the role (and groups); the user's open sessions end."""
    with _app() as app:
        app.users.set_role(username, role, groups or None)
    console.print(f"user {username} is now {role}")


@users.command("password")
@click.argument("username")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@_handle_errors
def users_password(username: str, password: str) -> None:
    with _app() as app:
        app.users.set_password(username, password)
    console.print(f"password of {username} changed; open sessions ended")


@users.command("token")
@click.argument("username")
@_handle_errors
def users_token(username: str) -> None:
    """Issue a new API token (replaces the old one); printed once."""
    with _app() as app:
        click.echo(app.users.issue_token(username))


@users.command("list")
@_handle_errors
def users_list() -> None:
    with _app() as app:
        rows = app.users.list()
    table = Table("username", "role", "groups", "active")
    for u in rows:
        table.add_row(u.username, u.role, ", ".join(sorted(u.group_names)), str(u.active))
    console.print(table)


# -- workers -------------------------------------------------------------------


def _celery_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "worker.celery_app", *args]


@main.command("worker", context_settings={"ignore_unknown_options": True})
@click.option("-Q", "--queues", default="urgent,default,pdf,email", show_default=True)
@click.option("-c", "--concurrency", type=int, default=2, show_default=True)
@click.argument("extra", nargs=-1, type=click.UNPROCESSED)
def worker_cmd(queues: str, concurrency: int, extra: tuple[str, ...]) -> None:
    """Run a Celery worker (a thin wrapper over `celery worker`)."""
    import os

    argv = _celery_argv("worker", "-Q", queues, "-c", str(concurrency), "-l", "INFO", *extra)
    os.execv(argv[0], argv)


@main.command("beat")
def beat_cmd() -> None:
    """Run the Celery scheduler: relay, timers, the daily payment status."""
    import os

    settings = Settings.from_env()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    schedule = str(settings.data_dir / "celerybeat-schedule")
    argv = _celery_argv("beat", "-l", "INFO", "-s", schedule)
    os.execv(argv[0], argv)


@main.command("relay")
@click.option("--once", is_flag=True, help="One round, then exit.")
@click.option("--every", type=float, default=2.0, show_default=True, help="Seconds between rounds.")
@_handle_errors
def relay_cmd(once: bool, every: float) -> None:
    """Publish outbox jobs left unpublished (a loop; beat runs the same every 5 s)."""
    import time

    from order_flow.engine.outbox import relay_once
    from worker.app import create_celery
    from worker.publisher import CeleryPublisher

    celery = create_celery()
    celery.set_current()
    with _app() as app:
        while True:
            try:
                sent = relay_once(app, CeleryPublisher())
                if sent:
                    console.print(f"relayed {sent} job(s)")
            except Exception as exc:  # broker down: say so, keep looping
                err_console.print(f"relay: {exc}", markup=False)
                if once:
                    raise
            if once:
                return
            time.sleep(every)


@main.group()
def outbox() -> None:
    """The transactional outbox."""


@outbox.command("status")
@_handle_errors
def outbox_status_cmd() -> None:
    """Jobs per status, and how long the oldest due job has waited."""
    from order_flow.engine.outbox import outbox_status

    with _app() as app:
        status = outbox_status(app)
    for name, count in sorted(status["counts"].items()):
        console.print(f"{name:>10}: {count}")
    console.print(f"{'lag':>10}: {status['lag_seconds']:.1f} s")


@main.group()
def incidents() -> None:
    """Steps that failed for good: list, retry, resolve."""


@incidents.command("list")
@_handle_errors
def incidents_list() -> None:
    from order_flow.engine.outbox import open_incidents

    with _app() as app:
        rows = open_incidents(app)
    table = Table("id", "instance", "step", "attempts", "error")
    for r in rows:
        data = r.data or {}
        table.add_row(
            str(r.id),
            str(r.instance_id),
            str(data.get("step", "")),
            str(len(data.get("attempts", []))),
            str(data.get("error", ""))[:80],
        )
    console.print(table)


@incidents.command("retry")
@click.argument("task_ids", nargs=-1, type=int, required=True)
@_handle_errors
def incidents_retry(task_ids: tuple[int, ...]) -> None:
    """Put the incidents' jobs back in the queue (the relay publishes them)."""
    from order_flow.engine.outbox import retry_incident

    with _app() as app:
        for task_id in task_ids:
            job_id = retry_incident(app, task_id, OPERATOR)
            console.print(f"incident {task_id}: job {job_id} queued again")


@incidents.command("resolve")
@click.argument("task_id", type=int)
@click.option("--comment", required=True, help="How it was resolved (kept in the audit).")
@_handle_errors
def incidents_resolve(task_id: int, comment: str) -> None:
    from order_flow.engine.outbox import resolve_incident

    with _app() as app:
        resolve_incident(app, task_id, OPERATOR, comment)
    console.print(f"incident {task_id} resolved")


@main.command("up")
@click.option("--port", type=int, default=8000, show_default=True, help="Web port.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Web address.")
@click.option("--concurrency", type=int, default=2, show_default=True, help="Worker threads.")
@click.option("--no-demo", is_flag=True, help="Do not load the demo data.")
@click.pass_context
def up_cmd(ctx: click.Context, port: int, host: str, concurrency: int, no_demo: bool) -> None:
    """Run everything on this machine: web, worker, beat and relay (Ctrl-C stops all).

    Migrates, deploys the workflows, loads the demo data once, prints the URL and the
    demo users, then supervises the processes until Ctrl-C.
    """
    from order_flow.runner import Runner, embedded_specs
    from order_flow.services.demo import demo_users, load_demo

    ctx.invoke(workflows_check, paths=())
    ctx.invoke(init_cmd)
    with _app() as app:
        settings = app.settings
        if not no_demo:
            result = load_demo(app)
            if result.loaded:
                counts = ", ".join(f"{s} {len(n)}" for s, n in sorted(result.orders.items()))
                console.print(f"demo data loaded: orders {counts}")
            existing = {u.username for u in app.users.list()}
            table = Table("user", "role", "password (demo)")
            for username, role, password in demo_users():
                if username in existing:
                    table.add_row(username, role, password)
            console.print(table)
    url = f"http://{host}:{port}/"
    console.print(f"order_flow runs at [bold]{url}[/bold] (Ctrl-C stops everything)")
    code = Runner(embedded_specs(settings, host, port, concurrency)).run()
    console.print("stopped")
    sys.exit(code)


from order_flow.cli_import import import_group  # noqa: E402 - registered last, on purpose
from order_flow.cli_reports import report  # noqa: E402 - registered last, on purpose

main.add_command(report)
main.add_command(import_group)


if __name__ == "__main__":  # pragma: no cover
    main()
