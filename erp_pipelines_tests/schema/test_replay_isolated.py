"""The replay reads and writes no live object, measured: while another session holds ACCESS EXCLUSIVE on live
tables of the target schema and of another schema, a replay of a history naming both neither waits (its
lock_timeout would fire) nor holds a lock on any relation outside its throw-away schemas (pg_locks, read from
a third session while the replay sleeps inside its own transaction), and no live sequence moves. The same holds
with an installed extension in the live schema (which stays on the replay's search_path), for unqualified names,
DO bodies and their EXECUTE literals; dynamic SQL naming a live schema is refused."""

from __future__ import annotations

import threading

import psycopg
import pytest

from erp_pipelines.errors import ErpPipelinesError
from erp_pipelines.prisma.replay import SHADOW_PREFIX, replay
from erp_pipelines_tests.support.replay_folders import history

LIVE = """
CREATE TABLE "User" ("id" SERIAL PRIMARY KEY, "email" TEXT);
CREATE SCHEMA "erp";
CREATE TABLE "erp"."users" ("id" SERIAL PRIMARY KEY);
CREATE SEQUENCE "erp"."ticket_seq";
"""
HISTORY = {
    "20250101_0000_init": """CREATE TABLE "User" ("id" SERIAL PRIMARY KEY, "email" TEXT);
CREATE SCHEMA IF NOT EXISTS "erp";
CREATE TABLE "erp"."users" ("id" SERIAL PRIMARY KEY);
CREATE SEQUENCE "erp"."ticket_seq";""",
    "20250201_0000_touch_both": """ALTER TABLE "erp"."users" ADD COLUMN "tenantId" TEXT;
DROP TABLE IF EXISTS "erp"."legacy";
SELECT nextval('"erp"."ticket_seq"'), nextval('"User_id_seq"'::regclass), setval('public."User_id_seq"', 500);
INSERT INTO "User" ("email") VALUES ('x@example.com');
ALTER TABLE public."User" ADD COLUMN "name" TEXT;
DO $$ BEGIN
  PERFORM nextval('"User_id_seq"');
  UPDATE "User" SET "email" = 'y@example.com';
  EXECUTE 'ALTER TABLE "erp"."users" ADD COLUMN "viaExecute" TEXT';
  EXECUTE 'SELECT nextval(''"erp"."ticket_seq"''), setval(''"User_id_seq"'', 900)';
END $$;
CREATE FUNCTION "touch_users"() RETURNS void LANGUAGE plpgsql AS $$ BEGIN
  UPDATE "erp"."users" SET "tenantId" = 't';
  EXECUTE 'SELECT nextval(''"erp"."ticket_seq"'')';
  PERFORM nextval('"User_id_seq"');
END $$;
SELECT "touch_users"();
CREATE FUNCTION "erp_user_count"() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM "erp"."users" $$;
SELECT pg_sleep(1.5);""",
}
# the live schema holds an installed extension: it stays on the replay's path, unqualified names must not reach it
WITH_EXTENSION = {
    "20250101_0000_init": 'CREATE EXTENSION IF NOT EXISTS "citext";\n' + HISTORY["20250101_0000_init"]
    + '\nALTER TABLE "User" ADD COLUMN "handle" CITEXT;',
    "20250201_0000_touch_both": HISTORY["20250201_0000_touch_both"],
}
OUTSIDE_LOCKS = """
SELECT n.nspname::text || '.' || c.relname::text, l.mode FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE l.pid = %s AND n.nspname NOT LIKE %s AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
"""
SEQUENCES = """SELECT (SELECT last_value FROM "erp"."ticket_seq"), (SELECT last_value FROM "User_id_seq"),
                      (SELECT is_called FROM "erp"."ticket_seq")"""


def test_replay_neither_waits_for_nor_locks_live_tables_of_any_schema_and_moves_no_live_sequence(
        erp_url, tmp_path, pg_major):
    wanted = _replay_while_live_tables_are_locked(erp_url, history(tmp_path / "m", HISTORY), LIVE)
    assert set(wanted.catalog.tables["User"].columns) == {"id", "email", "name"}
    assert set(wanted.other_schemas["erp"].tables["users"].columns) == {"id", "tenantId", "viaExecute"}


