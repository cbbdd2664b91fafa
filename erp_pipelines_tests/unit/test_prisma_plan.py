"""Planning functions on hand-built catalogs: no database, no Dagster."""

from __future__ import annotations

import pytest

from erp_pipelines.errors import ErpPipelinesError
from erp_pipelines.prisma.catalog import (
    Catalog,
    Column,
    Constraint,
    Function,
    Index,
    Sequence,
    Table,
    Trigger,
    View,
)
from erp_pipelines.prisma.changes import Phase, StepKind
from erp_pipelines.prisma.plan import build_plan
from erp_pipelines.prisma.redirect import redirect_schema
from erp_pipelines.prisma.replay import merged_enum_labels
from erp_pipelines.prisma.target import target


def col(name: str, typ: str = "integer", *, not_null=False, default=None, identity="", generated="") -> Column:
    return Column(name, typ, not_null, default, identity, generated)


def catalog(*tables: Table, **kw) -> Catalog:
    cat = Catalog("public", tables={t.name: t for t in tables}, **kw)
    cat.relations = set(cat.tables) | set(cat.indexes) | set(cat.sequences) | set(cat.views)
    return cat


def table(name: str, *columns: Column) -> Table:
    return Table(name, {c.name: c for c in columns})


def kinds(plan) -> list[StepKind]:
    return [s.kind for s in plan.ordered()]


PK_INDEX = Index("t_pkey", "t", "CREATE UNIQUE INDEX t_pkey ON t USING btree (id)", "t_pkey")
PK = Constraint("t_pkey", "t", "p", "PRIMARY KEY (id)", True, ("id",))


def test_a_unique_constraint_on_the_same_column_never_counts_as_the_primary_key():
    wanted = catalog(table("t", col("id", not_null=True)), indexes={"t_pkey": PK_INDEX},
                     constraints={("t", "t_pkey"): PK})
    live = catalog(
        table("t", col("id", not_null=True)),
        indexes={"t_id_key": Index("t_id_key", "t", "CREATE UNIQUE INDEX t_id_key ON t USING btree (id)", "t_id_key")},
        constraints={("t", "t_id_key"): Constraint("t_id_key", "t", "u", "UNIQUE (id)", True, ("id",))},
    )
    plan = build_plan(wanted, live)
    assert [(s.kind, s.object, s.table) for s in plan.steps] == [(StepKind.ADD_KEY, "t_pkey", "t")]
    assert plan.equivalents == []


def test_a_primary_key_under_another_name_is_equivalent():
    wanted = catalog(table("t", col("id")), indexes={"t_pkey": PK_INDEX}, constraints={("t", "t_pkey"): PK})
    live = catalog(
        table("t", col("id")),
        indexes={"old_pk": Index("old_pk", "t", "CREATE UNIQUE INDEX old_pk ON t USING btree (id)", "old_pk")},
        constraints={("t", "old_pk"): Constraint("old_pk", "t", "p", "PRIMARY KEY (id)", True, ("id",))},
    )
    assert build_plan(wanted, live).steps == []


def test_an_invalid_index_is_reported_with_its_fix_and_never_counts_as_present():
    wanted_index = Index("t_a_idx", "t", "CREATE INDEX t_a_idx ON t USING btree (a)", None)
    wanted = catalog(table("t", col("a")), indexes={"t_a_idx": wanted_index})
    live = catalog(table("t", col("a")), indexes={"t_a_idx": Index(**{**wanted_index.__dict__, "valid": False})})
    plan = build_plan(wanted, live)
    assert plan.steps == []
    (drift,) = plan.drift
    assert drift.kind == "invalid index" and "DROP INDEX CONCURRENTLY \"t_a_idx\"" in drift.fix
    assert "CREATE INDEX CONCURRENTLY t_a_idx" in drift.fix and "never drop" in drift.fix

    other = Index("hand_idx", "t", "CREATE INDEX hand_idx ON t USING btree (a)", None, valid=False)
    plan = build_plan(wanted, catalog(table("t", col("a")), indexes={"hand_idx": other}))
    assert kinds(plan) == [StepKind.CREATE_INDEX]  # an INVALID index of the same shape is no equivalent


