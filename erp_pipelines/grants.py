"""The privileges each asset needs, from the code, as the exact GRANT statements to run: one source for
`erp-pipelines grants`, the generated sections of docs/privileges.md and docs/production.md, and the fix a
permission error names.

Why one source: the grants used to be typed three times (two docs pages and the error messages) and had
drifted apart (a role name in one page, a missing schema grant in the other, a table without its schema in
the error). Here they are read from what the assets declare:

- the schema sync (`erp_schema`, `prisma_migration_history`, `system_health_config`, `pipeline_state`):
  Prisma Migrate's own needs, i.e. the role owns the ERP schema (and the tables it alters), plus
  `CREATE` on the database for the plan's throw-away schema and for our own schema (own_schema.py);
- the rollups: each spec's `privileges` (table -> privileges) through `rollups.registry.ROLLUPS`, plus our
  own schema's tables (`rollups.ledger.OWN_PRIVILEGES`);
- retention: each spec's `retention_privileges`, the config row, our own schema's tables.

A plan is data: `statements()` returns `GrantStatement`s (SQL text + why), printed verbatim by the CLI and
the docs, and run verbatim by the tests. Identifiers are quoted and schema-qualified with psycopg.sql.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from psycopg import sql

from erp_pipelines import settings

PURPOSES = ("sync", "rollups", "retention")
ALL = "all"
# The roles the docs name (use yours: `erp-pipelines grants --role NAME`).
DOC_SYNC_ROLE = "erp_owner"
DOC_ROLLUP_ROLE = "erp_rollup"
DOC_DATABASE = "erp"
DEFAULT_ERP_SCHEMA = "public"  # ErpDatabase.db_schema's default

# Which role runs which asset (docs/privileges.md's table; the journey and privilege tests follow it).
# `pipeline_state` is part of schema_sync_job, and a job has one `erp_db` resource, hence one role.
ASSET_ROLES: tuple[tuple[str, str], ...] = (
    ("erp_schema", "sync"),
    ("prisma_migration_history", "sync"),
    ("system_health_config", "sync"),
    ("pipeline_state", "sync"),
    ("rollups (every `ROLLUPS` asset) and the sensors", "rollups"),
    ("retention_pruning", "retention"),
)

_PRIVILEGE_ORDER = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "USAGE")
HEALTH_CONFIG_TABLE = "system_health_config"


@dataclass(frozen=True)
class GrantStatement:
    """One statement to run as the objects' owner (or a superuser), and why the role needs it."""

    text: str
    why: str

    def line(self) -> str:
        return f"{self.text};  -- {self.why}" if self.why else f"{self.text};"


@dataclass(frozen=True)
class Target:
    """Where the grants apply: the database, the ERP's schema and our own schema (settings by default)."""

    database: str
    erp_schema: str
    own_schema: str

    @classmethod
    def for_database(cls, db: object) -> Target:
        """The target of a connector (ErpDatabase or any prisma.connection.Connector)."""
        schema = getattr(db, "db_schema", None) or DEFAULT_ERP_SCHEMA
        return cls(_url_parts(db).get("dbname") or DOC_DATABASE, schema, settings.own_schema())

    @classmethod
    def from_settings(cls, database: str | None = None) -> Target:
        """The ERP database and schema of ERP_DATABASE_URL / ERP_DATABASE_SCHEMA (a `?schema=` counts),
        our schema of ERP_PIPELINES_SCHEMA; without a URL the defaults (database `erp`, schema `public`)."""
        if settings.erp_database_url():
            from erp_pipelines.resources import erp_database

            found = cls.for_database(erp_database())
            return cls(database or found.database, found.erp_schema, found.own_schema)
        erp_schema, dbname = settings.erp_database_schema() or DEFAULT_ERP_SCHEMA, DOC_DATABASE
        return cls(database or dbname, erp_schema, settings.own_schema())


