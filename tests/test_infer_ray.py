"""``ecva infer --engine ray`` writes to the same result cache as a local run (local ``ray.init``).

Skipped where the Ray engine (``ecva_core.infer.ray_engine``) or ray is not installed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from ecva_core.cli.main import cli
from tests.openai_stub import OpenAIStub

ray = pytest.importorskip("ray")
pytest.importorskip("ecva_core.infer.ray_engine")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": os.getcwd()}})
    yield
    ray.shutdown()


def infer(*args: str) -> dict:
    result = CliRunner().invoke(cli, ["infer", *args, "--json", "--decode-workers", "0"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_ray_run_resumes_locally_and_the_other_way_round(local_ray, demo_dataset_dir: Path, tmp_path: Path) -> None:
    with OpenAIStub() as stub:
        common = (
            "--model",
            f"openai:stub@{stub.base_url}",
            "--data",
            str(demo_dataset_dir),
            "--cache",
            str(tmp_path / "cache"),
        )
        on_ray = infer(*common, "--limit", "2", "--out", str(tmp_path / "ray.json"), "--engine", "ray")
        assert on_ray["answered"] == 12 and on_ray["engine"] == "ray" and stub.calls == 12
        local = infer(*common, "--limit", "3", "--out", str(tmp_path / "local.json"))
        assert local["from_cache"] == 12 and local["answered"] == 6 and stub.calls == 18
        again = infer(*common, "--limit", "3", "--out", str(tmp_path / "ray-again.json"), "--engine", "ray")
        assert again["from_cache"] == 18 and again["answered"] == 0 and stub.calls == 18
    assert (tmp_path / "ray-again.json").read_bytes() == (tmp_path / "local.json").read_bytes()
    rows = json.loads((tmp_path / "ray.json").read_text())
    assert len(rows) == 12 and all(r["output"] != "ERROR" and len(r["frames"]) == 16 for r in rows)
