"""The replay's redirection without a database: unqualified names of live relations the replay's path reaches
(an installed extension's live schema) are qualified with the throw-away schema, EXECUTE literals in DO bodies
are redirected like statements, and dynamic SQL naming a live schema is refused."""

from __future__ import annotations

import pytest

from erp_pipelines.prisma.redirect import RelationGuard, SchemaMap, Unredirectable, redirect_names

SHADOW = "erp_pipelines_shadow_ab"


def _guard(path=None) -> RelationGuard:
    return RelationGuard(frozenset({"User", "User_id_seq", "Post", "user_stats"}), frozenset({"public"}), SHADOW,
                         (lambda: path) if path is not None else None)


def _schemas(guard: RelationGuard | None = None) -> SchemaMap:
    return SchemaMap("public", SHADOW, existing=frozenset({"public", "erp"}), guard=guard)


def _redirect(text: str, guard: RelationGuard | None = None) -> str:
    schemas = _schemas(guard)
    return redirect_names(text, schemas.target, schemas.guard)


def test_unqualified_names_of_live_relations_point_at_the_throw_away_schema():
    guard = _guard()
    assert f'{SHADOW}."User"' in _redirect('ALTER TABLE "User" ADD COLUMN "x" integer', guard)
    assert f'{SHADOW}."User"' in _redirect('DROP TABLE "User"', guard)
    assert f'{SHADOW}."User"' in _redirect('DROP TRIGGER "t" ON "User"', guard)
    assert f'{SHADOW}."User"' in _redirect('COMMENT ON COLUMN "User"."x" IS \'y\'', guard)
    assert f'"{SHADOW}"."User_id_seq"' in _redirect("SELECT nextval('\"User_id_seq\"')", guard)
    assert f'{SHADOW}.user_stats' in _redirect("SELECT * FROM user_stats JOIN \"Other\" o ON true", guard)
    assert f'{SHADOW}."Other"' not in _redirect("SELECT * FROM user_stats JOIN \"Other\" o ON true", guard)


def test_cte_names_temporary_tables_and_names_no_live_relation_has_are_left_as_written():
    guard = _guard()
    cte = 'WITH "Post" AS (SELECT 1 AS "id") SELECT "id" FROM "Post"'
    assert _redirect(cte, guard) == cte
    temp = 'CREATE TEMPORARY TABLE "User" ("id" integer)'
    assert _redirect(temp, guard) == temp
    other = 'ALTER TABLE "Other" ADD COLUMN "x" integer'
    assert _redirect(other, guard) == other
    assert _redirect('ALTER TABLE "User" ADD COLUMN "x" integer') == 'ALTER TABLE "User" ADD COLUMN "x" integer'


def test_a_path_the_history_sets_is_read_back_and_decides_whether_names_are_guarded():
    off = _guard(path=["erp_pipelines_shadow_ab_1"])  # SET search_path TO "erp": no live schema left on it
    _redirect('SET search_path TO "erp"', off)
    assert off.qualify("User") is None
    on = _guard(path=["erp_pipelines_shadow_ab_1", "public"])
    _redirect("SET search_path TO erp, extensions", on)
    assert on.qualify("User") == "erp_pipelines_shadow_ab_1"
    only_live = _guard(path=["public"])  # SET search_path TO extensions (a live schema holding an extension)
    _redirect("SET search_path TO extensions", only_live)
    assert only_live.qualify("User") == SHADOW


def test_unqualified_live_names_in_a_do_body_are_qualified_but_plpgsql_variables_are_not():
    text = """DO $$ DECLARE n integer; BEGIN
  SELECT count(*) INTO n FROM "User";
  INSERT INTO "Post" ("id") VALUES (n);
  UPDATE ONLY "User" SET "x" = 1;
  PERFORM nextval('"User_id_seq"');
END $$"""
    out = _redirect(text, _guard())
    assert out.count(f'"{SHADOW}"."User"') == 2 and f'"{SHADOW}"."Post"' in out
    assert f"'\"{SHADOW}\".\"User_id_seq\"'" in out and "INTO n" in out


def test_an_execute_literal_in_a_do_body_is_redirected_like_a_statement():
    text = """DO $$ BEGIN
  EXECUTE 'ALTER TABLE "erp"."users" ADD COLUMN "x" integer';
  EXECUTE 'SELECT 1 FROM "User"' INTO STRICT n;
  EXECUTE 'not SQL at all';
END $$"""
    out = _redirect(text, _guard())
    assert f'{SHADOW}_1.users' in out and f'{SHADOW}."User"' in out and "'not SQL at all'" in out
    assert '"erp"' not in out


def test_dynamic_sql_naming_a_live_schema_or_a_guarded_relation_is_refused():
    by_schema = """DO $$ BEGIN
  EXECUTE format('ALTER TABLE %I.%I ADD COLUMN "x" integer', 'erp', 'users');
END $$"""
    with pytest.raises(Unredirectable, match="schema 'erp'"):
        _redirect(by_schema)
    by_table = """DO $$ BEGIN EXECUTE 'ALTER TABLE ' || quote_ident('User') || ' ADD COLUMN x int'; END $$"""
    with pytest.raises(Unredirectable, match="relation 'User'"):
        _redirect(by_table, _guard())
    in_shadow_database = _guard()
    in_shadow_database.dynamic_ok = True
    assert _redirect(by_table, in_shadow_database) == by_table


def test_dynamic_sql_that_names_nothing_live_runs_as_written():
    text = """DO $$ BEGIN EXECUTE format('CREATE INDEX %I ON %I ("x")', 'Thing_x_idx', 'Thing'); END $$"""
    assert _redirect(text, _guard()) == text


def test_a_plpgsql_function_body_is_redirected_and_kept_as_written_but_its_dynamic_sql_is_not_refused():
    schemas = _schemas()
    text = """CREATE FUNCTION "f"() RETURNS void LANGUAGE plpgsql AS $$ BEGIN
  EXECUTE 'UPDATE "erp"."users" SET "x" = 1';
  EXECUTE format('UPDATE %I.users SET "x" = 2', 'erp');
END $$"""
    out = redirect_names(text, schemas.target, schemas.guard, schemas.bodies)
    assert f"{SHADOW}_1.users" in out
    (redirected, written), = schemas.bodies.items()
    assert redirected in out and "'UPDATE \"erp\".\"users\" SET \"x\" = 1'" in written
    assert redirect_names(text, schemas.target, schemas.guard) == text  # the catalog's way back: as written


def test_an_sql_function_body_given_as_a_string_is_redirected_and_kept_as_written():
    schemas = _schemas()
    text = 'CREATE FUNCTION "n"() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM "erp"."users" $$'
    out = redirect_names(text, schemas.target, schemas.guard, schemas.bodies)
    assert f"{SHADOW}_1.users" in out and list(schemas.bodies.values()) == [' SELECT count(*) FROM "erp"."users" ']


def test_a_drop_naming_an_unqualified_and_a_qualified_table_redirects_the_qualified_one():
    # found here: the mixed list was not a list of qualified names, so "erp"."users" was left on the live schema
    out = _redirect('DROP TABLE IF EXISTS "Post", "erp"."users"')
    assert f"{SHADOW}_1.users" in out and '"erp"' not in out
