"""Hostile and broken migrations folders, property-based (hypothesis): random, truncated and non-UTF-8 files,
huge files, symlinks leaving the folder, oddly sorted and look-alike names, identifiers with quotes, spaces,
unicode and reserved words. Never a traceback: an ErpPipelinesError naming the file, and nothing written."""

from __future__ import annotations

import os
import shutil
import tempfile
import unicodedata
import uuid
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from psycopg import sql

from erp_pipelines.embedded import ensure_database
from erp_pipelines.errors import ErpPipelinesError
from erp_pipelines.prisma.history import record_history
from erp_pipelines.prisma.migrations import MAX_MIGRATION_BYTES, read_migrations_folder
from erp_pipelines.prisma.order import prisma_sorted
from erp_pipelines.prisma.sync import sync_schema
from erp_pipelines.resources import DEMO_MIGRATIONS_DIR, ErpDatabase
from erp_pipelines_tests.support.snapshots import full_snapshot

BASELINE_NAME = "20251201_0000_baseline_init"
BASELINE_TEXT = (DEMO_MIGRATIONS_DIR / BASELINE_NAME / "migration.sql").read_text("utf-8")
QUIET = {"log": lambda _: None}
def examples(n: int) -> settings:
    """n examples, no per-example deadline (a shared CI box), no example database written into the tree."""
    return settings(max_examples=n, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

SQL_TOKENS = [
    "CREATE", "TABLE", "ALTER", "ADD", "COLUMN", "DROP", "INDEX", "ON", "(", ")", ",", ";", '"users"', '"x y"',
    "INTEGER", "TEXT", "NOT", "NULL", "DEFAULT", "'a''b'", "$$", "$tag$", "--", "/*", "*/", "\n", "BEGIN", "COMMIT",
    "VACUUM", "E'\\\\x'", "SELECT", "1", "REFERENCES", "CONSTRAINT", "PRIMARY KEY", "\"", "'", "DO", "ENUM",
    "CREATE TYPE", "AS", "\u00e9", "\ufeff", "\u202e",
]
contents = st.one_of(
    st.binary(max_size=400),
    st.integers(min_value=0, max_value=len(BASELINE_TEXT)).map(lambda n: BASELINE_TEXT[:n].encode("utf-8")),
    st.lists(st.sampled_from(SQL_TOKENS), max_size=40).map(lambda t: " ".join(t).encode("utf-8")),
    st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.sampled_from([
        b"\xff\xfe\x00C\x00R", b"CREATE TABLE t (id int);\n\xc3", b"SELECT " + b"(" * 5000,
        b"CREATE TABLE \"a\x00b\" (id int);", b"-- only a comment", b"", b"BEGIN; CREATE TABLE t (id int); COMMIT;",
    ]),
)
folder_names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"), min_size=1, max_size=30
).filter(lambda n: n not in (".", "..") and len(n.encode("utf-8")) <= 200)


def _check_error_names_a_file(exc: ErpPipelinesError, folder: Path) -> None:
    message = str(exc)
    assert str(folder) in message or "PRISMA_MIGRATIONS_DIR" in message, message
    assert "Traceback" not in message


def _read_everything(folder: Path) -> None:
    parsed = read_migrations_folder(folder)
    assert parsed.names() == prisma_sorted(parsed.names())
    for m in parsed.migrations:
        m.statements  # noqa: B018


@examples(300)
@given(files=st.lists(st.tuples(folder_names, contents), min_size=1, max_size=4, unique_by=lambda f: f[0]))
def test_reader_and_parser_never_raise_anything_but_a_named_error(files):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "migrations"
        folder.mkdir()
        for name, data in files:
            (folder / name).mkdir()
            (folder / name / "migration.sql").write_bytes(data)
        try:
            _read_everything(folder)
        except ErpPipelinesError as exc:
            _check_error_names_a_file(exc, folder)


