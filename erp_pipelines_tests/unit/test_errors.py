"""errors.py: what a user sees of a failure, and never a password in it."""

from __future__ import annotations

import dagster as dg
import psycopg
import pytest

from erp_pipelines.errors import (
    DatabaseUnavailable,
    ErpPipelinesError,
    display_url,
    is_connection_lost,
    redact,
    remember_secret,
    user_errors,
)


def test_redact_removes_the_password_of_every_url_in_a_text():
    text = "tried postgresql://ops:s3cr3t@db:5432/erp then postgresql+psycopg2://dagster:pw2@h/dagster"
    assert redact(text) == "tried postgresql://ops:***@db:5432/erp then postgresql+psycopg2://dagster:***@h/dagster"


def test_redact_removes_password_pairs_of_a_conninfo_string():
    assert redact("host=db user=ops password=s3cr3t dbname=erp") == "host=db user=ops password=*** dbname=erp"
    assert redact("password = 'a b c' port=5432") == "password = *** port=5432"


def test_redact_removes_a_remembered_secret_wherever_it_appears():
    remember_secret("Remembered-Pw-42")
    assert redact('FATAL: role said "Remembered-Pw-42" twice: Remembered-Pw-42') == 'FATAL: role said "***" twice: ***'


def test_redact_keeps_a_url_without_password_and_empty_text():
    assert redact("postgresql://ops@db/erp") == "postgresql://ops@db/erp"
    assert redact("") == "" and redact(None) == ""


def test_display_url_masks_the_password_and_remembers_it():
    assert display_url("postgresql://ops:Display-Pw-7@db:5432/erp?sslmode=require") == (
        "postgresql://ops:***@db:5432/erp?sslmode=require"
    )
    assert redact("the server echoed Display-Pw-7") == "the server echoed ***"


def test_display_url_of_an_unparseable_url_says_so_without_echoing_it():
    assert display_url("postgresql://ops:pw@[not-a-host/erp") == "<unparseable database URL>"


def test_a_user_error_says_what_where_and_what_to_do_without_the_password():
    error = ErpPipelinesError(
        "Cannot read postgresql://ops:Err-Pw-1@db/erp", where="ERP_DATABASE_URL", fix="Check the URL."
    )
    assert str(error) == "Cannot read postgresql://ops:***@db/erp Where: ERP_DATABASE_URL. What to do: Check the URL."


def test_an_unreachable_database_is_a_retryable_failure_and_a_bad_migration_is_not():
    with pytest.raises(dg.Failure) as down:
        with user_errors():
            raise DatabaseUnavailable("Cannot connect to the ERP database: x")
    assert down.value.allow_retries is True
    with pytest.raises(dg.Failure) as bad:
        with user_errors():
            raise ErpPipelinesError("Migration m is not valid PostgreSQL")
    assert bad.value.allow_retries is False
    with pytest.raises(ValueError):  # a bug stays a bug (traceback), not a user error
        with user_errors():
            raise ValueError("bug")


def test_a_lost_connection_is_told_apart_from_a_failing_statement():
    assert is_connection_lost(psycopg.OperationalError("server closed the connection unexpectedly"))
    assert is_connection_lost(psycopg.errors.AdminShutdown())
    assert not is_connection_lost(psycopg.errors.QueryCanceled())  # statement_timeout: the SQL's fault
    assert not is_connection_lost(psycopg.errors.UndefinedTable())
    assert not is_connection_lost(ValueError())
