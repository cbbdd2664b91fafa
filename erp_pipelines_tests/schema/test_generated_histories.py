"""Property: any Prisma-shaped history, baselined at any point, ends the sync + history run exactly where
`prisma migrate deploy` would have put the database.

Hypothesis draws a history from `support/prisma_histories.py` (random evolutions of a random datamodel, in the
SQL Prisma writes and teams hand-edit) and a baseline point k. The oracle (`support/prisma_oracle.py`) applies
the folder to a fresh database the way Prisma's engine does: each migration.sql as one simple query, in
Prisma's order. The project's `erp_schema` + `prisma_migration_history` run with `replay_from` = the first
migration and `baseline_migration` = the k-th, on an empty database and on one that got the first k migrations
by hand and then drifted (an index, a foreign key, a table, a column lost; a stray column added — the stray
column is added to the oracle at the same point, since the sync keeps it). Then: both catalogs (public and the
second schema) equal the oracle's, `prisma migrate status` says "up to date", and a second run plans nothing.
On PostgreSQL 18 and 15 (`pg_major`). Example counts: `support/generated.py`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from erp_pipelines_tests.support.catalog_diff import read_catalog, structural_differences
from erp_pipelines_tests.support.databases import new_database
from erp_pipelines_tests.support.generated import bounded
from erp_pipelines_tests.support.prisma_cli import assert_prisma_up_to_date
from erp_pipelines_tests.support.prisma_histories import (
    ALL_SHAPES,
    SECOND_SCHEMA,
    History,
    Shape,
    Step,
    build_history,
)
from erp_pipelines_tests.support.prisma_oracle import apply_like_prisma
from erp_pipelines_tests.support.schema_runs import failure_text, planned_statements, sync_and_record

# Extensions a history may create, per server: only plpgsql exists on the embedded 18; Debian's 15 has contrib.
EXTENSIONS = {"18": ("plpgsql",), "15": ("plpgsql", "citext", "pgcrypto", "uuid-ossp")}
# Shapes the generator writes that the sync cannot follow yet (issue 16): the property leaves them out until
# they are fixed; each has its minimal folder in the report of the branch that found it (hist-gen).
NOT_YET: dict[Shape, str] = {}
# Shapes the property draws from (see the module docstring of prisma_histories for each one).
SHAPES = ALL_SHAPES - NOT_YET.keys()
STRAY_COLUMN = "hand_added_note"


def histories(extensions: tuple[str, ...], shapes: frozenset[Shape] = SHAPES,
              max_migrations: int = 10) -> st.SearchStrategy[History]:
    step = st.builds(Step, st.sampled_from(sorted(shapes, key=lambda s: s.value)), st.integers(0, 999))
    return st.builds(
        build_history,
        st.lists(st.lists(step, min_size=1, max_size=3), min_size=1, max_size=max_migrations),
        st.integers(1, max_migrations),
        qualified=st.booleans(),
        extensions=st.just(extensions),
    )


DRIFTS = ("index", "foreign key", "table", "column")

LOSE = {
    "index": """SELECT format('DROP INDEX %%I', c.relname) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'public' AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = c.oid)
                ORDER BY c.relname""",
    "foreign key": """SELECT format('ALTER TABLE %%I DROP CONSTRAINT %%I', t.relname, k.conname) FROM pg_constraint k
                JOIN pg_class t ON t.oid = k.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
                WHERE n.nspname = 'public' AND k.contype = 'f' ORDER BY t.relname, k.conname""",
    "table": """SELECT format('DROP TABLE %%I CASCADE', c.relname) FROM pg_class c
                JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> '_prisma_migrations'
                AND NOT EXISTS (SELECT 1 FROM pg_attribute s WHERE s.attrelid = c.oid AND s.attname = %(stray)s)
                ORDER BY c.relname""",
    "column": """SELECT format('ALTER TABLE %%I DROP COLUMN %%I', c.relname, a.attname) FROM pg_attribute a
                JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
                AND NOT a.attnotnull AND a.attname <> %(stray)s AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.refobjid = c.oid
                  AND d.refobjsubid = a.attnum AND d.classid <> 'pg_class'::regclass)
                AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND a.attnum = ANY(i.indkey))
                ORDER BY c.relname, a.attname""",
}


def add_stray_column(url: str) -> str | None:
    """A column added by hand to the first table (kept by the sync, so the oracle gets it too)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("""SELECT format('ALTER TABLE %%I ADD COLUMN %%I TEXT', c.relname, %s::text)
                              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                              WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname NOT LIKE '\\_%%'
                              ORDER BY c.relname LIMIT 1""", (STRAY_COLUMN,)).fetchone()
        if row:
            conn.execute(row[0])
        return row[0] if row else None