def _url_parts(db: object) -> dict[str, str]:
    """user and dbname of a connector's password-free URL (a URL, or a libpq key=value string)."""
    from urllib.parse import unquote, urlsplit

    from psycopg.conninfo import conninfo_to_dict

    safe_url = getattr(db, "safe_url", None)
    text = safe_url() if safe_url else ""
    if "://" in text:
        parts = urlsplit(text)
        return {k: v for k, v in (("user", unquote(parts.username or "")),
                                  ("dbname", unquote(parts.path.lstrip("/")))) if v}
    try:
        return {k: str(v) for k, v in conninfo_to_dict(text).items()}
    except Exception:  # noqa: BLE001 - a URL we cannot parse only loses the names in a message
        return {}


def login_role(db: object) -> str | None:
    """The role a connector logs in as (from its password-free URL), for the GRANT a message names."""
    return _url_parts(db).get("user")


def _privileges(text: str) -> list[str]:
    wanted = {p.strip().upper() for p in text.split(",") if p.strip()}
    unknown = wanted - set(_PRIVILEGE_ORDER)
    if unknown:
        raise ValueError(f"unknown privilege(s) {sorted(unknown)} in {text!r}")
    return [p for p in _PRIVILEGE_ORDER if p in wanted]


def _merge(into: dict[str, set[str]], needs: Mapping[str, str]) -> None:
    for table, privileges in needs.items():
        into.setdefault(table, set()).update(_privileges(privileges))


def _q(*parts: str) -> str:
    return sql.Identifier(*parts).as_string(None)


def own_aggregates() -> set[str]:
    """Aggregate tables of declared rollups: they live in our own schema, created by the rollup's first run
    (rollups/declared_sql.py), so the role that runs the rollups needs CREATE there, not a table GRANT."""
    from erp_pipelines.rollups.registry import ROLLUPS

    return {spec.aggregate_table for spec in ROLLUPS if spec.extra.get("aggregate_schema") == "own"}


def erp_table_needs(purposes: Iterable[str]) -> dict[str, set[str]]:
    """ERP table (or sequence: privilege USAGE) -> privileges, for the rollup/retention purposes."""
    from erp_pipelines.rollups.registry import ROLLUPS

    ours = own_aggregates()
    needs: dict[str, set[str]] = {}
    for purpose in purposes:
        for spec in ROLLUPS:
            if purpose == "rollups":
                _merge(needs, {t: p for t, p in spec.privileges.items() if t not in ours})
                # pipeline-state's capture triggers fire on these tables; the sensors read them (SELECT)
            elif purpose == "retention":
                _merge(needs, {t: p for t, p in spec.retention_privileges.items() if t not in ours})
        if purpose == "retention":
            _merge(needs, {HEALTH_CONFIG_TABLE: "SELECT"})
    return needs


def own_table_needs(purposes: Iterable[str]) -> dict[str, set[str]]:
    from erp_pipelines.rollups.ledger import OWN_PRIVILEGES

    needs: dict[str, set[str]] = {}
    if set(purposes) & {"rollups", "retention"}:
        _merge(needs, OWN_PRIVILEGES)
    return needs


