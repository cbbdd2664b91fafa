"""Each migration script is classified the way PostgreSQL runs it when Prisma sends it as one simple query."""

from __future__ import annotations

from pathlib import Path

import pytest

from erp_pipelines.prisma.migrations import Migration, ScriptKind


def _migration(sql: str, name: str = "20260101_0000_m", raw: bytes | None = None) -> Migration:
    return Migration(name=name, path=Path(f"/migrations/{name}/migration.sql"), raw=raw or sql.encode())


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ('CREATE TABLE "A" (id int);\nCREATE INDEX a_id ON "A" (id);', ScriptKind.IMPLICIT_TRANSACTION),
        ('ALTER TABLE "A" ADD COLUMN b int;', ScriptKind.SINGLE_STATEMENT),
        ("-- an empty migration\n", ScriptKind.SINGLE_STATEMENT),
        ('CREATE INDEX CONCURRENTLY "A_b_idx" ON "A" (b);', ScriptKind.NON_TRANSACTIONAL),
        ('DROP INDEX CONCURRENTLY "A_b_idx";', ScriptKind.NON_TRANSACTIONAL),
        ('REINDEX INDEX CONCURRENTLY "A_b_idx";', ScriptKind.NON_TRANSACTIONAL),
        ('VACUUM ANALYZE "A";', ScriptKind.NON_TRANSACTIONAL),
        ('ANALYZE "A";', ScriptKind.SINGLE_STATEMENT),
        ("BEGIN;\nCREATE TABLE b (id int);\nCOMMIT;", ScriptKind.EXPLICIT_TRANSACTION),
        ("START TRANSACTION;\nCREATE TABLE b (id int);\nROLLBACK;", ScriptKind.EXPLICIT_TRANSACTION),
        ('CREATE TABLE c (id int);\nCREATE INDEX CONCURRENTLY c_id ON c (id);', ScriptKind.UNRUNNABLE),
        ("BEGIN;\nCREATE TABLE d (id int);\nCOMMIT;\nVACUUM d;", ScriptKind.UNRUNNABLE),
    ],
)
def test_script_kind_follows_how_postgresql_runs_a_simple_query(sql: str, kind: ScriptKind):
    assert _migration(sql).kind is kind


def test_concurrent_statements_get_a_transactional_form_for_planning():
    m = _migration('CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "User_email key" ON "public"."User" (lower(email));')
    (stmt,) = m.statements
    assert stmt.node_type == "IndexStmt" and stmt.non_transactional and not stmt.is_transaction_control
    assert "CONCURRENTLY" not in stmt.transactional_text.upper()
    assert stmt.transactional_text.startswith('CREATE UNIQUE INDEX IF NOT EXISTS "User_email key" ON public."User"')
    reindex = _migration("REINDEX (VERBOSE, CONCURRENTLY) INDEX x;").statements[0]
    assert reindex.transactional_text == "REINDEX (VERBOSE) INDEX x"
    detach = _migration("ALTER TABLE p DETACH PARTITION c CONCURRENTLY;").statements[0]
    assert detach.non_transactional and detach.transactional_text == "ALTER TABLE p DETACH PARTITION c"
    vacuum = _migration("VACUUM x;").statements[0]
    assert vacuum.transactional_text.startswith("--")  # no effect on a schema: a comment when replayed


def test_transaction_control_is_flagged_and_ordinary_statements_keep_their_text():
    m = _migration("BEGIN;\nCREATE TABLE b (id int);\nCOMMIT;\n")
    assert [s.is_transaction_control for s in m.statements] == [True, False, True]
    assert m.statements[1].transactional_text == m.statements[1].text
    assert [s.line for s in m.statements] == [1, 2, 3]


def test_a_concurrent_index_inside_a_multi_statement_script_is_a_named_error_without_editing_advice():
    m = _migration('CREATE TABLE c (id int);\n\nCREATE INDEX CONCURRENTLY c_id ON c (id);', name="20260102_idx")
    error = m.unrunnable_error()
    assert error is not None
    message = str(error)
    assert "20260102_idx" in message and "line 3" in message and "CREATE INDEX CONCURRENTLY" in message
    assert "mark_applied: [20260102_idx]" in message
    assert _migration("CREATE TABLE c (id int);").unrunnable_error() is None


def test_crlf_and_lf_variants_of_a_file_have_the_same_accepted_checksums():
    lf = _migration("", raw=b"CREATE TABLE a (id int);\nCREATE TABLE b (id int);\n")
    crlf = _migration("", raw=b"CREATE TABLE a (id int);\r\nCREATE TABLE b (id int);\r\n")
    assert lf.checksum != crlf.checksum
    assert crlf.checksum in lf.accepted_checksums and lf.checksum in crlf.accepted_checksums
    edited = _migration("", raw=b"CREATE TABLE a (id bigint);\nCREATE TABLE b (id int);\n")
    assert edited.checksum not in lf.accepted_checksums
