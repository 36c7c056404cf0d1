"""Judge throughput: our engine vs the official AnomEval calling pattern, on a loopback server.

1,000 videos x 3 tasks x 4 judges = 12,000 judge calls (the hallucination judge on probe answers)
against the threaded OpenAI-compatible stub (tests/openai_stub.py, run in its own process) with
50 ms latency per call. The baseline reproduces the official ``main_with_breakpoint_check``
loop: for each judge in turn, for each video in turn, a new thread pool of 3 runs the video's 3
calls (Description, Cause, Result) with the synchronous openai client, then the next video. It
omits the official per-video rewrite of the whole progress file, which would only slow it down.
The baseline runs on a subset of videos and is extrapolated linearly (it is a strict sequence of
equal rounds). Our engine posts through aiohttp (ecva_core/metrics/judge/client.py); its CPU time
per call is reported, since on a small machine that CPU, not the 50 ms, bounds its throughput.
The floor column is the least time the latency alone allows at that concurrency (calls x latency
/ concurrency). Run from the repository root: ``python benchmarks/bench_judge.py``.

The stub runs in a child process started as ``python -m benchmarks.bench_judge --serve-stub`` from the
repository root (so the child can import ``tests.openai_stub``); it answers on its stdin and stdout.
Should the child die, the benchmark stops with its exit status and error output instead of waiting.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ecva_core.config import Settings
from ecva_core.metrics.judge import JudgeCache, JudgeRequest, run_judges
from ecva_core.schema import SCORED_TASKS

TARGET_SPEEDUP = 20.0
JUDGES = ("consistency", "logic", "keyphrase", "hallucination")
OFFICIAL_PROMPTS = {  # what the official agents ask, reduced to their reply formats
    "consistency": "Decide whether feature and truth describe the same thing. Output: Score: [01]",
    "logic": "Judge whether the system output is logically reasonable, 0 to 5. Output: Score: [0-5]",
    "keyphrase": "Count the key information items included. Output: Key Information Count: N, "
    "Included Key Information Count: M",
    "hallucination": "Did the model say it cannot infer? 1 reasoning, 0 not. Output: Score: [01]",
}
OFFICIAL_REPLIES = {
    "consistency": "Score: 1",
    "logic": "Score: 4",
    "keyphrase": "Key Information Count: 4, Included Key Information Count: 2",
    "hallucination": "Score: 1",
}


REPO = Path(__file__).resolve().parents[1]
def serve_stub(latency_s: float) -> None:
    """The child: the stub, official prompts getting official-format replies and ours JSON verdicts."""
    from tests.openai_stub import OpenAIStub, Reply

    stub = OpenAIStub(default=Reply.verdict(latency_s), record_bodies=False)
    for judge, prompt in OFFICIAL_PROMPTS.items():
        stub.add_rule(_system_is(prompt), Reply.verdict(latency_s, content=OFFICIAL_REPLIES[judge]))
    print(stub.base_url, flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "calls":
            print(stub.calls, flush=True)
        elif command == "stop":
            break
    stub.close()


def _system_is(prompt: str) -> Callable[[dict[str, Any]], bool]:
    def match(body: dict[str, Any]) -> bool:
        messages = body.get("messages") or [{}]
        return messages[0].get("content") == prompt

    return match


class StubProcess:
    """The stub in its own process, so its threads do not share this process's CPU time and GIL."""

    def __init__(self, latency_s: float) -> None:
        module = "benchmarks.bench_judge"
        command = [sys.executable, "-m", module, "--serve-stub", "--latency-ms", str(latency_s * 1000.0)]
        from helper_process import Helper  # a sibling script module: this runs only in the plain-script parent

        self._helper = Helper(command, "the stub server (python -m benchmarks.bench_judge --serve-stub)", cwd=REPO)
        self.base_url: str = self._helper.ready_line

    def calls(self) -> int:
        return int(self._helper.ask("calls"))

    def stop(self) -> None:
        try:
            self._helper.proc.stdin.write("stop\n")
            self._helper.proc.stdin.flush()
            self._helper.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self._helper.close()