def statements(role: str, purposes: Iterable[str], target: Target) -> list[GrantStatement]:
    """The statements that give `role` what the assets of `purposes` need, in the order to run them."""
    chosen = [p for p in PURPOSES if p in set(purposes) or ALL in set(purposes)]
    unknown = set(purposes) - set(PURPOSES) - {ALL}
    if unknown:
        raise ValueError(f"unknown purpose(s) {sorted(unknown)}: choose from {', '.join((*PURPOSES, ALL))}")
    r, db, erp, own = _q(role), _q(target.database), _q(target.erp_schema), _q(target.own_schema)
    out: list[GrantStatement] = []
    if "sync" in chosen:
        out += [
            GrantStatement(f"GRANT CONNECT, CREATE ON DATABASE {db} TO {r}",
                           f"CREATE: the plan's throw-away schema, and our schema {own} (pipeline_state)"),
            GrantStatement(f"ALTER SCHEMA {erp} OWNER TO {r}",
                           "the sync creates and alters the ERP's tables, as Prisma Migrate does; tables that "
                           f"exist already must be owned by {r} too (ALTER TABLE ... OWNER TO {r}); "
                           "pipeline_state re-enables and drops capture triggers, which only a table's owner may"),
        ]
    rest = [p for p in chosen if p != "sync"]
    if not rest:
        return out
    if "sync" not in chosen:
        out.append(GrantStatement(f"GRANT CONNECT ON DATABASE {db} TO {r}", ""))
    out.append(GrantStatement(f"GRANT USAGE ON SCHEMA {erp} TO {r}", "the ERP's schema"))
    for table, privileges in sorted(erp_table_needs(rest).items()):
        ordered = [p for p in _PRIVILEGE_ORDER if p in privileges]
        if ordered == ["USAGE"]:
            out.append(GrantStatement(f"GRANT USAGE ON SEQUENCE {_q(target.erp_schema, table)} TO {r}",
                                      "the aggregate's id on INSERT"))
        else:
            out.append(GrantStatement(f"GRANT {', '.join(ordered)} ON {_q(target.erp_schema, table)} TO {r}", ""))
    own_needs = own_table_needs(rest)
    if own_needs:
        if "rollups" in rest and own_aggregates():
            out.append(GrantStatement(f"GRANT USAGE, CREATE ON SCHEMA {own} TO {r}",
                                      "our schema, created by pipeline_state (docs/own_schema.md); CREATE: the "
                                      "declared rollups' aggregate tables, made there by their first run"))
        else:
            out.append(GrantStatement(f"GRANT USAGE ON SCHEMA {own} TO {r}",
                                      "our schema, created by pipeline_state (docs/own_schema.md)"))
        for table, privileges in sorted(own_needs.items()):
            ordered = [p for p in _PRIVILEGE_ORDER if p in privileges]
            out.append(GrantStatement(f"GRANT {', '.join(ordered)} ON {_q(target.own_schema, table)} TO {r}", ""))
    return out


def script(role: str, purposes: Iterable[str], target: Target) -> str:
    """The statements as one SQL script, one per line (what `erp-pipelines grants` prints)."""
    return "".join(s.line() + "\n" for s in statements(role, purposes, target))


# -- a permission error names the GRANT that fixes it -------------------------------------------------------

_DENIED = re.compile(r'permission denied for (table|relation|schema|sequence|view|database) "?([\w.$]+)"?')


def fix_for(message: str, role: str | None, target: Target, purposes: Iterable[str]) -> tuple[str, str]:
    """(the object, the GRANT that fixes it) for PostgreSQL's `permission denied for KIND NAME` message;
    the GRANT is one of `statements(role, purposes, target)`, or the whole list when none matches."""
    who = role or "<role>"
    found = _DENIED.search(message)
    planned = statements(who, purposes, target)
    if found is None:
        return f"database role {who}", "; ".join(s.text for s in planned)
    kind, name = found.group(1), found.group(2)
    bare = name.split(".")[-1]
    if kind == "database":
        obj = f"database {_q(name)}"
        match = [s for s in planned if " ON DATABASE " in s.text]
    elif kind == "schema":
        obj = f"schema {_q(name)}"
        match = [s for s in planned if f" SCHEMA {_q(bare)} " in s.text]
    else:
        schema = target.own_schema if bare in own_table_needs(["rollups", "retention"]) else target.erp_schema
        obj = f"{'sequence' if kind == 'sequence' else 'table'} {_q(schema, bare)}"
        match = [s for s in planned if s.text.split(" TO ")[0].endswith(f" {_q(schema, bare)}")]
    if not match:  # the object is not one the purposes need: the whole list, so nothing is guessed
        match = planned
    return obj, "; ".join(s.text for s in match)


# -- generated docs -----------------------------------------------------------------------------------------

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DOC_TARGET = Target(DOC_DATABASE, DEFAULT_ERP_SCHEMA, settings.DEFAULT_OWN_SCHEMA)
WRITE_COMMAND = "python -m erp_pipelines.grants --write-docs"
START = "<!-- grants:{name} -->"
END = "<!-- /grants:{name} -->"


