"""settings.py: each setting read in one place; Dagster's storage as parts, its password a setting of its own."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from erp_pipelines import settings
from erp_pipelines.embedded import EmbeddedUrls, dagster_home
from erp_pipelines.errors import DatabaseUnavailable, ErpPipelinesError
from erp_pipelines.own_schema import own_schema_name
from erp_pipelines.resources import ErpDatabase, psycopg_conninfo
from erp_pipelines.settings import DagsterStorage

PROJECT_YAML = settings.PROJECT_ROOT / "dagster.yaml"


def test_a_storage_url_splits_into_parts_with_the_password_decoded():
    storage = DagsterStorage.from_url("postgresql+psycopg2://dagster:p%40ss%2Fw@db.internal:6543/runs?sslmode=require")
    assert storage == DagsterStorage("dagster", "p@ss/w", "db.internal", 6543, "runs", {"sslmode": "require"})
    assert storage.env() == {
        "DAGSTER_PG_USERNAME": "dagster",
        "DAGSTER_PG_PASSWORD": "p@ss/w",
        "DAGSTER_PG_HOST": "db.internal",
        "DAGSTER_PG_PORT": "6543",
        "DAGSTER_PG_DB": "runs",
    }


def test_a_socket_directory_stays_a_parameter_and_the_port_defaults():
    storage = DagsterStorage.from_url("postgresql+psycopg2://postgres:@/dagster?host=/tmp/pg")
    assert (storage.host, storage.port, storage.params) == ("", 5432, {"host": "/tmp/pg"})
    assert storage.display() == "postgres@/tmp/pg:5432/dagster"


def test_the_password_is_never_in_the_display_or_the_repr():
    storage = DagsterStorage.from_url("postgresql://dagster:Repr-Pw-9@h:5432/d")
    assert "Repr-Pw-9" not in storage.display() + repr(storage)


@pytest.mark.parametrize("url", ["mysql://u:p@h/d", "postgresql://u:p@h:notaport/d", "postgresql://u:p@h"])
def test_an_unusable_storage_url_names_the_setting(url):
    with pytest.raises(ErpPipelinesError, match="DAGSTER_PG_URL"):
        DagsterStorage.from_url(url)


def test_the_parts_win_over_the_url_and_the_url_is_used_without_them():
    url = {"DAGSTER_PG_URL": "postgresql://u:pw@urlhost:5432/urldb"}
    parts = {"DAGSTER_PG_HOST": "parthost", "DAGSTER_PG_DB": "partdb", "DAGSTER_PG_USERNAME": "p"}
    assert DagsterStorage.from_env(url).host == "urlhost"
    assert DagsterStorage.from_env({**url, **parts}) == DagsterStorage("p", "", "parthost", 5432, "partdb")
    assert DagsterStorage.from_env({}) is None


def test_a_port_that_is_not_a_number_names_the_setting():
    with pytest.raises(ErpPipelinesError, match="DAGSTER_PG_PORT"):
        DagsterStorage.from_env({"DAGSTER_PG_HOST": "h", "DAGSTER_PG_DB": "d", "DAGSTER_PG_PORT": "54x"})


def test_our_connection_keywords_carry_the_parameters_and_a_timeout():
    kwargs = DagsterStorage("u", "pw", "h", 5433, "d", {"sslmode": "require"}).connect_kwargs()
    assert kwargs == {"sslmode": "require", "user": "u", "dbname": "d", "port": 5433, "host": "h",
                      "password": "pw", "connect_timeout": settings.STORAGE_CHECK_TIMEOUT_S}


def test_the_project_instance_reads_the_storage_from_the_parts(tmp_path: Path):
    (tmp_path / "dagster.yaml").write_text(PROJECT_YAML.read_text())
    env = DagsterStorage("dagster", "Yaml-Pw", "db", 5432, "dagster").env()
    assert settings.instance_storage(tmp_path, env) == DagsterStorage("dagster", "Yaml-Pw", "db", 5432, "dagster")


def test_an_unset_part_is_named_with_the_command_that_sets_it(tmp_path: Path):
    (tmp_path / "dagster.yaml").write_text(PROJECT_YAML.read_text())
    with pytest.raises(ErpPipelinesError, match="environment variable DAGSTER_PG_[A-Z]+ ") as error:
        settings.instance_storage(tmp_path, {"DAGSTER_PG_URL": "postgresql://u:p@h/d"})
    assert "erp-pipelines env" in str(error.value)


def test_an_instance_without_postgres_storage_is_not_checked(tmp_path: Path):
    assert settings.instance_storage(tmp_path, {}) is None  # no dagster.yaml: Dagster's default storage
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    assert settings.instance_storage(tmp_path, {}) is None
    settings.check_dagster_storage(tmp_path, {})  # nothing to check, no error


def test_a_postgres_url_in_a_user_s_own_dagster_yaml_is_read_too(tmp_path: Path):
    (tmp_path / "dagster.yaml").write_text("storage:\n  postgres:\n    postgres_url:\n      env: MY_URL\n")
    storage = settings.instance_storage(tmp_path, {"MY_URL": "postgresql://u:p@h:1/d"})
    assert (storage.host, storage.port, storage.db_name) == ("h", 1, "d")


def test_the_preflight_check_names_the_server_and_never_the_password(tmp_path: Path):
    (tmp_path / "dagster.yaml").write_text(PROJECT_YAML.read_text())
    env = DagsterStorage("dagster", "Preflight-Pw-3", "127.0.0.1", 1, "dagster", {}).env()
    with pytest.raises(DatabaseUnavailable) as error:
        settings.check_dagster_storage(tmp_path, env)
    message = str(error.value)
    assert "Cannot connect to Dagster's storage database" in message and "127.0.0.1:1/dagster" in message
    assert "Preflight-Pw-3" not in message


def test_the_dagster_home_erp_pipelines_writes_carries_the_url_s_parameters(tmp_path: Path):
    storage = DagsterStorage.from_url("postgresql://u:p@/dagster?host=/tmp/pg&sslmode=disable")
    home = dagster_home(tmp_path, storage)
    config = yaml.safe_load((home / "dagster.yaml").read_text())
    assert config["storage"]["postgres"]["postgres_db"]["params"] == {"host": "/tmp/pg", "sslmode": "disable"}
    assert "p" not in config["storage"]["postgres"]["postgres_db"]["params"].values()
    assert config["concurrency"] == yaml.safe_load(PROJECT_YAML.read_text())["concurrency"]


def test_the_erp_url_migrations_folder_and_state_folder_are_read_here():
    assert settings.erp_database_url({"ERP_DATABASE_URL": " postgresql://h/erp "}) == "postgresql://h/erp"
    assert settings.erp_database_url({}) is None
    assert settings.migrations_dir({"PRISMA_MIGRATIONS_DIR": "/srv/app/prisma/migrations"}) == (
        "/srv/app/prisma/migrations"
    )
    assert settings.state_dir({"ERP_PIPELINES_STATE_DIR": "/tmp/s"}) == Path("/tmp/s")
    assert settings.state_dir({}) == settings.PROJECT_ROOT / ".erp-pipelines"


def test_a_missing_erp_url_says_how_to_set_it():
    with pytest.raises(ErpPipelinesError, match="ERP_DATABASE_URL") as error:
        settings.require_erp_database_url({})
    assert "erp-pipelines env" in str(error.value)


def test_our_own_schema_name_comes_from_erp_pipelines_schema(monkeypatch):
    monkeypatch.setenv("ERP_PIPELINES_SCHEMA", " ops ")
    assert own_schema_name() == "ops"
    monkeypatch.delenv("ERP_PIPELINES_SCHEMA")
    assert own_schema_name() == "erp_pipelines"


def test_the_erp_resource_accepts_sqlalchemy_style_urls_and_shows_no_password():
    assert psycopg_conninfo("postgresql+psycopg2://u:p@h/d") == "postgresql://u:p@h/d"
    assert psycopg_conninfo("postgresql+psycopg://u:p@h/d") == "postgresql://u:p@h/d"
    assert psycopg_conninfo("postgresql://u:p@h/d") == "postgresql://u:p@h/d"
    assert ErpDatabase(url="postgresql://ops:Safe-Pw-5@h:5432/erp").safe_url() == "postgresql://ops:***@h:5432/erp"


def test_the_embedded_server_is_exported_as_the_erp_url_a_home_and_the_storage_parts(tmp_path: Path):
    urls = EmbeddedUrls(
        erp="postgresql://postgres:@/erp?host=/tmp/pg",
        dagster="postgresql+psycopg2://postgres:@/dagster?host=/tmp/pg",
        dagster_home=tmp_path,
    )
    assert urls.env() == {
        "ERP_DATABASE_URL": "postgresql://postgres:@/erp?host=/tmp/pg",
        "DAGSTER_HOME": str(tmp_path),
        "DAGSTER_PG_USERNAME": "postgres",
        "DAGSTER_PG_PASSWORD": "",
        "DAGSTER_PG_HOST": "",
        "DAGSTER_PG_PORT": "5432",
        "DAGSTER_PG_DB": "dagster",
    }
