"""graph_doc.py's pure parts: summaries, ordering, the diagram, tables and the README section."""

from __future__ import annotations

import pytest

from erp_pipelines import graph_doc as gd

DOC = gd.GraphDoc(
    assets=[
        gd.AssetRow("users", "erp", "table", "The ERP's users.", (), True),
        gd.AssetRow("daily", "rollups", "daily", "One row a day | per client.", ("users",), False),
    ],
    checks=[gd.CheckRow("daily:fresh", "fresh", "daily", "rollups", "check", "Fresh.", ("users",))],
    jobs=[gd.JobRow("nightly", ("daily",), "Nightly rollup.")],
    schedules=[gd.ScheduleRow("at_two", "0 2 * * *", "UTC", "nightly", "Runs at two.")],
    sensors=[gd.SensorRow("late", "asset sensor", ("nightly",), ("users",), "Late rows.")],
)


def test_a_summary_is_the_first_paragraph_on_one_line():
    assert gd.summary("First line\ncontinues.\n\nSecond paragraph.") == "First line continues."
    assert gd.summary(None) == ""


def test_a_long_summary_is_cut_to_its_first_sentence():
    text = "Short first sentence. " + "word " * 100
    assert gd.summary(text, longest=50) == "Short first sentence."


def test_assets_come_after_their_dependencies_ties_by_name():
    deps = {"c": {"a"}, "b": set(), "a": set()}
    assert gd._toposort(deps, ["c", "b", "a"]) == ["a", "b", "c"]


def test_depth_is_the_longest_chain_above_an_asset():
    assert gd._depth({"a": set(), "b": {"a"}, "c": {"a", "b"}}) == {"a": 0, "b": 1, "c": 2}


def test_groups_are_ordered_by_their_first_computed_asset():
    deps = {"raw": set(), "sync": set(), "roll": {"raw", "sync"}}
    groups = {"raw": "rollups", "sync": "schema", "roll": "rollups"}
    assert gd._ordered_assets(deps, groups, external={"raw"}) == ["sync", "raw", "roll"]


def test_the_diagram_has_groups_shapes_and_every_edge():
    diagram = gd.mermaid(DOC)
    assert diagram.startswith("flowchart LR")
    for line in [
        '  subgraph g_erp["erp"]',
        '    a_users[("users")]',
        '    a_daily["daily"]',
        '    c_daily_fresh{{"fresh"}}',
        '    j_nightly[["nightly"]]',
        "  a_users --> a_daily",
        "  a_daily -.- c_daily_fresh",
        "  a_users -.-> c_daily_fresh",
        "  s_at_two --> j_nightly",
        "  n_late --> j_nightly",
        "  n_late -.-> a_users",
        "  j_nightly -.-> a_daily",
        "  class a_users external",
    ]:
        assert line in diagram.splitlines(), line


def test_the_asset_table_lists_each_asset_then_its_checks_and_escapes_pipes():
    table = gd.asset_table(DOC).splitlines()
    assert table[0] == "| name | group | kind | what it guarantees |"
    assert [row.split(" | ")[0] for row in table[2:]] == ["| `users`", "| `daily`", "| `daily:fresh`"]
    assert "One row a day \\| per client." in table[3]


def test_the_readme_section_is_replaced_between_the_markers_only():
    readme = "# ERP\n\nintro\n<!-- asset-table -->\nold table\n<!-- /asset-table -->\nrest\n"
    updated = gd.readme_with_table(readme, "| `a` | g | asset | x |")
    assert updated == "# ERP\n\nintro\n<!-- asset-table -->\n| `a` | g | asset | x |\n<!-- /asset-table -->\nrest\n"
    assert gd.readme_with_table("# no markers\n", "table") is None


def test_a_start_marker_without_an_end_marker_is_an_error():
    with pytest.raises(SystemExit, match="no <!-- /asset-table -->"):
        gd.readme_with_table("<!-- asset-table -->\nold\n", "table")
