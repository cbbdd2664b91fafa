"""What a connection error tells the user to do fits the database: start the embedded server only when the
database is the embedded one, else check their own server and credentials (never `make dev` for it)."""

from __future__ import annotations

from erp_pipelines import settings


def test_the_embedded_servers_socket_gets_the_start_it_hint(monkeypatch, tmp_path):
    monkeypatch.setenv(settings.STATE_DIR, str(tmp_path))
    hint = settings.unreachable_hint(str(tmp_path / "pgdata"), "the ERP database")
    assert "embedded PostgreSQL" in hint and "erp-pipelines db start" in hint


def test_an_own_server_gets_the_check_your_server_hint_and_no_make_dev(monkeypatch, tmp_path):
    monkeypatch.setenv(settings.STATE_DIR, str(tmp_path))
    for host in ("db.internal", "10.0.0.5", "/var/run/postgresql", None):
        hint = settings.unreachable_hint(host, "the ERP database")
        assert "make dev" not in hint and "make run" not in hint and "embedded" not in hint
        assert "PGPASSWORD or ~/.pgpass" in hint
    assert "DAGSTER_PG_PASSWORD" in settings.unreachable_hint("db.internal", "Dagster's storage",
                                                              password_from=settings.DAGSTER_PG_PASSWORD)