@pytest.mark.parametrize("pg_major", ["15"], indirect=True)  # the embedded 18 ships no contrib extensions
def test_with_an_extension_in_the_live_schema_the_replay_still_neither_waits_for_nor_locks_live_tables(
        erp_url, tmp_path, pg_major):
    live = 'CREATE EXTENSION "citext";\n' + LIVE + '\nALTER TABLE "User" ADD COLUMN "handle" CITEXT;'
    wanted = _replay_while_live_tables_are_locked(erp_url, history(tmp_path / "m", WITH_EXTENSION), live)
    assert set(wanted.catalog.tables["User"].columns) == {"id", "email", "name", "handle"}
    assert wanted.catalog.tables["User"].columns["handle"].type == "citext"
    assert set(wanted.other_schemas["erp"].tables["users"].columns) == {"id", "tenantId", "viaExecute"}


def _replay_while_live_tables_are_locked(erp_url, migrations, live):
    """Replay `migrations` while another session holds ACCESS EXCLUSIVE on the live tables; assert no lock
    outside the throw-away schemas, no live sequence moved, no live row written; return the replay."""
    with psycopg.connect(erp_url, autocommit=True) as setup:
        setup.execute(live)
        sequences_before = setup.execute(SEQUENCES).fetchone()
    holder = psycopg.connect(erp_url)
    holder.execute('LOCK TABLE "User", "erp"."users" IN ACCESS EXCLUSIVE MODE')
    replayer = psycopg.connect(erp_url, autocommit=True)
    replayer.execute("SET lock_timeout = '1s'")  # a wait on a live lock would fail the replay
    pid = replayer.info.backend_pid
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["replayed"] = replay(replayer, migrations, "public")
        except ErpPipelinesError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    with psycopg.connect(erp_url, autocommit=True) as probe:
        seen: set = set()
        while thread.is_alive():
            seen |= set(probe.execute(OUTSIDE_LOCKS, (pid, SHADOW_PREFIX + "%")).fetchall())
            thread.join(0.1)
    holder.rollback()
    holder.close()
    replayer.close()
    assert "error" not in outcome, outcome.get("error")
    assert seen == set()
    with psycopg.connect(erp_url, autocommit=True) as after:
        assert after.execute(SEQUENCES).fetchone() == sequences_before
        assert after.execute('SELECT count(*) FROM "User"').fetchone()[0] == 0
    return outcome["replayed"]


def test_unqualified_name_never_falls_through_to_a_live_table(erp_url, tmp_path, pg_major):
    migrations = history(tmp_path / "m", {
        "20250301_0000_later_only": 'ALTER TABLE "User" ADD COLUMN "email" TEXT;',
    })
    with psycopg.connect(erp_url, autocommit=True) as conn:
        conn.execute('CREATE TABLE "User" ("id" SERIAL PRIMARY KEY, "email" TEXT)')
        try:
            replay(conn, migrations, "public")
        except ErpPipelinesError as exc:
            message = str(exc)
        else:
            message = ""
    assert 'relation "User" does not exist' in message and "already exists" not in message


def test_objects_naming_another_schema_compare_equal_to_the_same_history_applied_for_real(erp_url, tmp_path, pg_major):
    from erp_pipelines.prisma.sync import plan_sync

    migrations = history(tmp_path / "m", {
        "20250101_0000_init": """CREATE SCHEMA IF NOT EXISTS "erp";
CREATE TABLE "erp"."users" ("id" SERIAL PRIMARY KEY, "name" TEXT);
CREATE TABLE "Profile" ("id" SERIAL PRIMARY KEY, "userId" INTEGER REFERENCES "erp"."users"("id"),
    "bio" TEXT DEFAULT 'x', CONSTRAINT "Profile_user_check" CHECK ("userId" > 0));
CREATE VIEW "ProfileNames" AS SELECT p."id", u."name" FROM "Profile" p JOIN "erp"."users" u ON u."id" = p."userId";
CREATE SEQUENCE "erp"."ticket_seq";
ALTER TABLE "Profile" ADD COLUMN "ticket" BIGINT DEFAULT nextval('"erp"."ticket_seq"');
CREATE FUNCTION "erp_user_count"() RETURNS bigint LANGUAGE plpgsql AS $$ BEGIN
  EXECUTE 'SELECT 1 FROM "erp"."users" LIMIT 1';
  RETURN (SELECT count(*) FROM "erp"."users");
END $$;
CREATE FUNCTION "erp_user_ids"() RETURNS SETOF integer LANGUAGE sql STABLE AS $$
  SELECT "id" FROM "erp"."users" ORDER BY 1
$$;""",
    })
    with psycopg.connect(erp_url, autocommit=True) as conn:
        conn.execute(migrations[0].path.read_text())  # what `prisma migrate deploy` builds
        plan, _live, wanted, _print = plan_sync(conn, migrations, "public")
    assert plan.steps == [] and plan.drift == [], (plan.markdown())
    assert "erp_pipelines_shadow" not in repr(wanted)


