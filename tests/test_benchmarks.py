"""Benchmarks run as plain scripts from the repository root, and one whose helper process dies stops
with an error instead of waiting forever. (Timings are the benchmarks' business, never asserted here.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.helper_process import Helper, HelperError

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = sorted(p.name for p in (REPO / "benchmarks").glob("bench_*.py"))


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_helper_that_exits_before_it_is_ready_raises_with_its_error_output() -> None:
    with pytest.raises(HelperError, match=r"(?s)exited with status 3.*ModuleNotFoundError: tests_gone"):
        Helper(_python("import sys; sys.stderr.write('ModuleNotFoundError: tests_gone\\n'); sys.exit(3)"), "helper")


def test_a_helper_that_dies_while_working_raises_on_the_next_question() -> None:
    helper = Helper(_python("import os, sys; print('ready', flush=True); sys.stdin.readline(); os._exit(4)"), "helper")
    assert helper.ready_line == "ready"
    with pytest.raises(HelperError, match="exited with status 4"):
        helper.ask("calls")


def test_a_silent_helper_times_out_and_is_stopped() -> None:
    helper_cmd = _python("import time; time.sleep(60)")
    with pytest.raises(HelperError, match="did not answer within 1 s"):
        Helper(helper_cmd, "helper", timeout_s=1)


def test_the_judge_benchmark_runs_as_a_plain_script_with_its_stub_in_a_child() -> None:
    command = [sys.executable, "benchmarks/bench_judge.py", "--videos", "4", "--baseline-videos", "1"]
    command += ["--latency-ms", "1", "--concurrency", "4"]
    out = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    headline = json.loads(out.stdout.strip().splitlines()[-1])
    assert headline["judge_calls"] == 48 and headline["engine_failed"] == 0 and headline["cached_rerun_calls"] == 0


@pytest.mark.parametrize("script", BENCHMARKS)
def test_every_benchmark_starts_as_a_plain_script(script: str) -> None:
    out = subprocess.run(
        [sys.executable, f"benchmarks/{script}", "--help"], cwd=REPO, capture_output=True, text=True, timeout=240
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Traceback" not in out.stderr
