"""The generated docs cannot drift from the code: docs/asset_graph.md and README.md's asset table."""

from __future__ import annotations

import re

import pytest

from erp_pipelines import graph_doc

FIX = f"Run `{graph_doc.WRITE_COMMAND}`."


@pytest.fixture(scope="module")
def doc() -> graph_doc.GraphDoc:
    return graph_doc.collect(graph_doc.load_defs())


@pytest.fixture(scope="module")
def keys() -> tuple[list[str], list[str]]:
    """Every asset key and every check key of `defs`, in Dagster's user notation."""
    graph = graph_doc.load_defs().resolve_asset_graph()
    assets = sorted(k.to_user_string() for k in graph.get_all_asset_keys())
    checks = sorted(k.to_user_string() for k in graph.asset_check_keys)
    return assets, checks


def _table_names(markdown: str) -> list[str]:
    """The backticked names in the first column of every table row of `markdown`."""
    names = []
    for line in markdown.splitlines():
        match = re.match(r"\|\s*`([^`]+)`\s*\|", line.strip())
        if match:
            names.append(match.group(1))
    return names


def test_asset_graph_doc_matches_the_code(doc: graph_doc.GraphDoc) -> None:
    assert graph_doc.DOC_PATH.exists(), f"{graph_doc.DOC_PATH} is missing. {FIX}"
    expected = graph_doc.render_page(doc)
    actual = graph_doc.DOC_PATH.read_text()
    assert actual == expected, f"docs/asset_graph.md is out of date with erp_pipelines.definitions.defs. {FIX}"


def test_generated_table_lists_every_asset_and_check_once(doc: graph_doc.GraphDoc, keys) -> None:
    assets, checks = keys
    names = _table_names(graph_doc.asset_table(doc))
    assert sorted(names) == sorted(assets + checks)


def test_diagram_has_a_node_for_every_asset_check_and_job(doc: graph_doc.GraphDoc, keys) -> None:
    assets, checks = keys
    diagram = graph_doc.mermaid(doc)
    assert diagram.startswith("flowchart LR")
    for name in assets:
        assert re.search(rf"\b{graph_doc._id('a_', name)}[\[(]", diagram), name
    for name in checks:
        assert f"{graph_doc._id('c_', name)}{{{{" in diagram, name
    for job in doc.jobs:
        assert f"{graph_doc._id('j_', job.name)}[[" in diagram, job.name
    for group in doc.groups():
        assert f'subgraph {graph_doc._id("g_", group)}["{group}"]' in diagram


def test_readme_asset_table_lists_every_asset_and_check_once(keys) -> None:
    lines = graph_doc.README_PATH.read_text().splitlines()
    stripped = [line.strip() for line in lines]
    assert graph_doc.README_START in stripped, f"README.md lost its {graph_doc.README_START} marker. {FIX}"
    start = stripped.index(graph_doc.README_START)
    assert graph_doc.README_END in stripped[start:], f"README.md lacks {graph_doc.README_END} after the table."
    end = stripped.index(graph_doc.README_END, start)
    names = _table_names("\n".join(lines[start + 1 : end]))
    assets, checks = keys
    for name in assets + checks:
        count = names.count(name)
        assert count == 1, f"README.md's asset table lists `{name}` {count} times, expected once. {FIX}"
    unknown = sorted(set(names) - set(assets + checks))
    assert not unknown, f"README.md's asset table lists {unknown}, which are not in defs. {FIX}"


def test_grant_sections_of_the_docs_match_the_code() -> None:
    """docs/privileges.md and docs/production.md show exactly what `erp-pipelines grants` prints."""
    from erp_pipelines import grants

    for page, names in ((grants.DOC_PAGES[0], ("roles", "sync", "rollups")), (grants.DOC_PAGES[1], ("sync", "rollups"))):
        text = page.read_text()
        for name in names:
            assert grants.START.format(name=name) in text and grants.END.format(name=name) in text, (
                f"{page.name} lost its generated grant section {name!r}")
    assert grants.stale_pages() == [], f"Run `{grants.WRITE_COMMAND}`."
    sql_lines = [line for page in grants.DOC_PAGES for line in page.read_text().splitlines()
                 if line.startswith(("GRANT ", "ALTER SCHEMA", "REVOKE "))]
    generated = {s.line() for p in (["sync"], ["rollups", "retention"])
                 for s in grants.statements(grants.DOC_SYNC_ROLE if p == ["sync"] else grants.DOC_ROLLUP_ROLE,
                                            p, grants.DOC_TARGET)}
    assert [line for line in sql_lines if line not in generated] == [], "a hand-typed GRANT in the docs"
