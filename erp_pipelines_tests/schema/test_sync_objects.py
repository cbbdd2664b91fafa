"""The sync on real PostgreSQL (18 and 15), one situation per object kind Prisma migrations create."""

from __future__ import annotations

import threading
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from erp_pipelines.errors import ErpPipelinesError
from erp_pipelines.prisma.changes import StepKind
from erp_pipelines.prisma.migrations import read_migrations_folder
from erp_pipelines.prisma.replay import missing_tables_and_columns
from erp_pipelines.prisma.sync import PRISMA_ADVISORY_LOCK, SyncResult, sync_schema
from erp_pipelines.prisma.target import target
from erp_pipelines.resources import ErpDatabase, PrismaMigrationsFolder
from erp_pipelines.schema.assets import erp_schema

QUIET = {"log": lambda _m: None}


def write_folder(root: Path, *migrations: tuple[str, str]) -> Path:
    folder = root / "migrations"
    folder.mkdir(exist_ok=True)
    for name, text in migrations:
        (folder / name).mkdir()
        (folder / name / "migration.sql").write_text(text)
    return folder


def sync(url: str, folder: Path, applied: tuple[str, ...] = (), **kw) -> SyncResult:
    parsed = read_migrations_folder(folder)
    t = target(parsed, parsed.names()[-1] if not applied else parsed.names()[0], parsed.names()[0], applied)
    return sync_schema(ErpDatabase(url=url), t.baseline, replayed_before=t.before, applied_later=t.applied_later,
                       **{**QUIET, **kw})


def step_kinds(result: SyncResult) -> list[StepKind]:
    return [s.kind for s in result.plan.ordered()]


def test_schema_qualified_baseline_is_replayed_in_the_shadow_and_missing_tables_are_found(tmp_path, erp_url, conn):
    folder = write_folder(tmp_path, ("1_init", 'CREATE TABLE "public"."Thing" ("id" TEXT NOT NULL, '
                                     'CONSTRAINT "Thing_pkey" PRIMARY KEY ("id"));\n'
                                     'CREATE INDEX "Thing_id_idx" ON "public"."Thing"("id");'))
    migrations = read_migrations_folder(folder).migrations
    with psycopg.connect(erp_url) as c:
        assert missing_tables_and_columns(c, migrations, "public") == ["table Thing"]
    result = sync(erp_url, folder)
    assert step_kinds(result) == [StepKind.CREATE_TABLE, StepKind.ADD_KEY, StepKind.CREATE_INDEX]
    assert conn.execute("SELECT to_regclass('public.\"Thing\"')").fetchone()[0] is not None
    with psycopg.connect(erp_url) as c:
        assert missing_tables_and_columns(c, migrations, "public") == []
    assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'erp_pipelines_shadow_%'").fetchone() == (0,)


def test_a_later_migration_that_fails_to_replay_is_reported_and_a_dropped_column_is_not_re_added(
    tmp_path, erp_url, conn
):
    folder = write_folder(
        tmp_path,
        ("1_init", 'CREATE TABLE "t" ("id" INTEGER PRIMARY KEY, "old" TEXT);'),
        ("2_drop", 'ALTER TABLE "t" DROP COLUMN "old";'),
    )
    conn.execute('CREATE TABLE "t" ("id" INTEGER PRIMARY KEY)')
    parsed = read_migrations_folder(folder)
    t = target(parsed, "1_init", None, {"2_drop"})
    result = sync_schema(ErpDatabase(url=erp_url), t.baseline, applied_later=t.applied_later, **QUIET)
    assert result.plan.steps == []  # the column the later migration dropped stays dropped
    (folder / "3_bad").mkdir()
    (folder / "3_bad" / "migration.sql").write_text('ALTER TABLE "nope" ADD COLUMN "x" INTEGER;')
    parsed = read_migrations_folder(folder)
    t = target(parsed, "1_init", None, {"2_drop", "3_bad"})
    with pytest.raises(ErpPipelinesError) as caught:
        sync_schema(ErpDatabase(url=erp_url), t.baseline, applied_later=t.applied_later, **QUIET)
    message = str(caught.value)
    assert "3_bad" in message and 'relation "nope" does not exist' in message and "Nothing was written" in message
    assert "line 1" in message