def doc_blocks() -> dict[str, str]:
    """Marker name -> the generated block (a fenced bash command and its SQL) for the docs pages."""
    blocks = {}
    for name, role, purposes in (
        ("sync", DOC_SYNC_ROLE, ["sync"]),
        ("rollups", DOC_ROLLUP_ROLE, ["rollups", "retention"]),
    ):
        flags = " ".join(f"--for {p}" for p in purposes)
        blocks[name] = (
            f"<!-- Generated by `{WRITE_COMMAND}` from the code (erp_pipelines/grants.py); do not edit. -->\n"
            "```bash\n"
            f"erp-pipelines grants --role {role} {flags}   # prints:\n"
            "```\n\n"
            "```sql\n" + script(role, purposes, DOC_TARGET) + "```\n"
        )
    roles = {"sync": DOC_SYNC_ROLE, "rollups": DOC_ROLLUP_ROLE, "retention": DOC_ROLLUP_ROLE}
    rows = "".join(f"| {asset if ' ' in asset else '`' + asset + '`'} | `{roles[p]}` | `--for {p}` |\n"
                   for asset, p in ASSET_ROLES)
    blocks["roles"] = (
        f"<!-- Generated by `{WRITE_COMMAND}` from the code (erp_pipelines/grants.py); do not edit. -->\n"
        "| asset | runs as | its grants |\n|---|---|---|\n" + rows + "\n" + pipeline_state_role_why(roles["sync"])
    )
    return blocks


def pipeline_state_role_why(role: str) -> str:
    """Why `pipeline_state` runs as the role that owns the raw tables, not as the nightly rollup role (the
    least privilege: it needs the table owner's rights, and running it as the owner grants nobody anything)."""
    from erp_pipelines.capture.targets import capture_targets

    tables = ", ".join(f"`{t.raw_table}`" for t in capture_targets())
    return (
        f"`pipeline_state` runs as `{role}`, the role that owns the raw tables ({tables}), because it needs "
        "that ownership: besides `CREATE TRIGGER` (for which the `TRIGGER` privilege would do) it re-enables a "
        "capture trigger found disabled (`ALTER TABLE ... ENABLE TRIGGER`) and, on opt-out, drops its triggers "
        "(`DROP TRIGGER`), and PostgreSQL lets only a table's owner do either. Running it as the rollup role "
        "would instead need `TRIGGER` on the app's tables for the role whose credentials the daemon holds every "
        "night (a trigger runs code in every app write), plus `CREATE` on the database for our schema "
        "(`CREATE SCHEMA IF NOT EXISTS` is checked even when the schema exists) and still fail on those two "
        f"paths. `{role}` holds all of it already for the sync (it owns the ERP's schema and tables, and has "
        "`CREATE` on the database for the plan's throw-away schema), so running `pipeline_state` as it grants no "
        "role anything more; it is part of `schema_sync_job`, whose one `erp_db` resource is one role. The "
        "trigger functions it creates are `SECURITY DEFINER` with `search_path` fixed and `EXECUTE` revoked "
        "from `PUBLIC` (section 3).\n"
    )


DOC_PAGES = (PROJECT_ROOT / "docs" / "privileges.md", PROJECT_ROOT / "docs" / "production.md")


def with_blocks(text: str, blocks: Mapping[str, str]) -> str:
    """`text` with every `<!-- grants:NAME -->` ... `<!-- /grants:NAME -->` section replaced by its block."""
    for name, block in blocks.items():
        start, end = START.format(name=name), END.format(name=name)
        pattern = re.compile(re.escape(start) + r"\n.*?" + re.escape(end), re.S)
        text = pattern.sub(lambda _m, s=start, e=end, b=block: f"{s}\n{b}{e}", text)
    return text


def stale_pages() -> list[Path]:
    blocks = doc_blocks()
    return [p for p in DOC_PAGES if with_blocks(p.read_text(), blocks) != p.read_text()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m erp_pipelines.grants", description=__doc__.split("\n")[0])
    parser.add_argument("--write-docs", action="store_true", help="rewrite the generated grant sections")
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated grant section is stale")
    args = parser.parse_args(argv)
    stale = stale_pages()
    if args.write_docs:
        blocks = doc_blocks()
        for page in stale:
            page.write_text(with_blocks(page.read_text(), blocks))
            print(f"wrote {page.relative_to(PROJECT_ROOT)}")
        return 0
    for page in stale:
        print(f"{page.relative_to(PROJECT_ROOT)} is stale: run `{WRITE_COMMAND}`.", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