def test_check_constraints_are_added_not_valid_then_validated_after_commit():
    check = Constraint("t_a_check", "t", "c", "CHECK (a >= 0)", True, ("a",))
    plan = build_plan(catalog(table("t", col("a")), constraints={("t", "t_a_check"): check}),
                      catalog(table("t", col("a"))))
    add, validate = plan.ordered()
    assert add.kind is StepKind.ADD_CHECK and add.sql.endswith("NOT VALID") and add.phase is Phase.DDL
    assert validate.kind is StepKind.VALIDATE_CONSTRAINT and validate.phase is Phase.VALIDATE
    assert (validate.table, validate.object, validate.constraint_kind) == ("t", "t_a_check", "c")


def test_new_enum_values_are_committed_in_their_own_phase_before_the_ddl_that_uses_them():
    wanted = catalog(table("t", col("s", "status", default="'NEW'::status")), enums={"status": ("OLD", "NEW")})
    live = catalog(enums={"status": ("OLD",)})
    plan = build_plan(wanted, live)
    first, second = plan.ordered()
    assert (first.kind, first.phase, first.object, first.table) == (StepKind.ADD_ENUM_VALUE, Phase.ENUM_VALUES, "NEW",
                                                                    "status")
    assert second.kind is StepKind.CREATE_TABLE
    assert plan.sql_script().index("phase 1") < plan.sql_script().index("ALTER TYPE") < plan.sql_script().index(
        "phase 2")


def test_enum_order_sequence_identity_and_generated_differences_are_drift():
    seq = Sequence("s", "bigint", 1, 1, 1, 2**63 - 1, 1, False, None)
    wanted = catalog(
        table("t", col("id", "bigint", not_null=True, identity="a"), col("g", default="(a * 2)", generated="s"),
              col("a")),
        enums={"e": ("A", "B")}, sequences={"s": seq},
        identities={("t", "id"): seq},
    )
    live = catalog(
        table("t", col("id", "bigint", not_null=True, identity="d"), col("g", default="(a * 3)", generated="s"),
              col("a")),
        enums={"e": ("B", "A")}, sequences={"s": Sequence(**{**seq.__dict__, "data_type": "integer", "increment": 5})},
        identities={("t", "id"): seq},
    )
    plan = build_plan(wanted, live)
    assert plan.steps == []
    assert sorted(d.kind for d in plan.drift) == ["enum order", "generated column", "identity", "sequence"]


def test_identity_sequence_options_are_drift():
    seq = Sequence("t_id_seq", "bigint", 1, 1, 1, 2**63 - 1, 1, False, ("t", "id"))
    wanted = catalog(table("t", col("id", "bigint", identity="d")), identities={("t", "id"): seq})
    live = catalog(table("t", col("id", "bigint", identity="d")),
                   identities={("t", "id"): Sequence(**{**seq.__dict__, "increment": 10})})
    assert [d.kind for d in build_plan(wanted, live).drift] == ["identity sequence"]


def test_virtual_and_stored_generated_columns_are_planned_as_generated_never_as_defaults():
    wanted = catalog(table("t", col("a"), col("v", default="(a + 1)", generated="v"),
                           col("s", default="(a + 2)", generated="s")))
    plan = build_plan(wanted, catalog(table("t", col("a"))))
    sqls = [s.sql for s in plan.ordered()]
    assert 'ALTER TABLE "t" ADD COLUMN "v" integer GENERATED ALWAYS AS ((a + 1)) VIRTUAL' in sqls
    assert 'ALTER TABLE "t" ADD COLUMN "s" integer GENERATED ALWAYS AS ((a + 2)) STORED' in sqls
    assert not any("DEFAULT" in s for s in sqls)