def test_an_invalid_index_is_reported_with_the_fix_and_kept(tmp_path, erp_url, conn):
    folder = write_folder(tmp_path, ("1_init", 'CREATE TABLE "t" ("a" INTEGER);\nCREATE UNIQUE INDEX "t_a_key" ON "t"("a");'))
    conn.execute('CREATE TABLE "t" ("a" INTEGER)')
    conn.execute('INSERT INTO "t" VALUES (1), (1)')
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute('CREATE UNIQUE INDEX CONCURRENTLY "t_a_key" ON "t"("a")')  # leaves an INVALID index
    result = sync(erp_url, folder)
    assert result.plan.steps == []
    (drift,) = [d for d in result.plan.drift if d.kind == "invalid index"]
    assert drift.object == "t_a_key" and "DROP INDEX CONCURRENTLY" in drift.fix and "never drop" in drift.fix
    assert conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = 't_a_key'::regclass").fetchone() == (False,)


def test_a_unique_constraint_is_not_taken_for_the_missing_primary_key(tmp_path, erp_url, conn):
    folder = write_folder(tmp_path, ("1_init", 'CREATE TABLE "t" ("id" TEXT NOT NULL, CONSTRAINT "t_pkey" PRIMARY KEY ("id"));'))
    conn.execute('CREATE TABLE "t" ("id" TEXT NOT NULL, CONSTRAINT "t_id_key" UNIQUE ("id"))')
    assert step_kinds(sync(erp_url, folder)) == [StepKind.ADD_KEY]
    assert conn.execute("SELECT contype FROM pg_constraint WHERE conname = 't_pkey'").fetchone() == ("p",)


VIEWS_FUNCTIONS_TRIGGERS = """
CREATE TABLE "public"."Doc" ("id" INTEGER PRIMARY KEY, "body" TEXT, "updatedAt" TIMESTAMP(3));
CREATE FUNCTION "public"."touch"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW."updatedAt" := now(); RETURN NEW; END; $$;
CREATE TRIGGER "Doc_touch" BEFORE UPDATE ON "public"."Doc" FOR EACH ROW EXECUTE FUNCTION "public"."touch"();
CREATE VIEW "public"."DocTitles" AS SELECT "id", left("body", 10) AS "title" FROM "public"."Doc";
"""


def test_views_functions_and_triggers_are_created_then_changes_are_drift_and_ours_are_ignored(tmp_path, erp_url, conn):
    folder = write_folder(tmp_path, ("1_init", VIEWS_FUNCTIONS_TRIGGERS))
    first = sync(erp_url, folder)
    assert {StepKind.CREATE_FUNCTION, StepKind.CREATE_VIEW, StepKind.CREATE_TRIGGER} <= set(step_kinds(first))
    conn.execute('INSERT INTO "Doc" VALUES (1, %s, NULL)', ("hello world, long",))
    conn.execute('UPDATE "Doc" SET body = body')
    assert conn.execute('SELECT "updatedAt" IS NOT NULL FROM "Doc"').fetchone() == (True,)
    assert conn.execute('SELECT title FROM "DocTitles"').fetchone() == ("hello worl",)
    # a hand edit of the function: reported, never replaced; our own capture trigger and schema: not drift
    conn.execute("""CREATE OR REPLACE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN RETURN NEW; END; $$""")
    conn.execute("CREATE SCHEMA erp_pipelines")
    conn.execute("CREATE FUNCTION erp_pipelines.capture() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END; $$")
    conn.execute('CREATE TRIGGER "erp_pipelines_capture_doc" AFTER INSERT ON "Doc" '
                 "FOR EACH STATEMENT EXECUTE FUNCTION erp_pipelines.capture()")
    second = sync(erp_url, folder)
    assert second.plan.steps == []
    assert [(d.kind, d.object) for d in second.plan.drift] == [("function", "touch()")]
    assert "RETURN NEW; END" in conn.execute("SELECT prosrc FROM pg_proc WHERE proname = 'touch'").fetchone()[0]


def test_a_check_constraint_violated_by_a_row_stays_not_valid_and_the_sync_completes(tmp_path, erp_url, conn):
    folder = write_folder(tmp_path, ("1_init", 'CREATE TABLE "t" ("a" INTEGER, CONSTRAINT "t_a_check" CHECK ("a" >= 0));\n'
                                     'CREATE INDEX "t_a_idx" ON "t"("a");'))
    conn.execute('CREATE TABLE "t" ("a" INTEGER)')
    conn.execute('INSERT INTO "t" VALUES (-1), (-2), (3), (NULL)')
    result = sync(erp_url, folder)
    assert result.applied and result.not_validated == {"t.t_a_check": 2}
    assert conn.execute("SELECT convalidated FROM pg_constraint WHERE conname = 't_a_check'").fetchone() == (False,)
    assert conn.execute("SELECT count(*) FROM pg_indexes WHERE indexname = 't_a_idx'").fetchone() == (1,)
    evaluation = _materialize(erp_url, folder).get_asset_check_evaluations()
    check = next(e for e in evaluation if e.check_name == "foreign_keys_validated")
    assert not check.passed and check.metadata["offending_rows"].value == {"t.t_a_check": 2}