def lose(url: str, kinds: list[str], pick: int) -> list[str]:
    """Drop one object of each kind (chosen by `pick`) by hand, never the stray column or its table (the
    oracle has them); return the statements run."""
    done = []
    with psycopg.connect(url, autocommit=True) as conn:
        for kind in kinds:
            candidates = [r[0] for r in conn.execute(LOSE[kind], {"stray": STRAY_COLUMN})]
            if candidates:
                statement = candidates[pick % len(candidates)]
                conn.execute(statement)
                done.append(statement)
    return done


def differences(expected_url: str, actual_url: str) -> list[str]:
    out = []
    for schema in ("public", SECOND_SCHEMA):
        out += [f"{schema}: {d}" for d in structural_differences(read_catalog(expected_url, schema),
                                                                 read_catalog(actual_url, schema))]
    return out


def check_history(server, history: History, drift: list[str] | None, pick: int = 0) -> None:
    """The property for one history: drift None = an empty database, else the kinds of object lost by hand."""
    with tempfile.TemporaryDirectory(prefix="erp-hist-gen-") as tmp:
        folder = history.write(Path(tmp))
        names = history.names()
        first, baseline = names[0], names[history.baseline - 1]
        oracle, target = new_database(server), new_database(server)
        notes = [history.describe()]
        if drift is None:
            apply_like_prisma(oracle, folder)
        else:
            for url in (oracle, target):
                apply_like_prisma(url, folder, only=names[:history.baseline])
                stray = add_stray_column(url)
            apply_like_prisma(oracle, folder, only=names[history.baseline:])
            notes += [f"drift: {stray}", *lose(target, drift, pick)]
        context = "\n".join(notes)
        result = sync_and_record(target, folder, baseline, first)
        assert result.success and all(c.passed for c in result.get_asset_check_evaluations()), (
            f"{failure_text(result)}\n{context}")
        diffs = differences(oracle, target)
        assert diffs == [], "structure differs from the oracle's:\n" + "\n".join(diffs) + "\n" + context
        assert_prisma_up_to_date(target, folder)
        planned = planned_statements(target, folder, baseline, first)
        assert planned == 0, f"a second run plans {planned} statement(s)\n{context}"


@pytest.fixture
def server(pg_major: str, request: pytest.FixtureRequest):
    return request.getfixturevalue("pg_server" if pg_major == "18" else "pg15_server")


@bounded(2, 40)
@given(data=st.data())
def test_generated_history_synced_on_an_empty_database_ends_as_prisma_deploy_would(server, pg_major, data):
    check_history(server, data.draw(histories(EXTENSIONS[pg_major]), label="history"), drift=None)


@bounded(2, 40)
@given(data=st.data(), drift=st.lists(st.sampled_from(DRIFTS), min_size=1, max_size=4, unique=True),
       pick=st.integers(0, 99))
def test_generated_history_synced_on_a_hand_drifted_database_ends_as_prisma_deploy_would(
        server, pg_major, data, drift, pick):
    history = data.draw(histories(EXTENSIONS[pg_major]), label="history")
    check_history(server, history, drift=drift, pick=pick)
