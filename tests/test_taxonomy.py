"""CUVA 11/42 taxonomy as data, checked against the benchmark's category file, and the ECVA extension."""

from __future__ import annotations

import re
from pathlib import Path

from ecva_core import taxonomy
from ecva_core.schema import Category


def test_cuva_has_11_majors_and_42_subs() -> None:
    assert len(taxonomy.all_majors(include_extended=False)) == 11
    assert len(taxonomy.CUVA_SUBS) == 42
    assert sum(len(taxonomy.subcategories(m)) for m, _ in taxonomy.all_majors(False)) == 42


def test_ecva_extends_the_major_classes() -> None:
    majors = dict(taxonomy.all_majors())
    assert len(majors) == 21
    assert majors[5] == "Traffic Accidents"
    assert {"Explosion", "Natural Hazard", "Medical", "Food Safety"} <= set(majors.values())
    assert taxonomy.is_extended(18) and not taxonomy.is_extended(5)
    assert taxonomy.subcategories(18) == []


def test_lookup_helpers() -> None:
    assert taxonomy.major_name(9) == "Fire"
    assert taxonomy.major_name(99) == "Unknown (99)"
    assert taxonomy.category_name(Category(5, 1, 5)) == "Traffic Accidents / Motor"
    assert taxonomy.category_name(Category(7)) == "Theft"
    assert taxonomy.category_name(Category(7, 9)) == "Theft / sub-category 9"
    assert taxonomy.sub_name(3, 1) == "Drowning"
    assert taxonomy.is_known(Category(8, 6)) and not taxonomy.is_known(Category(8, 7))
    assert taxonomy.is_known(Category(18, 2)) and not taxonomy.is_known(Category(30))


def test_codes_match_the_benchmark_category_file(shared_ecva: Path) -> None:
    lines = (shared_ecva / "cuva_categories.txt").read_text(encoding="utf-8").splitlines()
    majors = {int(m.group(1)) for m in (re.fullmatch(r"(\d+)-\D.*", line.strip()) for line in lines) if m}
    subs = {
        (int(m.group(1)), int(m.group(2)))
        for m in (re.fullmatch(r"(\d+)-(\d+) .*", line.strip()) for line in lines)
        if m
    }
    assert majors == set(taxonomy.CUVA_MAJORS)
    assert subs == set(taxonomy.CUVA_SUBS)
