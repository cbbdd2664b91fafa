"""Migration order is Prisma's (`localeCompare` in Node), checked against Node itself on many generated names."""

from __future__ import annotations

import random
from pathlib import Path

from erp_pipelines.prisma.migrations import read_migrations_folder
from erp_pipelines.prisma.order import prisma_sorted
from erp_pipelines_tests.support.node import node_locale_sorted

PRINTABLE_ASCII = "".join(chr(c) for c in range(32, 127))


def _generated_names(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    parts = ["_", "-", " ", ".", "0", "1", "9", "a", "A", "b", "B", "z", "Z", "init", "Init", "add", "_x", "x_"]
    names: set[str] = set()
    while len(names) < count:
        style = rng.randrange(5)
        if style == 0:  # Prisma's own timestamps against hand-written ones
            stamp = f"2025{rng.randrange(10, 13)}{rng.randrange(10, 29)}"
            sep = rng.choice(["", "_", "-", " "])
            clock = rng.choice(["120000", "0000", "1200", "000000", ""])
            names.add(f"{stamp}{sep}{clock}_{rng.choice(['add_x', 'baseline_init', 'Add X', 'fix-y'])}")
        elif style == 1:
            names.add("".join(rng.choice(parts) for _ in range(rng.randrange(1, 6))))
        else:
            names.add("".join(rng.choice(PRINTABLE_ASCII) for _ in range(rng.randrange(1, 12))))
    return sorted(names)  # code-point order as the starting point


def test_folder_order_matches_node_locale_compare_on_generated_names():
    names = _generated_names(seed=9, count=3000)
    assert prisma_sorted(names) == node_locale_sorted(names)


def test_single_characters_sort_as_in_node():
    names = list(PRINTABLE_ASCII) + ["\t", "a\tb", "a b", "e", "é", "É", "E", "ea", "éa", "eb", "ñ", "n", "o"]
    assert prisma_sorted(names) == node_locale_sorted(names)


def test_underscore_timestamp_sorts_before_a_longer_timestamp_as_in_prisma():
    names = ["20251201120000_add_x", "20251201_0000_baseline_init"]
    assert prisma_sorted(names) == ["20251201_0000_baseline_init", "20251201120000_add_x"]
    assert node_locale_sorted(names) == prisma_sorted(names)


def test_folder_reader_uses_prisma_order_and_positions(tmp_path: Path):
    names = ["20251201120000_add_x", "20251201_0000_baseline_init", "20250101 first by hand", "20251202_0000_Z"]
    for name in names:
        (tmp_path / name).mkdir()
        (tmp_path / name / "migration.sql").write_text("SELECT 1;\n")
    folder = read_migrations_folder(tmp_path)
    assert folder.names() == node_locale_sorted(names)
    assert [m.name for m in folder.after("20251201_0000_baseline_init")] == ["20251201120000_add_x", "20251202_0000_Z"]
    assert [m.name for m in folder.up_to("20251201_0000_baseline_init")] == [
        "20250101 first by hand", "20251201_0000_baseline_init"]
    assert [m.name for m in folder.between("20250101 first by hand", "20251201120000_add_x")] == folder.names()[:3]
