"""How long a hub or a judge that cannot be reached keeps a user waiting, against loading through
transformers directly (which retries the Hugging Face hub for minutes before it says anything).

Times, with nothing reachable on this machine's loopback: ecva's model pre-flight for ``hf:default``
against a refused port, an unresolvable host, a server that accepts but never answers (the
``ECVA_HUB_TIMEOUT_S`` default of 8 s), ``HF_HUB_OFFLINE``, ModelScope refusing, and a model already
in the cache; the judge's reachability check against a refused port and an unresolvable host; and,
as the baseline, ``AutoProcessor.from_pretrained(hf:default's id)`` against the same refused port
(about 150 s on this machine; ``--skip-baseline`` leaves it out). Prints a table, then one JSON line.
Run: ``.venv/bin/python benchmarks/bench_hub.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

SMOL_ID = "HuggingFaceTB/SmolVLM2-500M-Video-Instruct"


def _refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@contextmanager
def _env(**values: str | None) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _timed(action: Callable[[], object]) -> tuple[float, str]:
    started = time.perf_counter()
    try:
        action()
        outcome = "loaded"
    except Exception as exc:  # the benchmark reports what the user would read
        outcome = f"{type(exc).__name__}: {str(exc)[:70]}"
    return time.perf_counter() - started, outcome


def _fake_cached_model(cache: Path) -> None:
    """A complete-looking snapshot of hf:default in the Hugging Face cache layout (files need not load)."""
    commit = "0" * 40
    repo = cache / f"models--{SMOL_ID.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}", encoding="utf-8")
    (snapshot / "model.safetensors").write_bytes(b"\0" * 16)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-baseline", action="store_true", help="leave out the ~150 s transformers baseline")
    args = parser.parse_args()

    refused = _refused_url()
    # huggingface_hub reads these once, at import: the baseline gets the refused port and no offline mode
    os.environ.update(HF_ENDPOINT=refused, HF_HUB_DISABLE_TELEMETRY="1")
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.pop(name, None)

    from ecva_core.config import Settings
    from ecva_core.metrics.judge.client import JudgeClient
    from ecva_core.models.hub import fetch_model

    def preflight() -> object:
        return fetch_model(SMOL_ID, what="hf:default", spec="hf:default", local_hint="hf:DIR")

    def judge(url: str) -> object:
        import asyncio

        async def check() -> None:
            client = JudgeClient(Settings(home=Path(tempfile.gettempdir()), judge_base_url=url, judge_api_key="k"))
            reason = await client.unreachable_reason()
            await client.aclose()
            if reason:
                raise RuntimeError(reason)

        return asyncio.run(check())

    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        empty = str(Path(tmp) / "empty-cache")
        cached = Path(tmp) / "cache"
        _fake_cached_model(cached)
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        silent = f"http://127.0.0.1:{listener.getsockname()[1]}"
        cases: list[tuple[str, dict[str, str | None], Callable[[], object]]] = [
            ("hf: refused port", {"HF_ENDPOINT": refused, "HF_HUB_CACHE": empty}, preflight),
            ("hf: DNS failure", {"HF_ENDPOINT": "http://hub.invalid", "HF_HUB_CACHE": empty}, preflight),
            ("hf: silent server (8 s timeout)", {"HF_ENDPOINT": silent, "HF_HUB_CACHE": empty}, preflight),
            ("hf: HF_HUB_OFFLINE=1", {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": empty}, preflight),
            ("hf: in the cache, hub refused", {"HF_ENDPOINT": refused, "HF_HUB_CACHE": str(cached)}, preflight),
            (
                "modelscope: refused port",
                {
                    "ECVA_MODEL_HUB": "modelscope",
                    "MODELSCOPE_ENDPOINT": refused,
                    "HF_HUB_CACHE": empty,
                    "MODELSCOPE_CACHE": empty,
                },
                preflight,
            ),
            ("judge: refused port", {}, lambda: judge(refused + "/v1")),
            ("judge: DNS failure", {}, lambda: judge("http://judge.invalid/v1")),
        ]
        for name, env, action in cases:
            with _env(**env):
                seconds, outcome = _timed(action)
            rows.append((name, seconds, outcome))
        listener.close()

        baseline = None
        if not args.skip_baseline:
            with _env(HF_HUB_CACHE=empty):
                from transformers import AutoProcessor

                baseline, outcome = _timed(lambda: AutoProcessor.from_pretrained(SMOL_ID))
            rows.append(("baseline: transformers from_pretrained, refused", baseline, outcome))

    print(f"{'case':<48} {'seconds':>8}  outcome")
    for name, seconds, outcome in rows:
        print(f"{name:<48} {seconds:>8.2f}  {outcome}")
    by_name = {name: seconds for name, seconds, _ in rows}
    figures = {
        "hf_refused_s": round(by_name["hf: refused port"], 3),
        "hf_dns_failure_s": round(by_name["hf: DNS failure"], 3),
        "hf_silent_s": round(by_name["hf: silent server (8 s timeout)"], 3),
        "hf_offline_s": round(by_name["hf: HF_HUB_OFFLINE=1"], 3),
        "hf_cached_s": round(by_name["hf: in the cache, hub refused"], 3),
        "modelscope_refused_s": round(by_name["modelscope: refused port"], 3),
        "judge_refused_s": round(by_name["judge: refused port"], 3),
        "judge_dns_failure_s": round(by_name["judge: DNS failure"], 3),
        "baseline_transformers_refused_s": None if baseline is None else round(baseline, 1),
    }
    sys.stdout.flush()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