def _materialize(url: str, folder: Path) -> dg.ExecuteInProcessResult:
    names = read_migrations_folder(folder).names()
    return dg.materialize(
        [erp_schema],
        resources={"erp_db": ErpDatabase(url=url), "migrations": PrismaMigrationsFolder(path=str(folder))},
        run_config={"ops": {"erp_schema": {"config": {"baseline_migration": names[-1], "replay_from": names[0]}}}},
    )


def test_an_enum_value_added_and_used_in_the_same_run_converges(tmp_path, erp_url, conn):
    folder = write_folder(
        tmp_path,
        ("1_init", "CREATE TYPE \"Mood\" AS ENUM ('OK');\nCREATE TABLE \"t\" (\"id\" INTEGER);"),
        ("2_value", "ALTER TYPE \"Mood\" ADD VALUE 'GREAT';"),
        ("3_use", 'ALTER TABLE "t" ADD COLUMN "mood" "Mood" NOT NULL DEFAULT \'GREAT\';'),
    )
    conn.execute("CREATE TYPE \"Mood\" AS ENUM ('OK')")
    conn.execute('CREATE TABLE "t" ("id" INTEGER)')
    conn.execute('INSERT INTO "t" VALUES (1)')
    result = sync(erp_url, folder)
    assert step_kinds(result) == [StepKind.ADD_ENUM_VALUE, StepKind.ADD_COLUMN]
    assert conn.execute('SELECT mood::text FROM "t"').fetchone() == ("GREAT",)
    assert sync(erp_url, folder).plan.steps == []


def test_enum_order_sequence_and_identity_differences_are_reported(tmp_path, erp_url, conn):
    folder = write_folder(tmp_path, ("1_init", """
CREATE TYPE "Level" AS ENUM ('LOW', 'HIGH');
CREATE SEQUENCE "counter" AS bigint INCREMENT BY 1;
CREATE TABLE "t" ("id" BIGINT GENERATED ALWAYS AS IDENTITY, "n" INTEGER, "twice" INTEGER GENERATED ALWAYS AS ("n" * 2) STORED);
"""))
    conn.execute("CREATE TYPE \"Level\" AS ENUM ('HIGH', 'LOW')")
    conn.execute('CREATE SEQUENCE "counter" AS integer INCREMENT BY 10')
    conn.execute('CREATE TABLE "t" ("id" BIGINT GENERATED BY DEFAULT AS IDENTITY, "n" INTEGER, '
                 '"twice" INTEGER GENERATED ALWAYS AS ("n" * 3) STORED)')
    result = sync(erp_url, folder)
    assert result.plan.steps == []
    assert sorted(d.kind for d in result.plan.drift) == ["enum order", "generated column", "identity", "sequence"]


@pytest.mark.parametrize("pg_major", ["18"], indirect=True)  # virtual generated columns are new in 18
def test_a_virtual_generated_column_is_added_as_virtual(tmp_path, erp_url, conn, pg_major):
    folder = write_folder(tmp_path, ("1_init", 'CREATE TABLE "t" ("n" INTEGER, "twice" INTEGER GENERATED ALWAYS AS ("n" * 2) VIRTUAL);'))
    conn.execute('CREATE TABLE "t" ("n" INTEGER)')
    conn.execute('INSERT INTO "t" VALUES (4)')
    sync(erp_url, folder)
    assert conn.execute("SELECT attgenerated FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'twice'"
                        ).fetchone() == ("v",)
    assert conn.execute('SELECT twice FROM "t"').fetchone() == (8,)
    assert sync(erp_url, folder).plan.steps == []


def test_string_literals_that_look_like_the_schema_are_kept_as_written(tmp_path, erp_url, conn):
    folder = write_folder(tmp_path, ("1_init", """CREATE TABLE "public"."t" ("ref" TEXT NOT NULL DEFAULT 'public.x',
CONSTRAINT "t_ref_check" CHECK ("ref" <> 'public.'));"""))
    sync(erp_url, folder)
    conn.execute('INSERT INTO "t" DEFAULT VALUES')
    assert conn.execute('SELECT ref FROM "t"').fetchone() == ("public.x",)
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("INSERT INTO \"t\" VALUES ('public.')")
    assert sync(erp_url, folder).plan.steps == []


