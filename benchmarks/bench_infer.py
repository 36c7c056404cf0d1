"""``ecva infer`` against the official inference pattern, on a loopback server with 50 ms per call.

Workload: 200 demo-like videos (the generated demo clips, each remuxed into a file of its own so
every video has its own content hash) x 3 scored tasks x (normal + hallucination probe with the
annotated moments cut out) = 1,200 questions, asked of an OpenAI-compatible server that takes
50 ms per call and runs in its own process.

* official pattern: one video at a time, one question at a time, the frames decoded again for
  every question (as the ECVA inference scripts loop);
* ours: ``run_infer`` (decode workers ahead of the model, each video decoded once for its six
  questions, 32 requests in flight), then the same command again, which must make 0 calls.

A GPU section (``infer_gpu.gpu_section``, only where a CUDA GPU is present) adds questions/s of the
full-size AnomShield architecture with random weights at batch 1 and 8.

Run from the repository root: ``python benchmarks/bench_infer.py [--videos 200] [--latency-ms 50]``.
Prints a table and one JSON line of headline figures. Nothing is asserted. The machine's load
matters: on a small machine the CPU (decoding, JPEG encoding, HTTP) bounds ours, not the latency.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_SERVER = """
import sys
from tests.openai_stub import OpenAIStub, Reply

with OpenAIStub(Reply.verdict(latency_s=float(sys.argv[1])), record_bodies=False) as stub:
    print(stub.base_url, flush=True)
    for line in sys.stdin:
        if line.strip() == "stop":
            break
        print(stub.calls, flush=True)
"""


class ServerProcess:
    """The loopback server (tests/openai_stub.py) in a process of its own; ``calls()`` asks its count.

    Spoken to through :class:`helper_process.Helper`, so a server that dies stops the benchmark
    with its error output instead of leaving it waiting.
    """

    def __init__(self, latency_s: float) -> None:
        from helper_process import Helper  # a sibling module: this script runs as a plain script

        self.helper = Helper([sys.executable, "-c", _SERVER, str(latency_s)], "the loopback server", cwd=REPO)
        self.base_url = self.helper.ready_line.strip()

    def calls(self) -> int:
        return int(self.helper.ask("calls"))

    def stop(self) -> None:
        self.helper.close()


def build_dataset(root: Path, videos: int) -> Path:
    """``videos`` clips cycling over the demo's, each remuxed with its own title, and their annotations."""
    import av

    from ecva_core.dataset.demo import ensure_demo
    from ecva_core.schema import video_file_name

    demo = ensure_demo(root / "demo")
    with (demo / "annotations.csv").open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        source_rows = list(reader)
    data = root / "bench"
    (data / "videos").mkdir(parents=True)
    rows = []
    for number in range(1, videos + 1):
        source = source_rows[(number - 1) % len(source_rows)]
        rows.append([str(number), *source[1:]])
        src = demo / "videos" / video_file_name(source[0])
        with (
            av.open(str(src)) as inp,
            av.open(str(data / "videos" / video_file_name(str(number))), "w", format="mp4") as out,
        ):
            out.metadata["title"] = f"bench clip {number}"
            stream = out.add_stream_from_template(inp.streams.video[0])
            for packet in inp.demux(inp.streams.video[0]):
                if packet.dts is None:
                    continue
                packet.stream = stream
                out.mux(packet)
    with (data / "annotations.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return data


def official_pattern(dataset, spec: str) -> tuple[float, int]:
    """One video, one question at a time; the frames sampled again for every question."""
    from ecva_core.dataset.questions import question_for
    from ecva_core.infer.plan import PlanOptions, select_records
    from ecva_core.models import load_model
    from ecva_core.schema import SCORED_TASKS
    from ecva_core.video import keyframe_removed_frames, sample_frames

    model = load_model(spec)
    asked = 0
    start = time.perf_counter()
    for record in select_records(dataset, PlanOptions(spec=spec)):
        path = dataset.video_path(record.video_id)
        for task in SCORED_TASKS:
            for probe in (False, True):
                if probe:
                    frames = keyframe_removed_frames(path, record.annotation.moments, num_frames=16)
                else:
                    frames = sample_frames(path, num_frames=16)
                model.answer(frames, question_for(task, probe=probe), max_new_tokens=512)
                asked += 1
    return time.perf_counter() - start, asked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--no-gpu-section", action="store_true", help="skip the AnomShield GPU section")
    args = parser.parse_args()

    from ecva_core.dataset import load_dataset
    from ecva_core.infer import InferOptions, PlanOptions, run_infer

    server = ServerProcess(args.latency_ms / 1000)
    calls = server.calls
    spec = f"openai:bench@{server.base_url}"
    with tempfile.TemporaryDirectory(prefix="bench-infer-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        dataset = load_dataset(build_dataset(root, args.videos))
        setup_s = time.perf_counter() - t0
        options = InferOptions(plan=PlanOptions(spec=spec), out=root / "ours.json", cache_dir=root / "cache")
        before = calls()
        ours = run_infer(dataset, options)
        ours_calls = calls() - before
        before = calls()
        rerun = run_infer(dataset, options)
        rerun_calls = calls() - before
        before = calls()
        official_s, official_questions = official_pattern(dataset, spec)
        official_calls = calls() - before
    server.stop()

    ratio = official_s / ours.seconds
    load = os.getloadavg()[0]
    gpu: dict[str, float] = {}
    if not args.no_gpu_section:
        from infer_gpu import gpu_section  # a sibling module: this script runs as a plain script

        gpu = gpu_section()  # questions/s of full-size AnomShield at batch 1 and 8; {} without a GPU
    rows = [
        ("official pattern (sequential, decode per question)", official_s, official_calls),
        ("ecva infer (first run)", ours.seconds, ours_calls),
        ("ecva infer (same command again)", rerun.seconds, rerun_calls),
    ]
    print(
        f"{args.videos} videos x 3 tasks x (normal + probe) = {official_questions} questions; server latency "
        f"{args.latency_ms:g} ms per call (dataset built in {setup_s:.1f} s); {os.cpu_count()} CPUs, "
        f"load average {load:.1f} at the end"
    )
    print(f"{'run':<52} {'seconds':>9} {'calls':>7} {'questions/s':>12}")
    for name, seconds, count in rows:
        print(f"{name:<52} {seconds:>9.2f} {count:>7} {official_questions / seconds:>12.1f}")
    print(
        f"speed-up of ecva infer over the official pattern: {ratio:.1f}x (target >= 15x); "
        f"re-run made {rerun_calls} calls"
    )
    print(
        json.dumps(
            {
                "videos": args.videos,
                "questions": official_questions,
                "latency_ms": args.latency_ms,
                "official_s": round(official_s, 2),
                "ours_s": round(ours.seconds, 2),
                "rerun_s": round(rerun.seconds, 3),
                "ratio_official_vs_ours": round(ratio, 1),
                "ours_calls": ours_calls,
                "rerun_calls": rerun_calls,
                "official_calls": official_calls,
                "cpus": os.cpu_count(),
                "load_average": round(load, 1),
                **{f"gpu_{key}": value for key, value in gpu.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