def _items(n_videos: int) -> list[dict[str, Any]]:
    """Synthetic ground truth and answers: distinct texts, so no two calls share a cache key."""
    items = []
    for v in range(n_videos):
        for task in SCORED_TASKS:
            items.append(
                {
                    "video_id": str(v),
                    "task": task,
                    "question": f"{task.value} question about the anomaly in video {v}.",
                    "reference": f"In video {v} a red car runs the light and hits cyclist {v} at the crossing.",
                    "answer": f"A car hits a cyclist {v} at a crossing after running a red light ({task.value}).",
                    "probe": f"I cannot tell what happens in video {v}; the clip shows no event ({task.value}).",
                    "key_phrases": ("car runs red light", f"hits cyclist {v}", "at crossing", "cyclist falls"),
                }
            )
    return items


def _requests(items: list[dict[str, Any]]) -> list[JudgeRequest]:
    out = []
    for it in items:
        for judge in JUDGES:
            probe = judge == "hallucination"
            out.append(
                JudgeRequest(
                    judge=judge,
                    video_id=it["video_id"],
                    task=it["task"],
                    question=it["question"],
                    reference=it["reference"],
                    answer=it["probe"] if probe else it["answer"],
                    key_phrases=it["key_phrases"],
                    probe="no_keyframes" if probe else None,
                )
            )
    return out


class _OfficialAgent:
    """The official agent: sync client, regex score extraction, retry while unparseable."""

    def __init__(self, base_url: str, judge: str) -> None:
        from openai import OpenAI

        self.client = OpenAI(api_key="bench-key", base_url=base_url)
        self.prompt = OFFICIAL_PROMPTS[judge]
        self.judge = judge

    def score(self, user: str) -> float | None:
        for _ in range(1000):
            completion = self.client.chat.completions.create(
                model="gpt-4o",
                messages=[{"role": "system", "content": self.prompt}, {"role": "user", "content": user}],
            )
            text = completion.choices[0].message.content or ""
            if self.judge == "keyphrase":
                m = re.search(r"Key Information Count:\s*(\d+),\s*Included Key Information Count:\s*(\d+)", text)
                if m:
                    return int(m.group(2)) / int(m.group(1)) * 5
            else:
                m = re.search(r"Score:\s*\[?([0-5])\]?", text, re.IGNORECASE)
                if m:
                    return int(m.group(1))
        return None


def _official_user(judge: str, it: dict[str, Any]) -> str:
    if judge == "consistency":
        return f'"feature": "{it["answer"]}", "truth": "{it["reference"]}"'
    if judge == "keyphrase":
        return str({"key infomation": list(it["key_phrases"]), "system output": it["answer"]})
    if judge == "hallucination":
        return it["probe"]
    return str({"base infomation": it["reference"], "system output": it["answer"]})


def run_baseline(base_url: str, items: list[dict[str, Any]]) -> tuple[float, int]:
    """For each judge, for each video: its 3 task calls in a new pool of 3, then the next video."""
    by_video: dict[str, list[dict[str, Any]]] = {}
    for it in items:
        by_video.setdefault(it["video_id"], []).append(it)
    agents = {judge: _OfficialAgent(base_url, judge) for judge in JUDGES}
    calls = 0
    start = time.perf_counter()
    for judge in JUDGES:
        for video_items in by_video.values():
            with ThreadPoolExecutor(max_workers=3) as pool:
                futures = [pool.submit(agents[judge].score, _official_user(judge, it)) for it in video_items]
                for future in futures:
                    future.result()
            calls += len(video_items)
    return time.perf_counter() - start, calls


def run_engine(base_url: str, requests: list[JudgeRequest], concurrency: int, db: Path) -> dict[str, Any]:
    settings = Settings(
        home=db.parent,
        judge_base_url=base_url,
        judge_api_key="bench-key",
        judge_model="stub-judge",
        judge_concurrency=concurrency,
        judge_timeout_s=30.0,
    )
    cache = JudgeCache(db)
    cpu = time.process_time()
    start = time.perf_counter()
    first = run_judges(requests, settings, cache)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    start = time.perf_counter()
    again = run_judges(requests, settings, cache)
    cached_s = time.perf_counter() - start
    cache.close()
    return {
        "concurrency": concurrency,
        "seconds": elapsed,
        "cpu_ms_per_call": cpu / max(1, first.calls_made) * 1000.0,
        "calls": first.calls_made,
        "scored": first.scored,
        "failed": first.failed,
        "rerun_calls": again.calls_made,
        "rerun_cache_hits": again.cache_hits,
        "rerun_seconds": cached_s,
    }


