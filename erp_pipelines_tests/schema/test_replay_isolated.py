"""The replay reads and writes no live object, measured: while another session holds ACCESS EXCLUSIVE on live
tables of the target schema and of another schema, a replay of a history naming both neither waits (its
lock_timeout would fire) nor holds a lock on any relation outside its throw-away schemas (pg_locks, read from
a third session while the replay sleeps inside its own transaction), and no live sequence moves."""

from __future__ import annotations

import threading

import psycopg

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
SELECT pg_sleep(1.5);""",
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
    migrations = history(tmp_path / "m", HISTORY)
    with psycopg.connect(erp_url, autocommit=True) as setup:
        setup.execute(LIVE)
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
    wanted = outcome["replayed"].catalog
    assert set(wanted.tables["User"].columns) == {"id", "email", "name"}
    with psycopg.connect(erp_url, autocommit=True) as after:
        assert after.execute(SEQUENCES).fetchone() == sequences_before
        assert after.execute('SELECT count(*) FROM "User"').fetchone()[0] == 0


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
ALTER TABLE "Profile" ADD COLUMN "ticket" BIGINT DEFAULT nextval('"erp"."ticket_seq"');""",
    })
    with psycopg.connect(erp_url, autocommit=True) as conn:
        conn.execute(migrations[0].path.read_text())  # what `prisma migrate deploy` builds
        plan, _live, wanted, _print = plan_sync(conn, migrations, "public")
    assert plan.steps == [] and plan.drift == [], (plan.markdown())
    assert "erp_pipelines_shadow" not in repr(wanted)
