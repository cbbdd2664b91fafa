"""`erp-pipelines`: the command line around the Dagster graph.

  erp-pipelines run         make run: demo ERP (first time) + the whole graph through Dagster, then a summary;
                            only on the embedded demo database (or one named with --demo-into-this-database)
  erp-pipelines plan        print what schema_sync_job would do (schema SQL, then migration history), change nothing
  erp-pipelines status      drift, migration history, rollup ledger and pruned days at a glance; read-only
  erp-pipelines dev         make dev: check Dagster's storage answers, then the Dagster UI (stops on SIGTERM/SIGINT)
  erp-pipelines env         print `export ...` lines for the embedded (or your own) databases, no password
  erp-pipelines bind        bind the Dagster instance to the database of ERP_DATABASE_URL (a moved database)
  erp-pipelines db start|stop|url
  erp-pipelines grants --role NAME [--for sync|rollups|retention|all]   the GRANTs a role needs, from the code

User mistakes exit with status 2 and one clear message (no traceback, never a password).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from erp_pipelines import settings
from erp_pipelines.errors import ErpPipelinesError, redact

DEFAULT_DEV_PORT = 3000
DEFAULT_DEV_HOST = "127.0.0.1"


def _apply_env() -> dict[str, str]:
    from erp_pipelines.embedded import resolve_env

    env = resolve_env()
    os.environ.update(env)
    return env


def cmd_env(_: argparse.Namespace) -> int:
    from erp_pipelines.secret_files import export_lines

    env = _apply_env()
    for line in export_lines(env, settings.dagster_home(env) or settings.state_dir()):
        print(line)
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from erp_pipelines import embedded
    from erp_pipelines.errors import display_url

    if args.action == "stop":
        print("stopped the embedded PostgreSQL" if embedded.stop() else "the embedded PostgreSQL was not running")
        return 0
    _, urls = embedded.start()
    if args.action == "url":
        print(display_url(urls.erp))
    else:
        print(f"embedded PostgreSQL running; ERP database: {display_url(urls.erp)}")
    return 0


def cmd_bind(_: argparse.Namespace) -> int:
    """Record ERP_DATABASE_URL's database as the Dagster instance's (erp_pipelines/instance_binding.py)."""
    import dagster as dg

    from erp_pipelines import instance_binding

    _apply_env()
    settings.check_dagster_storage()
    from erp_pipelines.resources import erp_database

    identity = erp_database().identity()
    with dg.DagsterInstance.get() as instance:
        before = instance_binding.recorded(instance)
        instance_binding.record(instance, identity)
        print(f"{instance_binding.instance_name(instance)} now serves {identity.describe()}"
              + (f" (was: {before.describe()})" if before and not before.same_database(identity) else ""))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from erp_pipelines.status import read_status

    if not settings.erp_database_url():
        _apply_env()
    from erp_pipelines.resources import erp_database

    print(read_status(erp_database(), args.migrations, args.baseline).render())
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    """Everything `schema_sync_job` would do, in its order, computed without writing: the schema statements
    (erp_schema), then the `_prisma_migrations` rows and later migrations (prisma_migration_history)."""
    from erp_pipelines.prisma.history import applied_names, read_history, read_plan, replay_pending
    from erp_pipelines.prisma.migrations import read_migrations_folder
    from erp_pipelines.prisma.sync import sync_schema
    from erp_pipelines.prisma.target import replay_range, target
    from erp_pipelines.resources import ErpDatabase, PrismaMigrationsFolder, erp_database

    if not settings.erp_database_url():
        _apply_env()
    db: ErpDatabase = erp_database()  # the resource the assets get
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
    refusal: ErpPipelinesError | None = None
    with db.connect("plan", autocommit=True) as conn:
        try:  # as the run does before writing anything: the migrations it would apply must replay
            replay_pending(conn, db.db_schema, folder, history, done, args.replay_from,
                           log=lambda message: print(message, file=sys.stderr))
        except ErpPipelinesError as exc:
            refusal = exc
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
    if refusal is not None:
        print("-- the run would stop here, before writing anything: a migration it would apply does not replay "
              "(below)")
        raise refusal
    return 0


def cmd_grants(args: argparse.Namespace) -> int:
    """The exact statements that give a role what the chosen assets need (erp_pipelines/grants.py), for
    the database and schemas of ERP_DATABASE_URL / ERP_DATABASE_SCHEMA / ERP_PIPELINES_SCHEMA."""
    from erp_pipelines import grants

    target = grants.Target.from_settings(args.database)
    print(f"-- run as the objects' owner (or a superuser); database {target.database}, ERP schema "
          f"{target.erp_schema}, our schema {target.own_schema}")
    print(grants.script(args.role, args.purposes or [grants.ALL], target), end="")
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    """The Dagster UI (`dagster dev`: webserver + daemon) on the same instance as `make run`, after our own
    check of Dagster's storage (an unreachable server is one clear line, never a traceback with connection
    details). SIGTERM and SIGINT stop it: erp_pipelines/dev_server.py forwards them to its process group."""
    from erp_pipelines.dev_server import run_dagster_dev

    _apply_env()
    settings.check_dagster_storage()
    _partitions_from_first_raw_day()
    dagster = Path(sys.executable).parent / "dagster"
    executable = str(dagster) if dagster.exists() else "dagster"
    argv = [executable, "dev", "-h", args.host, "-p", str(args.port), "-w", args.workspace, *args.dagster_args]
    print(f"Dagster UI on http://{args.host}:{args.port} (stop with Ctrl-C or SIGTERM)", flush=True)
    return run_dagster_dev(argv)


def _partitions_from_first_raw_day(planned_days: int | None = None) -> None:
    """ERP_ROLLUP_START_DATE for the processes this command starts: the first day of raw data (or of the
    demo data about to be generated), read once here because definitions load without a database."""
    from datetime import UTC, datetime, timedelta

    from erp_pipelines.partitions import export_start_date

    planned = (datetime.now(UTC).date() - timedelta(days=planned_days)) if planned_days else None
    from erp_pipelines.resources import erp_database

    value = export_start_date(erp_database(), planned)
    if value:
        print(f"Daily partitions start at {value}, the first day of raw data ({settings.ROLLUP_START_DATE}).")


def cmd_run(args: argparse.Namespace) -> int:
    _apply_env()
    _partitions_from_first_raw_day(planned_days=args.days)
    from erp_pipelines.runner import run_all  # after: the partitions are defined on import

    return run_all(events=args.events, days=args.days, demo_into=args.demo_into_this_database)


def _port(value: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise argparse.ArgumentTypeError(f"{value!r} is not a TCP port (1..65535)")
    return int(value)


def parser() -> argparse.ArgumentParser:
    """Every command and option, each with its help (`erp-pipelines --help`, `erp-pipelines CMD --help`)."""
    from erp_pipelines.prisma.target import DEFAULT_BASELINE

    top = argparse.ArgumentParser(
        prog="erp-pipelines", description="The command line around the erp-pipelines Dagster graph.",
        epilog="Settings come from the environment (ERP_DATABASE_URL, PRISMA_MIGRATIONS_DIR, DAGSTER_PG_URL, "
        "DAGSTER_HOME, ...; README.md lists them). User mistakes exit with status 2 and one message.",
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="make run: the demo ERP + the whole graph through Dagster, then a summary",
                         description="Build the demo ERP in the embedded PostgreSQL (first time), run "
                         "schema_sync_job, the rollups and retention through the Dagster instance, and print a "
                         "summary. Refuses a database the embedded set-up did not create.")
    run.add_argument("--events", type=int, default=1_000_000, help="usage events in the demo data (default 1,000,000)")
    run.add_argument("--days", type=int, default=30, help="days of demo data, ending yesterday (default 30)")
    run.add_argument("--demo-into-this-database", metavar="NAME", default=None,
                     help="load the demo into the database ERP_DATABASE_URL points at although the embedded "
                     "set-up did not create it; NAME must be that database's name")
    run.set_defaults(func=cmd_run)

    plan = sub.add_parser("plan", help="print the schema sync plan and the migration history plan; changes nothing",
                          description="Print, in the order schema_sync_job does them, every statement the schema "
                          "sync would run on ERP_DATABASE_URL's database (or the embedded one) with the drift it "
                          "reports, then each _prisma_migrations row and later migration the history step would "
                          "write or apply, and how. Writes nothing.")
    plan.add_argument("--migrations", help="prisma/migrations folder (default: PRISMA_MIGRATIONS_DIR or the demo)")
    plan.add_argument("--baseline", default=None,
                      help=f"the migration the database is baselined at (default: ERP_BASELINE_MIGRATION, "
                      f"else {DEFAULT_BASELINE})")
    plan.add_argument("--replay-from", dest="replay_from", default=None,
                      help="first migration of the history to replay (default: the baseline alone)")
    plan.add_argument("--mark-applied", dest="mark_applied", action="append", default=[], metavar="MIGRATION",
                      help="as run config mark_applied of prisma_migration_history (repeatable)")
    plan.add_argument("--resolve-rolled-back", dest="resolve_rolled_back", action="append", default=[],
                      metavar="MIGRATION", help="as run config resolve_rolled_back (repeatable)")
    plan.set_defaults(func=cmd_plan)
    grants_cmd = sub.add_parser("grants", help="print the GRANT statements a role needs (from the code)",
                                description="Print the exact GRANT statements that let ROLE run the chosen "
                                "assets, for the database and schemas of ERP_DATABASE_URL / ERP_DATABASE_SCHEMA / "
                                "ERP_PIPELINES_SCHEMA (docs/privileges.md is generated from the same source).")
    grants_cmd.add_argument("--role", required=True, help="the database role to grant to")
    grants_cmd.add_argument("--for", dest="purposes", action="append", choices=["sync", "rollups", "retention", "all"],
                            help="what the role runs (repeatable; default: all)")
    grants_cmd.add_argument("--database", help="database name (default: from ERP_DATABASE_URL, else erp)")
    grants_cmd.set_defaults(func=cmd_grants)

    status = sub.add_parser("status", help="drift, migration history, ledger and pruned days at a glance; read-only",
                            description="One screen about ERP_DATABASE_URL's database (or the embedded one): "
                            "schema drift, _prisma_migrations against the folder, the rollup ledger, pruned "
                            "days. Writes nothing.")
    status.add_argument("--migrations", help="prisma/migrations folder (default: PRISMA_MIGRATIONS_DIR or the demo)")
    status.add_argument("--baseline", default=DEFAULT_BASELINE,
                        help=f"the migration the database is baselined at (default {DEFAULT_BASELINE})")
    status.set_defaults(func=cmd_status)

    dev = sub.add_parser("dev", help="make dev: the Dagster UI (webserver + daemon) on the same instance",
                         description="Check Dagster's storage, then run `dagster dev` on the instance `make run` "
                         "uses. Stops on SIGTERM and SIGINT. Arguments after `--` go to `dagster dev` as they are.")
    dev.add_argument("--port", "-p", type=_port, default=DEFAULT_DEV_PORT,
                     help=f"port of the UI (default {DEFAULT_DEV_PORT}; make dev PORT=3001)")
    dev.add_argument("--host", default=DEFAULT_DEV_HOST, help=f"address the UI listens on (default {DEFAULT_DEV_HOST})")
    dev.add_argument("--workspace", "-w", default=str(settings.PROJECT_ROOT / "workspace.yaml"),
                     help="Dagster workspace file (default: the project's workspace.yaml)")
    dev.set_defaults(func=cmd_dev)

    env = sub.add_parser("env", help="print export lines for the databases (passwords only as file references)",
                         description="Print `export NAME=value` lines for ERP_DATABASE_URL, DAGSTER_HOME and "
                         "Dagster's storage (DAGSTER_PG_*), for `eval \"$(erp-pipelines env)\"`. A password is "
                         "written to a file readable only by you and exported as `$(cat FILE)`, never printed.")
    env.set_defaults(func=cmd_env)

    bind = sub.add_parser("bind", help="bind the Dagster instance to ERP_DATABASE_URL's database (a moved database)",
                          description="Record the database of ERP_DATABASE_URL as the one the Dagster instance "
                          "(DAGSTER_HOME and its storage) serves. Only for the same database reached another "
                          "way; another database needs an instance of its own.")
    bind.set_defaults(func=cmd_bind)

    db = sub.add_parser("db", help="the embedded PostgreSQL: start, stop, or print its ERP database URL",
                        description="Manage the embedded PostgreSQL 18 server under .erp-pipelines/.")
    db.add_argument("action", choices=["start", "stop", "url"],
                    help="start: start it (and create its databases); stop: stop it; url: print the ERP URL")
    db.set_defaults(func=cmd_db)
    return top


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    passthrough: list[str] = []
    if "--" in argv:  # `erp-pipelines dev --port 3001 -- --log-level debug`
        cut = argv.index("--")
        argv, passthrough = argv[:cut], argv[cut + 1:]
    top = parser()
    args = top.parse_args(argv)
    if passthrough and args.command != "dev":
        top.error(f"unrecognized arguments: -- {' '.join(passthrough)}")
    args.dagster_args = passthrough
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