def test_an_extension_the_server_lacks_is_named_with_the_migration(tmp_path, erp_url, pg_major):
    name = "pgcrypto" if pg_major == "18" else "no_such_extension_here"
    folder = write_folder(tmp_path, ("1_ext", f'CREATE EXTENSION IF NOT EXISTS "{name}";'))
    with pytest.raises(ErpPipelinesError) as caught:
        sync(erp_url, folder)
    message = str(caught.value)
    assert f'extension "{name}" is not available' in message and "1_ext" in message and "Nothing was written" in message


@pytest.mark.parametrize("pg_major", ["15"], indirect=True)  # the embedded 18 ships no contrib extensions
def test_an_extension_of_the_history_is_created(tmp_path, erp_url, conn, pg_major):
    folder = write_folder(tmp_path, ("1_ext", 'CREATE EXTENSION IF NOT EXISTS "citext";\nCREATE TABLE "t" ("e" CITEXT);'))
    result = sync(erp_url, folder)
    assert step_kinds(result)[:2] == [StepKind.CREATE_EXTENSION, StepKind.CREATE_TABLE]
    assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'citext'").fetchone() == (1,)
    assert sync(erp_url, folder).plan.steps == []


def test_prisma_lock_is_not_held_while_counting_rows_or_validating(tmp_path, erp_url, conn):
    folder = write_folder(tmp_path, (
        "1_init",
        'CREATE TABLE "p" ("id" INTEGER PRIMARY KEY);\n'
        'CREATE TABLE "c" ("pid" INTEGER, CONSTRAINT "c_pid_fkey" FOREIGN KEY ("pid") REFERENCES "p"("id"));',
    ))
    conn.execute('CREATE TABLE "p" ("id" INTEGER PRIMARY KEY)')
    conn.execute('CREATE TABLE "c" ("pid" INTEGER)')
    conn.execute('INSERT INTO "c" VALUES (7)')  # an orphan: validation fails and logs while it runs
    seen: dict[str, bool] = {}

    def lock_held() -> bool:
        with psycopg.connect(erp_url, autocommit=True) as probe:
            return probe.execute("SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND objid = %s "
                                 "AND granted", (PRISMA_ADVISORY_LOCK,)).fetchone()[0]

    def log(message: str) -> None:
        if message.startswith("Planned"):
            seen["after row counts"] = lock_held()
        if "stays NOT VALID" in message:
            seen["during validation"] = lock_held()

    result = sync_schema(ErpDatabase(url=erp_url), read_migrations_folder(folder).get("1_init"), log=log)
    assert seen == {"after row counts": False, "during validation": False}
    assert result.not_validated == {"c.c_pid_fkey": 1} and 0 < result.lock_held_s


def test_a_concurrent_schema_change_between_plan_and_lock_makes_it_plan_again(tmp_path, erp_url, conn):
    folder = write_folder(tmp_path, ("1_init", 'CREATE TABLE "t" ("a" INTEGER, "b" TEXT);'))
    conn.execute('CREATE TABLE "t" ("a" INTEGER)')
    attempts: list[str] = []
    done = threading.Event()

    def log(message: str) -> None:
        attempts.append(message)
        if message.startswith("Planned") and not done.is_set():
            done.set()
            conn.execute('ALTER TABLE "t" ADD COLUMN "b" TEXT')  # someone else adds it after our plan

    result = sync_schema(ErpDatabase(url=erp_url), read_migrations_folder(folder).get("1_init"), log=log,
                         backoff_s=0.01)
    assert any("planning again" in m for m in attempts)
    assert result.plan.steps == [] and result.attempts == 2


def test_a_failing_ddl_phase_leaves_only_the_committed_enum_values_and_says_so(tmp_path, erp_url, conn):
    folder = write_folder(tmp_path, ("1_init", "CREATE TYPE \"Mood\" AS ENUM ('OK', 'GREAT');\n"
                                     'CREATE TABLE "t" ("a" INTEGER, "mood" "Mood");\n'
                                     'CREATE UNIQUE INDEX "t_a_key" ON "t"("a");'))
    conn.execute("CREATE TYPE \"Mood\" AS ENUM ('OK')")
    conn.execute('CREATE TABLE "t" ("a" INTEGER)')
    conn.execute('INSERT INTO "t" VALUES (1), (1)')  # the unique index cannot be built
    with pytest.raises(ErpPipelinesError) as caught:
        sync(erp_url, folder)
    assert "Mood.GREAT" in str(caught.value) and "t_a_key" in str(caught.value)
    assert conn.execute("SELECT count(*) FROM information_schema.columns WHERE table_name = 't'").fetchone() == (1,)
    assert conn.execute("SELECT enum_range(NULL::\"Mood\")::text").fetchone() == ("{OK,GREAT}",)