def _warm_imports() -> None:
    """Load the engine's HTTP modules once, untimed, as the baseline's clients are built untimed."""
    import aiohttp  # noqa: F401


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=1000)
    parser.add_argument("--baseline-videos", type=int, default=50, help="subset for the baseline (extrapolated)")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--serve-stub", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_stub:
        serve_stub(args.latency_ms / 1000.0)
        return

    stub = StubProcess(args.latency_ms / 1000.0)
    _warm_imports()
    try:
        items = _items(args.videos)
        requests = _requests(items)
        work = Path(tempfile.mkdtemp(prefix="bench-judge-"))
        engines = []
        for conc in args.concurrency:
            before = stub.calls()
            result = run_engine(stub.base_url, requests, conc, work / f"cache-{conc}.db")
            result["stub_calls"] = stub.calls() - before
            engines.append(result)
        subset = [it for it in items if int(it["video_id"]) < args.baseline_videos]
        base_s, base_calls = run_baseline(stub.base_url, subset)
    finally:
        stub.stop()

    factor = args.videos / args.baseline_videos
    base_full = base_s * factor
    print(f"judge calls: {len(requests)} ({args.videos} videos x 3 tasks x 4 judges), latency {args.latency_ms:g} ms")
    latency_s = args.latency_ms / 1000.0
    print(
        f"{'run':<52}{'calls':>8}{'seconds':>10}{'calls/s':>10}{'speed-up':>10}"
        f"{'floor s':>10}{'max x':>8}{'CPU ms/call':>13}"
    )
    print(
        f"{'official pattern, ' + str(args.baseline_videos) + ' videos (measured)':<52}"
        f"{base_calls:>8}{base_s:>10.2f}{base_calls / base_s:>10.1f}{'':>10}"
    )
    print(
        f"{'official pattern, ' + str(args.videos) + ' videos (extrapolated x' + f'{factor:g})':<52}"
        f"{round(base_calls * factor):>8}{base_full:>10.2f}{base_calls / base_s:>10.1f}{1.0:>10.1f}"
    )
    for e in engines:
        label = f"ecva engine, concurrency {e['concurrency']}"
        floor = e["calls"] * latency_s / e["concurrency"]
        print(
            f"{label:<52}{e['calls']:>8}{e['seconds']:>10.2f}{e['calls'] / e['seconds']:>10.1f}"
            f"{base_full / e['seconds']:>10.1f}{floor:>10.2f}{base_full / floor:>8.1f}{e['cpu_ms_per_call']:>13.3f}"
        )
    for e in engines:
        print(
            f"second run from the cache (concurrency {e['concurrency']}): {e['rerun_calls']} calls,"
            f" {e['rerun_cache_hits']} cache hits, {e['rerun_seconds']:.2f} s; stub saw {e['stub_calls']} calls in all"
        )
    print(
        f"note: the baseline ran {args.baseline_videos} of {args.videos} videos and was extrapolated linearly;"
        " it omits the official per-video progress-file rewrite"
    )
    best = max(engines, key=lambda e: base_full / e["seconds"])
    speedup = base_full / best["seconds"]
    verdict = "met" if speedup >= TARGET_SPEEDUP else "NOT met"
    print(f"target >= {TARGET_SPEEDUP:g}x: {verdict} (best {speedup:.1f}x at concurrency {best['concurrency']})")
    headline = {
        "judge_calls": len(requests),
        "latency_ms": args.latency_ms,
        "baseline_videos_measured": args.baseline_videos,
        "baseline_s_extrapolated": round(base_full, 2),
        **{f"engine_s_c{e['concurrency']}": round(e["seconds"], 2) for e in engines},
        **{f"speedup_c{e['concurrency']}": round(base_full / e["seconds"], 1) for e in engines},
        **{f"cpu_ms_per_call_c{e['concurrency']}": round(e["cpu_ms_per_call"], 3) for e in engines},
        "speedup": round(speedup, 1),
        "speedup_concurrency": best["concurrency"],
        "engine_failed": sum(e["failed"] for e in engines),
        "cached_rerun_calls": sum(e["rerun_calls"] for e in engines),
        "target_speedup": TARGET_SPEEDUP,
        "target_met": speedup >= TARGET_SPEEDUP,
    }
    print(json.dumps(headline))


if __name__ == "__main__":
    main()
