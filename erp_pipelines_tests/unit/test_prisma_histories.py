"""The generator of Prisma-shaped histories (support/prisma_histories.py), without a database: every shape is
reachable, a history is a pure function of its steps, and the scripts have the shapes Prisma writes."""

from __future__ import annotations

import random

from erp_pipelines.prisma.order import collation_key
from erp_pipelines_tests.support.prisma_histories import ALONE, WRITERS, Shape, Step, build_history


def random_steps(seed: int, migrations: int = 20) -> list[list[Step]]:
    rng = random.Random(seed)
    shapes = sorted(Shape, key=lambda s: s.value)
    return [[Step(rng.choice(shapes), rng.randrange(1000)) for _ in range(rng.randint(1, 3))]
            for _ in range(migrations)]


def test_every_shape_is_written_by_some_generated_history():
    assert set(WRITERS) == set(Shape)
    seen = set()
    for seed in range(60):
        seen |= build_history(random_steps(seed), 3, extensions=("plpgsql",)).shapes()
    assert seen == set(Shape)


def test_a_history_is_the_same_for_the_same_steps_and_its_folders_sort_in_prisma_order():
    one, two = (build_history(random_steps(7), 4, qualified=True) for _ in range(2))
    assert [(m.name, m.sql) for m in one.migrations] == [(m.name, m.sql) for m in two.migrations]
    assert one.names() == sorted(one.names(), key=collation_key)
    assert 1 <= one.baseline <= len(one.migrations)


def test_hand_written_scripts_that_cannot_share_a_migration_get_their_own():
    for seed in range(30):
        for m in build_history(random_steps(seed), 1).migrations:
            if set(m.shapes) & ALONE:
                assert len(m.shapes) == 1, m.sql
            if "CONCURRENTLY" in m.sql:
                assert m.sql.count(";") == 1, m.sql


def test_enum_value_removal_is_prismas_rename_dance_inside_begin_commit():
    history = build_history([[Step(Shape.CREATE_ENUM, 1)], [Step(Shape.ENUM_REMOVE_VALUE, 0)]], 1)
    dance = history.migrations[-1].sql
    order = ['BEGIN;', 'CREATE TYPE "Role_new" AS ENUM', 'TYPE "Role_new" USING ("role"::text::"Role_new")',
             'ALTER TYPE "Role" RENAME TO "Role_old"', 'ALTER TYPE "Role_new" RENAME TO "Role"',
             'DROP TYPE "Role_old"', "COMMIT;"]
    positions = [dance.index(part) for part in order]
    assert positions == sorted(positions)


def test_qualified_histories_name_the_schema_as_prisma_6_16_does():
    history = build_history([[Step(Shape.ADD_INDEX, 0)]], 1, qualified=True)
    assert 'CREATE TABLE "public"."Invoice"' in history.migrations[0].sql
    assert all('ON "public".' in m.sql for m in history.migrations if "CREATE INDEX" in m.sql)