def test_missing_views_functions_and_triggers_are_created_and_different_ones_are_drift():
    fn = Function("touch", "", "trigger", "f", "plpgsql", "BEGIN RETURN NEW; END", "v f f f u",
                  "CREATE OR REPLACE FUNCTION public.touch()\n RETURNS trigger\n LANGUAGE plpgsql\nAS $$BEGIN RETURN NEW; END$$")
    view = View("v", False, " SELECT a\n   FROM t;")
    trg = Trigger("t_touch", "t", "CREATE TRIGGER t_touch BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION touch()")
    wanted = catalog(table("t", col("a")), functions={fn.key: fn}, views={"v": view}, triggers={("t", "t_touch"): trg})
    plan = build_plan(wanted, catalog(table("t", col("a"))))
    assert kinds(plan) == [StepKind.CREATE_FUNCTION, StepKind.CREATE_VIEW, StepKind.CREATE_TRIGGER]
    assert plan.ordered()[1].sql == 'CREATE VIEW "v" AS SELECT a\n   FROM t'

    changed = catalog(
        table("t", col("a")),
        functions={fn.key: Function(**{**fn.__dict__, "body": "BEGIN RETURN OLD; END"})},
        views={"v": View("v", False, " SELECT 1 AS a;")},
        triggers={("t", "t_touch"): Trigger("t_touch", "t", trg.definition.replace("BEFORE", "AFTER"))},
    )
    plan = build_plan(wanted, changed)
    assert plan.steps == []
    assert sorted(d.kind for d in plan.drift) == ["function", "trigger", "view"]


def test_a_missing_extension_is_created_first():
    wanted = catalog(table("t", col("e", "citext")), extensions={"citext", "plpgsql"})
    plan = build_plan(wanted, catalog(extensions={"plpgsql"}))
    assert [(s.kind, s.sql) for s in plan.ordered()][0] == (StepKind.CREATE_EXTENSION,
                                                            'CREATE EXTENSION IF NOT EXISTS "citext"')


def test_not_null_column_without_default_on_a_table_with_rows_is_refused():
    with pytest.raises(ErpPipelinesError, match="NOT NULL column t.b"):
        build_plan(catalog(table("t", col("a"), col("b", not_null=True))), catalog(table("t", col("a"))),
                   table_has_rows=lambda _t: True)


def test_qualified_names_are_redirected_in_the_parse_tree_and_string_literals_are_kept():
    text = ("ALTER TABLE \"public\".\"User\" ADD COLUMN \"x\" text DEFAULT 'public.x' "
            "REFERENCES public.\"Org\"(id) CHECK (x <> 'public.')")
    out = redirect_schema(text, "public", "shadow")
    assert 'shadow."User"' in out and 'shadow."Org"' in out
    assert "'public.x'" in out and "'public.'" in out and "public.\"" not in out
    regclass = redirect_schema("SELECT nextval('public.seq'::regclass), 'public.seq'", "public", "shadow")
    assert "CAST('\"shadow\".\"seq\"' AS regclass)" in regclass and "'public.seq'" in regclass
    fn = redirect_schema('CREATE FUNCTION "public"."f"() RETURNS public.mood LANGUAGE sql AS $$ SELECT 1 $$', "public",
                         "shadow")
    assert "shadow.f" in fn and "shadow.mood" in fn
    unqualified = 'CREATE TABLE "User" ("id" text)'
    assert redirect_schema(unqualified, "public", "shadow") == unqualified



def test_schema_qualified_names_in_a_do_body_are_redirected_and_other_literals_and_comments_kept():
    text = """DO $$
BEGIN
  -- public.Invoice stays in the comment
  IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = '"public"."Invoice"'::regclass) THEN
    ALTER TABLE "public"."Invoice" ADD COLUMN "a" TEXT;
    ALTER TABLE public.items ADD COLUMN "b" TEXT;
    RAISE NOTICE 'public.Invoice gets %', nextval('public.seq');
    UPDATE "Invoice" SET "a" = 'public.Invoice', "b" = '"public"."Invoice"';
  END IF;
END
$$;"""
    out = redirect_schema(text, "public", "shadow")
    assert """'"shadow"."Invoice"'::regclass""" in out and """nextval('"shadow"."seq"')""" in out
    assert 'ALTER TABLE "shadow"."Invoice"' in out and 'ALTER TABLE "shadow".items' in out
    assert "-- public.Invoice stays" in out and "RAISE NOTICE 'public.Invoice gets %'" in out
    assert """"a" = 'public.Invoice', "b" = '"public"."Invoice"'""" in out
    other_language = "DO LANGUAGE plperl $$ public.x $$"
    assert redirect_schema(other_language, "public", "shadow") == other_language

def test_enum_values_added_by_later_migrations_are_merged_where_the_type_is_created(tmp_path):
    from erp_pipelines.prisma.migrations import read_migrations_folder

    for name, text in [("1_a", "CREATE TYPE \"E\" AS ENUM ('A', 'C');"), ("2_b", "ALTER TYPE \"E\" ADD VALUE 'B' BEFORE 'C';"),
                       ("3_c", "ALTER TYPE \"E\" ADD VALUE 'D';")]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "migration.sql").write_text(text)
    assert merged_enum_labels(read_migrations_folder(tmp_path).migrations) == {"E": ["A", "B", "C", "D"]}


