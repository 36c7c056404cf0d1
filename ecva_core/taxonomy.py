"""Anomaly categories: CUVA's 11 major / 42 sub-categories and ECVA's extended major classes.

Codes and names follow the benchmark's ``cuva_categories.txt`` (typos such as "Drowing" fixed,
"Burning" is the prompt's "Forbidden to Burn"). ECVA extends the taxonomy with further major
classes; their official numbering is unpublished, so codes 12-21 are assigned here in the order
the benchmark lists them and are marked ``extended``.
"""

from __future__ import annotations

from ecva_core.schema import Category

CUVA_MAJORS: dict[int, str] = {
    1: "Fighting",
    2: "Animals Hurting People",
    3: "Water Incidents",
    4: "Vandalism",
    5: "Traffic Accidents",
    6: "Robbery",
    7: "Theft",
    8: "Pedestrian Incidents",
    9: "Fire",
    10: "Traffic Violations",
    11: "Burning",
}

CUVA_SUBS: dict[tuple[int, int], str] = {
    (1, 1): "Street",
    (1, 2): "Domestic",
    (1, 3): "School",
    (1, 4): "Other",
    (2, 1): "Pets",
    (2, 2): "Wild",
    (2, 3): "Other",
    (3, 1): "Drowning",
    (3, 2): "Boat",
    (3, 3): "Other",
    (4, 1): "Facility",
    (4, 2): "Graffiti",
    (4, 3): "Other",
    (5, 1): "Motor",
    (5, 2): "Non-motor",
    (5, 3): "Other",
    (6, 1): "Shop",
    (6, 2): "Bank",
    (6, 3): "Other",
    (7, 1): "Residential",
    (7, 2): "Vehicle",
    (7, 3): "Other",
    (8, 1): "Roadside",
    (8, 2): "Jaywalking",
    (8, 3): "Falling",
    (8, 4): "Disturbance",
    (8, 5): "Red light",
    (8, 6): "Other",
    (9, 1): "Building",
    (9, 2): "Forest",
    (9, 3): "Factory",
    (9, 4): "Residential",
    (9, 5): "Other",
    (10, 1): "Running",
    (10, 2): "Speeding",
    (10, 3): "Regulations",
    (10, 4): "Driving",
    (10, 5): "Other",
    (11, 1): "Paper",
    (11, 2): "Smoking",
    (11, 3): "Firework",
    (11, 4): "Other",
}

ECVA_EXTENDED_MAJORS: dict[int, str] = {
    12: "Environmental",
    13: "Food Safety",
    14: "Agriculture",
    15: "Public Facilities",
    16: "Natural Hazard",
    17: "Medical",
    18: "Explosion",
    19: "Building",
    20: "Public Safety",
    21: "Social Unrest",
}

ALL_MAJORS: dict[int, str] = {**CUVA_MAJORS, **ECVA_EXTENDED_MAJORS}


def all_majors(include_extended: bool = True) -> list[tuple[int, str]]:
    """Major classes as (code, name), CUVA's 11 first, then ECVA's extension."""
    source = ALL_MAJORS if include_extended else CUVA_MAJORS
    return sorted(source.items())


def subcategories(major: int) -> list[tuple[int, str]]:
    """Sub-categories (code, name) of a CUVA major class; extended classes have none published."""
    return sorted((sub, name) for (maj, sub), name in CUVA_SUBS.items() if maj == major)


def is_extended(major: int) -> bool:
    """True for ECVA's extended major classes (not part of CUVA)."""
    return major in ECVA_EXTENDED_MAJORS


def is_known(category: Category) -> bool:
    """True when the major (and the sub-category, if given) exists in the taxonomy."""
    if category.major not in ALL_MAJORS:
        return False
    if category.sub is None or is_extended(category.major):
        return True
    return (category.major, category.sub) in CUVA_SUBS


def major_name(major: int) -> str:
    """Name of a major class, or ``"Unknown (N)"`` for a code outside the taxonomy."""
    return ALL_MAJORS.get(major, f"Unknown ({major})")


def sub_name(major: int, sub: int) -> str | None:
    """Name of a CUVA sub-category, or None when the pair is not in the taxonomy."""
    return CUVA_SUBS.get((major, sub))


def category_name(category: Category) -> str:
    """Readable name such as ``"Traffic Accidents / Motor"`` (major only when the sub is unknown)."""
    major = major_name(category.major)
    if category.sub is None:
        return major
    sub = sub_name(category.major, category.sub)
    return f"{major} / {sub}" if sub else f"{major} / sub-category {category.sub}"
