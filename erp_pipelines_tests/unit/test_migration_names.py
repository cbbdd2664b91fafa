"""A wrong migration name (a `baseline_migration` typo) is answered with the closest few names and the count,
not with every name of a 180-migration folder."""

from __future__ import annotations

import pytest

from erp_pipelines.errors import ErpPipelinesError
from erp_pipelines.prisma.migrations import CLOSEST_NAMES, read_migrations_folder


def test_a_wrong_baseline_name_names_the_closest_few_and_how_many_there_are(tmp_path):
    names = [f"2025{month:02d}{day:02d}_0000_step_{month * 100 + day}" for month in range(1, 7) for day in range(1, 31)]
    for name in names:
        (tmp_path / name).mkdir()
        (tmp_path / name / "migration.sql").write_text("SELECT 1;\n", "utf-8")
    folder = read_migrations_folder(tmp_path)
    with pytest.raises(ErpPipelinesError) as error:
        folder.get("20250315_0000_step_31")  # a typo of 20250315_0000_step_315
    message = str(error.value)
    assert f"among the folder's {len(names)} migrations" in message
    assert "20250315_0000_step_315" in message
    assert sum(name in message for name in names) <= CLOSEST_NAMES + 2  # the closest, the first, the last
    assert names[0] in message and names[-1] in message