@examples(100)
@given(names=st.lists(folder_names, min_size=1, max_size=8, unique=True))
def test_oddly_named_and_look_alike_folders_are_read_in_prisma_order(names):
    """Names with spaces, unicode, digits of different widths, NFC/NFD twins: Prisma's (localeCompare) order."""
    twins = [unicodedata.normalize("NFD", n) for n in names if unicodedata.normalize("NFD", n) not in names]
    every = prisma_sorted(set(names + twins))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for n in every:
            (folder / n).mkdir()
            (folder / n / "migration.sql").write_text("SELECT 1;\n")
        parsed = read_migrations_folder(folder)
        assert parsed.names() == every
        pivot = every[len(every) // 2]
        assert [m.name for m in parsed.up_to(pivot)] + [m.name for m in parsed.after(pivot)] == every


def test_symlinks_leaving_the_folder_are_refused_by_name(tmp_path):
    outside = tmp_path / "outside"
    (outside / "m").mkdir(parents=True)
    (outside / "m" / "migration.sql").write_text("CREATE TABLE pwned (id int);")
    (outside / "migration_lock.toml").write_text('provider = "postgresql"\n')
    cases = {
        "dir": lambda f: os.symlink(outside / "m", f / "20250101_link"),
        "file": lambda f: ((f / "20250101_x").mkdir(), os.symlink(outside / "m" / "migration.sql", f / "20250101_x" / "migration.sql")),
        "lock": lambda f: os.symlink(outside / "migration_lock.toml", f / "migration_lock.toml"),
        "etc": lambda f: ((f / "20250101_y").mkdir(), os.symlink("/etc/passwd", f / "20250101_y" / "migration.sql")),
    }
    for label, make in cases.items():
        folder = tmp_path / f"migrations_{label}"
        folder.mkdir()
        make(folder)
        with pytest.raises(ErpPipelinesError) as err:
            read_migrations_folder(folder)
        assert "symbolic link pointing outside" in str(err.value) and str(folder) in str(err.value), label
    loop = tmp_path / "migrations_loop"
    (loop / "20250101_z").mkdir(parents=True)
    os.symlink(loop / "20250101_z" / "migration.sql", loop / "20250101_z" / "migration.sql")
    with pytest.raises(ErpPipelinesError) as err:
        read_migrations_folder(loop)
    assert "20250101_z" in str(err.value)


def test_huge_file_is_refused_before_reading(tmp_path):
    folder = tmp_path / "m"
    (folder / "20250101_huge").mkdir(parents=True)
    with open(folder / "20250101_huge" / "migration.sql", "wb") as f:
        f.truncate(MAX_MIGRATION_BYTES + 1)  # sparse: no 32 MB written to disk
    with pytest.raises(ErpPipelinesError) as err:
        read_migrations_folder(folder)
    assert "over the" in str(err.value) and "20250101_huge" in str(err.value)
    # (A folder name over 255 bytes, the other limit, cannot be created on Linux: NAME_MAX is 255 bytes.)


# -- identifiers, through the planner and a real database -----------------------------------------------------

identifiers = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x00"), min_size=1, max_size=12
).filter(lambda s: len(s.encode("utf-8")) <= 40 and s.strip() == s and s != "") | st.sampled_from(
    ["select", "table", "user", "order", "Group", 'we"ird', "a b", "ça", "名前", "x'; DROP TABLE users; --", "$1", "%s"]
)