def test_enum_history_creates_a_slot_per_value_to_come_and_follows_value_renames(tmp_path):
    from erp_pipelines.prisma.migrations import read_migrations_folder
    from erp_pipelines.prisma.replay import enum_history

    for name, text in [("1_a", "CREATE TYPE \"E\" AS ENUM ('A', 'C');"), ("2_b", "ALTER TYPE \"E\" ADD VALUE 'B' BEFORE 'C';"),
                       ("3_c", "ALTER TYPE \"E\" RENAME VALUE 'A' TO 'A_0';"), ("4_d", "ALTER TYPE \"E\" ADD VALUE 'A';")]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "migration.sql").write_text(text)
    history = enum_history(read_migrations_folder(tmp_path).migrations)
    assert history.final_labels() == {"E": ["A_0", "B", "C", "A"]}
    created = history.create_text((0, 1), "CREATE TYPE \"E\" AS ENUM ('A', 'C')")
    assert created == "CREATE TYPE \"E\" AS ENUM ('A', 'erp_pipelines_pending_0_2', 'C', 'erp_pipelines_pending_0_3')"
    assert history.add_text((3, 1), "ALTER TYPE \"E\" ADD VALUE 'A'") == (
        "ALTER TYPE \"E\" RENAME VALUE 'erp_pipelines_pending_0_3' TO 'A'")


def test_replay_from_after_the_baseline_is_refused(tmp_path):
    from erp_pipelines.prisma.migrations import read_migrations_folder

    for name in ("1_a", "2_b", "3_c"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "migration.sql").write_text("SELECT 1;")
    folder = read_migrations_folder(tmp_path)
    t = target(folder, "2_b", "1_a", applied={"3_c"})
    assert [m.name for m in t.migrations] == ["1_a", "2_b", "3_c"]
    assert [m.name for m in target(folder, "2_b").migrations] == ["2_b"]
    with pytest.raises(ErpPipelinesError, match="comes after"):
        target(folder, "1_a", "3_c")


def test_the_sync_core_imports_nothing_from_dagster():
    import subprocess
    import sys

    code = ("import sys; import erp_pipelines.prisma.sync, erp_pipelines.prisma.plan, erp_pipelines.prisma.replay, "
            "erp_pipelines.prisma.target, erp_pipelines.prisma.changes; "
            "assert 'dagster' not in sys.modules, sorted(m for m in sys.modules if 'dagster' in m)[:5]")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_table_qualified_columns_and_trigger_targets_are_not_taken_for_schemas():
    from erp_pipelines.prisma.redirect import SchemaMap, redirect_names

    schemas = SchemaMap("public", "shadow", existing=frozenset({"public", "erp"}))
    view = 'CREATE VIEW "Active" AS SELECT "User"."id", public."User"."email" FROM "User" WHERE "User"."on"'
    out = redirect_names(view, schemas.target)
    assert '"User".id' in out and 'shadow."User".email' in out and "FROM \"User\"" in out
    trigger = 'DROP TRIGGER "t" ON "User"'
    assert redirect_names(trigger, schemas.target) == trigger
    assert "shadow_1.users" in redirect_names('ALTER TABLE "erp"."users" ADD COLUMN "x" text', schemas.target)
    assert set(schemas.names) == {"public", "erp"}


def test_a_step_in_another_schema_is_marked_in_the_sql_script():
    from erp_pipelines.prisma.changes import Plan, Step, StepKind

    plan = Plan([Step(StepKind.CREATE_TABLE, 'CREATE TABLE "Event" ("id" integer)', "Event", "Event", schema="audit"),
                 Step(StepKind.CREATE_SCHEMA, 'CREATE SCHEMA IF NOT EXISTS "audit"', "audit", schema="audit")])
    assert plan.sql_script().splitlines()[1:] == ['-- in schema audit', 'CREATE SCHEMA IF NOT EXISTS "audit";',
                                                  '-- in schema audit', 'CREATE TABLE "Event" ("id" integer);']
    assert plan.summary()["schemas_added"] == 1
