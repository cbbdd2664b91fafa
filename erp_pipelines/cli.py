"""`erp-pipelines`: the command line around the Dagster graph.

  erp-pipelines plan        print what schema_sync_job would do (schema SQL, then migration history), change nothing
  erp-pipelines run         make run: demo ERP (first time) + the whole graph through Dagster, then a summary
  erp-pipelines env         print `export ...` lines for the embedded (or your own) databases
  erp-pipelines dev ARGS    make dev: check Dagster's storage answers, then `dagster dev ARGS` with that env
  erp-pipelines db start|stop|url

User mistakes exit with status 2 and one clear message (no traceback, never a password).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from erp_pipelines import settings
from erp_pipelines.errors import ErpPipelinesError, redact


def _apply_env() -> dict[str, str]:
    from erp_pipelines.embedded import resolve_env

    env = resolve_env()
    os.environ.update(env)
    return env


def cmd_env(_: argparse.Namespace) -> int:
    for key, value in _apply_env().items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from erp_pipelines import embedded

    if args.action == "stop":
        print("stopped the embedded PostgreSQL" if embedded.stop() else "the embedded PostgreSQL was not running")
        return 0
    _, urls = embedded.start()
    if args.action == "url":
        print(urls.erp)
    else:
        print(f"embedded PostgreSQL running; ERP database: {urls.erp}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    """Everything `schema_sync_job` would do, in its order, computed without writing: the schema statements
    (erp_schema), then the `_prisma_migrations` rows and later migrations (prisma_migration_history)."""
    from erp_pipelines.prisma.history import applied_names, read_history, read_plan
    from erp_pipelines.prisma.migrations import read_migrations_folder
    from erp_pipelines.prisma.sync import sync_schema
    from erp_pipelines.prisma.target import replay_range, target
    from erp_pipelines.resources import ErpDatabase, PrismaMigrationsFolder

    if not settings.erp_database_url():
        _apply_env()
    db: ErpDatabase = settings.erp_database()  # the resource the assets get
    # The folder through settings (a plain path), never the resource's EnvVar-typed field.
    folder = read_migrations_folder(args.migrations or settings.migrations_dir() or PrismaMigrationsFolder().folder())
    with db.connect("plan", autocommit=True) as conn:
        done = applied_names(read_history(conn, db.db_schema))
    args.baseline, args.replay_from = replay_range(args.baseline, args.replay_from, "erp-pipelines plan")
    wanted = target(folder, args.baseline, args.replay_from, done)
    result = sync_schema(db, wanted.baseline, dry_run=True, applied_later=wanted.applied_later,
                         replayed_before=wanted.before, log=lambda _: None, trusted=done,
                         warn=lambda message: print(f"WARNING: {message}", file=sys.stderr))
    history = read_plan(db, folder, args.baseline, mark_applied=args.mark_applied,
                        resolve_rolled_back=args.resolve_rolled_back)
    print(f"-- database: {db.safe_url()}\n-- migrations: {folder.path}\n-- baseline: {args.baseline}"
          f"\n-- replay_from: {args.replay_from or args.baseline}")
    print("-- 1. erp_schema: the schema statements")
    for key, value in result.plan.summary().items():
        print(f"-- {key}: {value}")
    print(result.plan.markdown())
    print(f"-- 2. prisma_migration_history: {db.db_schema}._prisma_migrations and later migrations, in this order, "
          "under Prisma's lock (from the history read through the last migration)")
    for line in history.lines():
        print(f"--   {line}")
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    """`dagster dev` on the same instance as `make run`, after our own check of Dagster's storage (so an
    unreachable server is one clear line, never a traceback with connection details)."""
    _apply_env()
    settings.check_dagster_storage()
    dagster = Path(sys.executable).parent / "dagster"
    executable = str(dagster) if dagster.exists() else "dagster"
    os.execvp(executable, [executable, "dev", *args.dagster_args])
    return 0  # not reached: exec replaces this process


def cmd_run(args: argparse.Namespace) -> int:
    from erp_pipelines.runner import run_all

    _apply_env()
    return run_all(events=args.events, days=args.days)


def main(argv: list[str] | None = None) -> int:
    from erp_pipelines.prisma.target import DEFAULT_BASELINE

    parser = argparse.ArgumentParser(prog="erp-pipelines", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("env", help="print export lines for the databases").set_defaults(func=cmd_env)
    db = sub.add_parser("db", help="the embedded PostgreSQL")
    db.add_argument("action", choices=["start", "stop", "url"])
    db.set_defaults(func=cmd_db)
    plan = sub.add_parser("plan", help="print the schema sync plan and the migration history plan; changes nothing")
    plan.add_argument("--migrations", help="prisma/migrations folder (default: PRISMA_MIGRATIONS_DIR or the demo)")
    plan.add_argument("--baseline", default=None,
                      help=f"baseline migration (default: ERP_BASELINE_MIGRATION, else {DEFAULT_BASELINE})")
    plan.add_argument("--replay-from", dest="replay_from", default=None,
                      help="first migration of the history to replay (default: the baseline alone)")
    plan.add_argument("--mark-applied", dest="mark_applied", action="append", default=[], metavar="MIGRATION",
                      help="as run config mark_applied of prisma_migration_history (repeatable)")
    plan.add_argument("--resolve-rolled-back", dest="resolve_rolled_back", action="append", default=[],
                      metavar="MIGRATION", help="as run config resolve_rolled_back (repeatable)")
    plan.set_defaults(func=cmd_plan)
    run = sub.add_parser("run", help="demo ERP + the whole graph through Dagster")
    run.add_argument("--events", type=int, default=1_000_000, help="usage events in the demo data")
    run.add_argument("--days", type=int, default=30)
    run.set_defaults(func=cmd_run)
    dev = sub.add_parser("dev", add_help=False, help="check Dagster's storage, then `dagster dev ARGS`")
    dev.set_defaults(func=cmd_dev)  # every argument after `dev` goes to `dagster dev` as it is

    args, extra = parser.parse_known_args(argv)
    if args.command == "dev":
        args.dagster_args = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args)
    except ErpPipelinesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: keep the traceback, but never a password
        import traceback

        print(redact("".join(traceback.format_exception(exc))), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