def _quote(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


@pytest.fixture(scope="module")
def server_uri(pg_server) -> str:
    return pg_server.get_uri()


def _fresh(server_uri_base, pg_server) -> str:
    name = "h_" + uuid.uuid4().hex[:12]
    ensure_database(server_uri_base, name)
    return pg_server.get_uri(name)


def _drop(server_uri_base: str, url: str) -> None:
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(server_uri_base, autocommit=True) as c:
        c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.mark.slow
@examples(25)
@given(table=identifiers, columns=st.lists(identifiers, min_size=1, max_size=3, unique_by=str.lower))
def test_quoted_unicode_and_reserved_identifiers_round_trip_through_the_sync(pg_server, server_uri, table, columns):
    assume(len({c for c in columns}) == len(columns))
    cols = ", ".join(f"{_quote(c)} INTEGER" for c in columns)
    text = f"CREATE TABLE {_quote(table)} ({cols}, CONSTRAINT {_quote(table + '_pk')} PRIMARY KEY ({_quote(columns[0])}));\n"
    text += f"CREATE INDEX {_quote('ix ' + table)} ON {_quote(table)} ({_quote(columns[-1])});\n"
    url = _fresh(server_uri, pg_server)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / BASELINE_NAME).mkdir()
            (folder / BASELINE_NAME / "migration.sql").write_text(text, "utf-8")
            baseline = read_migrations_folder(folder).get(BASELINE_NAME)
            db = ErpDatabase(url=url)
            first = sync_schema(db, baseline, **QUIET)
            assert first.applied
            with psycopg.connect(url) as c:
                tables = c.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
                got = [r[0] for r in c.execute(
                    "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 ORDER BY attnum",
                    (_quote(table),))]
            assert tables == [(table,)] and got == columns
            assert sync_schema(db, baseline, **QUIET).plan.steps == []
    finally:
        _drop(server_uri, url)


@pytest.fixture(scope="module")
def synced_template(pg_server, server_uri):
    """A database with the demo baseline synced and recorded, used as TEMPLATE (fast copies)."""
    name = "tmpl_" + uuid.uuid4().hex[:10]
    ensure_database(server_uri, name)
    url = pg_server.get_uri(name)
    db = ErpDatabase(url=url)
    folder = read_migrations_folder(DEMO_MIGRATIONS_DIR)
    sync_schema(db, folder.get(BASELINE_NAME), **QUIET)
    record_history(db, folder, BASELINE_NAME, **QUIET)
    yield name
    _drop(server_uri, url)


@pytest.mark.slow
@examples(30)
@given(baseline_data=contents, later_data=contents)
def test_broken_baseline_or_later_migration_writes_nothing(pg_server, server_uri, synced_template, baseline_data,
                                                           later_data):
    """A fuzzed baseline (sync) and a fuzzed later migration (history) against a real, already-synced database:
    either they succeed, or an ErpPipelinesError names the file and the database is exactly as before."""
    name = "f_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server_uri, autocommit=True) as c:
        c.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(synced_template)))
    url = pg_server.get_uri(name)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "migrations"
            shutil.copytree(DEMO_MIGRATIONS_DIR, folder)
            (folder / BASELINE_NAME / "migration.sql").write_bytes(baseline_data)
            (folder / "20251231_0000_fuzzed").mkdir()
            (folder / "20251231_0000_fuzzed" / "migration.sql").write_bytes(later_data)
            db = ErpDatabase(url=url, lock_timeout_ms=2000, statement_timeout_ms=20000)
            with psycopg.connect(url, autocommit=True) as c:
                before = full_snapshot(c)
            for step in ("sync", "history"):
                try:
                    parsed = read_migrations_folder(folder)
                    if step == "sync":
                        sync_schema(db, parsed.get(BASELINE_NAME), **QUIET)
                    else:
                        record_history(db, parsed, BASELINE_NAME, **QUIET)
                except ErpPipelinesError as exc:
                    _check_error_names_a_file(exc, folder)
                    with psycopg.connect(url, autocommit=True) as c:
                        after = full_snapshot(c)
                    if step == "sync":
                        assert after == before
                    else:
                        # the baseline rows are re-recorded only if the fuzzed baseline's checksum is new: compare
                        # everything but the history, and require no row for the fuzzed migration
                        assert after[0] == before[0]
                        assert all(r[0] != "20251231_0000_fuzzed" for r in after[1])
                    break
                with psycopg.connect(url, autocommit=True) as c:
                    before = full_snapshot(c)
    finally:
        _drop(server_uri, url)