@pytest.mark.parametrize("pg_major", ["15"], indirect=True)  # the embedded 18 ships no contrib extensions
def test_with_an_extension_in_the_live_schema_a_name_the_history_never_created_fails_as_in_a_shadow_database(
        erp_url, tmp_path, pg_major):
    with psycopg.connect(erp_url, autocommit=True) as conn:
        conn.execute('CREATE EXTENSION "citext"; CREATE TABLE "User" ("id" SERIAL PRIMARY KEY, "email" CITEXT);'
                     'CREATE SEQUENCE "live_seq"')
        for name, sql, statement in (
            ("20250301_0000_later_only", 'CREATE TABLE "Post" ("id" SERIAL, "title" CITEXT);\n'
             'ALTER TABLE "User" ADD COLUMN "email" TEXT;', 'statement 2: relation "public.User" does not exist'),
            ("20250302_0000_moves_a_sequence", "SELECT nextval('live_seq');",
             'statement 1: relation "public.live_seq" does not exist'),
        ):
            with pytest.raises(ErpPipelinesError) as caught:
                replay(conn, history(tmp_path / name, {name: sql}), "public")
            message = str(caught.value)
            assert name in message and "migration.sql" in message and statement in message, message
            assert "already exists" not in message and "erp_pipelines_shadow" not in message
        assert conn.execute("SELECT last_value, is_called FROM live_seq").fetchone() == (1, False)


def test_dynamic_sql_naming_a_live_schema_is_refused_with_the_migration_and_statement(erp_url, tmp_path, pg_major):
    migrations = history(tmp_path / "m", {
        "20250101_0000_init": """CREATE SCHEMA IF NOT EXISTS "erp";
CREATE TABLE "erp"."users" ("id" SERIAL PRIMARY KEY);
DO $$ DECLARE target text := 'erp'; BEGIN
  EXECUTE format('ALTER TABLE %I.users ADD COLUMN "x" INTEGER', target);
END $$;""",
    })
    with psycopg.connect(erp_url, autocommit=True) as conn:
        conn.execute('CREATE SCHEMA "erp"; CREATE TABLE "erp"."users" ("id" SERIAL PRIMARY KEY)')
        with pytest.raises(ErpPipelinesError) as caught:
            replay(conn, migrations, "public")
        message = str(caught.value)
        assert "20250101_0000_init" in message and "statement 3" in message and "line 3" in message, message
        assert "schema 'erp'" in message and "ERP_SHADOW_DATABASE_URL" in message
        columns = conn.execute("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'erp'")
        assert columns.fetchone()[0] == 1
        replayed = replay(conn, migrations, "public", trusted={"20250101_0000_init"})
    assert "schema 'erp'" in replayed.not_verifiable["20250101_0000_init"]


def test_dynamic_sql_naming_a_live_schema_runs_as_written_in_a_shadow_database(erp_url, tmp_path, pg_major):
    from erp_pipelines.prisma.shadow import REPLAY_APPLICATION_NAME

    migrations = history(tmp_path / "m", {
        "20250101_0000_check": """DO $$ DECLARE s text := 'public'; n integer; BEGIN
  EXECUTE format('SELECT count(*) FROM pg_namespace WHERE nspname = %L', s) INTO n;
END $$;""",
    })
    with psycopg.connect(erp_url, autocommit=True) as conn, pytest.raises(ErpPipelinesError, match="schema 'public'"):
        replay(conn, migrations, "public")
    with psycopg.connect(erp_url, autocommit=True, application_name=REPLAY_APPLICATION_NAME) as shadow:
        assert replay(shadow, migrations, "public").not_verifiable == {}
