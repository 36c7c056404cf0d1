"""The installable package: pyproject's ranges hold requirements.txt's pins, so both installs agree."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            pin = Requirement(line)
            (version,) = (spec.version for spec in pin.specifier)
            pins[canonicalize_name(pin.name)] = version
    return pins


def _declared() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    return {canonicalize_name(r.name): r for r in map(Requirement, listed)}


def test_every_pin_is_declared_with_a_range_that_holds_it() -> None:
    pins, declared = _pins(), _declared()
    assert sorted(pins) == sorted(declared), set(pins) ^ set(declared)
    for name, version in pins.items():
        assert declared[name].specifier.contains(version), (name, version, str(declared[name].specifier))


def test_torch_range_cannot_pull_another_major_build() -> None:
    """A range that admits a newer torch makes pip download gigabytes of another build."""
    spec = _declared()["torch"].specifier
    assert spec.contains(_pins()["torch"]) and not spec.contains("2.15.0") and not spec.contains("3.0")
