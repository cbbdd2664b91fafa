"""Structural comparison of two schemas: every object of a catalog snapshot, as readable differences."""

from __future__ import annotations

import psycopg

from erp_pipelines.prisma.catalog import Catalog, inspect


def read_catalog(url: str, schema: str = "public") -> Catalog:
    with psycopg.connect(url) as conn, conn.transaction():
        return inspect(conn, schema)


def _items(cat: Catalog) -> dict[str, object]:
    out: dict[str, object] = {}
    for t, table in cat.tables.items():
        out[f"table {t}"] = True
        for c, col in table.columns.items():
            out[f"column {t}.{c}"] = col
    out |= {f"index {k}": v for k, v in cat.indexes.items()}
    out |= {f"constraint {t}.{n}": v for (t, n), v in cat.constraints.items()}
    out |= {f"sequence {k}": v for k, v in cat.sequences.items()}
    out |= {f"identity {t}.{c}": v for (t, c), v in cat.identities.items()}
    out |= {f"enum {k}": v for k, v in cat.enums.items()}
    out |= {f"view {k}": v for k, v in cat.views.items()}
    out |= {f"function {k}": v for k, v in cat.functions.items()}
    out |= {f"trigger {t}.{n}": v for (t, n), v in cat.triggers.items()}
    out |= {f"extension {e}": True for e in cat.extensions}
    return out


def structural_differences(expected: Catalog, actual: Catalog, ignore: tuple[str, ...] = ()) -> list[str]:
    """'missing X', 'extra X' or 'different X: expected / actual' for every object that is not the same."""
    want, have = _items(expected), _items(actual)
    diffs = []
    for key in sorted(want.keys() | have.keys()):
        if key in ignore or key.startswith("table _prisma_migrations") or key.startswith("column _prisma_migrations"):
            continue
        if key.startswith(("index _prisma_migrations", "constraint _prisma_migrations")):
            continue
        if key not in have:
            diffs.append(f"missing {key}")
        elif key not in want:
            diffs.append(f"extra {key}")
        elif want[key] != have[key]:
            diffs.append(f"different {key}: {want[key]} / {have[key]}")
    return diffs


def sibling_database(url: str, prefix: str = "ref_") -> str:
    """A new empty database on the same server as `url` (for a reference copy), and its URL."""
    from psycopg import sql

    params = psycopg.conninfo.conninfo_to_dict(url)
    name = prefix + str(params["dbname"])
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params["dbname"] = name
    return psycopg.conninfo.make_conninfo(**{k: v for k, v in params.items() if v is not None})
