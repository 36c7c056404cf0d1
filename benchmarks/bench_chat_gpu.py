"""AnomShield chat speed on one GPU, full-size architecture with random weights (no download).

Builds CLIP ViT-L/14-224 + the mamba_scan projector + a Mistral-7B-shaped LM in bf16 and measures,
for a 16-frame clip: vision tower and projector time, time to first token (frames on the GPU ->
first token), decode tokens/s at batch 1 and 8 for (a) transformers ``generate`` with the dynamic
cache (the baseline), (b) ``generate`` with the static cache, and (c) our fast path
(:class:`ecva_core.models.decoding.StaticDecoder`: static cache + compiled step with CUDA graphs),
plus peak memory. Every phase is guarded (an error is printed and the next phase runs) and the
whole run keeps to ``--budget-s``. The last line is one JSON object of the headline figures.

    .venv/bin/python benchmarks/bench_chat_gpu.py            # GPU, full size
    .venv/bin/python benchmarks/bench_chat_gpu.py --tiny     # CPU smoke run, tiny shapes
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import torch

TEXT_BEFORE, TEXT_AFTER = 40, 24  # prompt tokens around the <video> placeholder (system + question)


class OutOfBudget(Exception):
    """Raised by the alarm when the global time budget is spent."""


def _alarm(_signum: int, _frame: Any) -> None:
    raise OutOfBudget("global time budget spent")


def build(tiny: bool, device: str, dtype: torch.dtype) -> dict[str, Any]:
    from transformers import CLIPVisionConfig, CLIPVisionModel, MistralConfig, MistralForCausalLM

    from ecva_core.models.anomshield.projector import MambaScanProjector
    from ecva_core.models.anomshield.vision import CLIPVisionTower

    if tiny:
        vcfg = CLIPVisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                                image_size=64, patch_size=4)
        lcfg = MistralConfig(vocab_size=512, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                             sliding_window=None)
    else:
        vcfg = CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                                num_attention_heads=16, image_size=224, patch_size=14, projection_dim=768)
        lcfg = MistralConfig(vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                             num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=32768,
                             rope_theta=1e6, sliding_window=None)
    for cfg in (vcfg, lcfg):
        cfg._attn_implementation = "sdpa"
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            tower = CLIPVisionTower(CLIPVisionModel(vcfg)).eval()
            projector = MambaScanProjector(vcfg.hidden_size, lcfg.hidden_size).eval()
            lm = MistralForCausalLM(lcfg).eval()
    finally:
        torch.set_default_dtype(previous)
    lm.generation_config.pad_token_id = 0
    return {"tower": tower, "projector": projector, "lm": lm, "vision_cfg": vcfg, "lm_cfg": lcfg}


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], device: str, repeats: int = 3, warmup: int = 1) -> tuple[float, Any]:
    """Median seconds of ``fn`` after warm-up, and its last result."""
    result = None
    for _ in range(warmup):
        result = fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        sync(device)
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2], result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny shapes (CPU smoke run)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--baseline-tokens", type=int, default=48, help="tokens for the slow generate baselines")
    parser.add_argument("--variants", default="fused:1,static:1,fused:8,static_untuned:1",
                        help="decoder:batch runs in order (fused / static; _untuned: no kernel tuning)")
    parser.add_argument("--cache-len", type=int, default=4096,
                        help="static KV cache length (4096: the chat default; 0: just what the prompt needs)")
    parser.add_argument("--no-accuracy", action="store_true", help="skip the float32 accuracy check")
    parser.add_argument("--no-baseline", action="store_true", help="skip the dynamic-cache generate baseline")
    parser.add_argument("--budget-s", type=float, default=540.0)
    parser.add_argument("--no-compile", action="store_true", help="fast path without torch.compile")
    parser.add_argument("--static-generate", action="store_true", help="also time static-cache generate")
    args = parser.parse_args()

    import transformers

    started = time.perf_counter()
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu"
    print(f"torch {torch.__version__}  transformers {transformers.__version__}  device {gpu}  dtype {dtype}",
          flush=True)
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(max(1, int(args.budget_s)))
    results: dict[str, Any] = {"gpu": gpu, "torch": torch.__version__, "transformers": transformers.__version__,
                               "tiny": args.tiny, "frames": args.frames, "cache_len": args.cache_len or "prompt",
                               "errors": []}
    variants = [(name, int(batch)) for name, _, batch in (v.partition(":") for v in args.variants.split(",") if v)]
    batches = sorted({batch for _, batch in variants})

    def left() -> float:
        return args.budget_s - (time.perf_counter() - started)

    def phase(name: str, fn: Callable[[], None], needs_s: float = 5.0) -> None:
        if left() < needs_s:
            print(f"[skip] {name}: {left():.0f}s left of the budget", flush=True)
            results["errors"].append(f"{name}: skipped (budget)")
            return
        try:
            fn()
        except (Exception, OutOfBudget) as exc:
            print(f"[error] {name}: {type(exc).__name__}: {exc}", flush=True)
            traceback.print_exc(limit=3, file=sys.stdout)
            results["errors"].append(f"{name}: {type(exc).__name__}: {str(exc)[:200]}")
            if device.startswith("cuda"):
                torch.cuda.empty_cache()

    parts: dict[str, Any] = {}
    state: dict[str, Any] = {}

    def do_build() -> None:
        t0 = time.perf_counter()
        parts.update(build(args.tiny, device, dtype))
        sync(device)
        results["build_s"] = round(time.perf_counter() - t0, 2)
        params = sum(p.numel() for p in parts["lm"].parameters()) / 1e9
        print(f"built in {results['build_s']}s; LM {params:.2f}B parameters", flush=True)

    def do_vision() -> None:
        import numpy as np

        from ecva_core.models.anomshield.vision import default_image_processor, preprocess_frames

        size = parts["vision_cfg"].image_size
        rng = np.random.default_rng(0)
        frames = rng.integers(0, 256, size=(args.frames, 360, 640, 3), dtype=np.uint8)
        processor = default_image_processor(size)
        t_pre, pixels = timed(lambda: preprocess_frames(frames, processor, "pad"), "cpu", repeats=3)
        pixels = pixels.to(device=device, dtype=dtype)
        with torch.inference_mode():
            t_vis, feats = timed(lambda: parts["tower"](pixels), device, repeats=5, warmup=2)
            t_proj, tokens = timed(lambda: parts["projector"](feats.unsqueeze(0)), device, repeats=5, warmup=2)
        state["pixels"], state["video_tokens"] = pixels, tokens[0]
        results.update(preprocess_ms=round(t_pre * 1e3, 2), vision_ms=round(t_vis * 1e3, 2),
                       projector_ms=round(t_proj * 1e3, 2), video_tokens=int(tokens.shape[1]))
        print(f"preprocess (CPU) {t_pre*1e3:.1f} ms | vision tower {t_vis*1e3:.1f} ms | mamba_scan projector "
              f"{t_proj*1e3:.1f} ms | {tokens.shape[1]} video tokens", flush=True)

    def prompt_embeds(batch: int) -> torch.Tensor:
        lm = parts["lm"]
        gen = torch.Generator(device="cpu").manual_seed(0)
        ids = torch.randint(3, lm.config.vocab_size, (TEXT_BEFORE + TEXT_AFTER,), generator=gen).to(device)
        with torch.inference_mode():
            text = lm.get_input_embeddings()(ids)
            embeds = torch.cat([text[:TEXT_BEFORE], state["video_tokens"].to(text.dtype), text[TEXT_BEFORE:]])
        return embeds.unsqueeze(0).expand(batch, -1, -1).contiguous()

    def generate_rate(batch: int, static: bool) -> float:
        lm = parts["lm"]
        embeds = prompt_embeds(batch)
        extra = {"cache_implementation": "static"} if static else {}

        def run(n: int) -> Any:
            with torch.inference_mode():
                return lm.generate(inputs_embeds=embeds, attention_mask=torch.ones(embeds.shape[:2], device=device,
                                   dtype=torch.long), max_new_tokens=n, min_new_tokens=n, do_sample=False, **extra)

        n = args.baseline_tokens
        t_one, _ = timed(lambda: run(1), device, repeats=2, warmup=1)
        t_n, _ = timed(lambda: run(n), device, repeats=2, warmup=1 if static else 0)
        decode_s = t_n - t_one
        if decode_s <= 0.1 * t_n:  # timer noise on tiny runs: fall back to the whole call
            return batch * n / t_n
        return batch * (n - 1) / decode_s

    def do_baselines(static: bool, only: list[int] | None = None) -> Callable[[], None]:
        def run() -> None:
            for batch in only or batches:
                name = f"{'static' if static else 'dynamic'}_generate_b{batch}_tok_s"
                if left() < 20:
                    results["errors"].append(f"{name}: skipped (budget)")
                    continue
                rate = generate_rate(batch, static)
                results[name] = round(rate, 1)
                print(f"generate ({'static' if static else 'dynamic'} cache) batch {batch}: {rate:.1f} tok/s "
                      f"({rate / batch:.1f} per sequence)", flush=True)
        return run

    def make_decoder(variant: str) -> Any:
        from ecva_core.models.decoding import FusedDecoder, StaticDecoder

        length = args.cache_len or TEXT_BEFORE + TEXT_AFTER + state["video_tokens"].shape[0] + args.new_tokens + 16
        kind, _, flavour = variant.partition("_")
        options = {"max_cache_len": length, "compile_step": not args.no_compile and device != "cpu",
                   "tune": flavour != "untuned"}
        if kind == "fused":
            return FusedDecoder(parts["lm"], **options)
        return StaticDecoder(parts["lm"], **options)

    def do_fast(variant: str, batch: int) -> Callable[[], None]:
        def run() -> None:
            decoders = state.setdefault("decoders", {})
            if variant not in decoders:
                decoders[variant] = make_decoder(variant)
            fast_for_batch(decoders[variant], batch, variant)
        return run

    def do_agreement() -> None:
        """Accuracy against a float32 copy of the LM: transformers in the bench dtype vs the fused decoder.

        Both are scored against the same float32 reference (prefill logits, greedy tokens), so the
        fused decoder's rounding is judged next to transformers' own rather than against it.
        """
        import copy

        from ecva_core.models.decoding import FusedDecoder

        embeds = prompt_embeds(1)
        lm = parts["lm"]
        mask = torch.ones(embeds.shape[:2], device=device, dtype=torch.long)

        def greedy(model: Any, inputs: torch.Tensor) -> list[int]:
            return model.generate(inputs_embeds=inputs, attention_mask=mask, max_new_tokens=32, min_new_tokens=32,
                                  do_sample=False)[0].tolist()

        def agree(tokens: list[int], reference: list[int]) -> int:
            return next((i for i, (x, y) in enumerate(zip(tokens, reference, strict=False)) if x != y), len(tokens))

        with torch.inference_mode():
            exact = copy.deepcopy(lm).float()
            ref_logits = exact(inputs_embeds=embeds.float(), logits_to_keep=1).logits[:, -1, :].float()
            ref_tokens = greedy(exact, embeds.float())
            del exact
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
            hf_logits = lm(inputs_embeds=embeds, logits_to_keep=1).logits[:, -1, :].float()
            hf_tokens = greedy(lm, embeds)
            fused = state.get("decoders", {}).get("fused") or FusedDecoder(lm, max_cache_len=embeds.shape[1] + 40,
                                                                              compile_step=False)
            fused_logits = fused.prefill(embeds)
        fused_tokens = [int(t[0]) for t in fused.tokens(embeds, 32, stop_at_eos=False)]
        norm = ref_logits.norm()
        figures = {"hf_logits_rel_err_vs_fp32": float((hf_logits - ref_logits).norm() / norm),
                   "fused_logits_rel_err_vs_fp32": float((fused_logits - ref_logits).norm() / norm),
                   "fused_logits_rel_err_vs_hf": float((fused_logits - hf_logits).norm() / hf_logits.norm()),
                   "hf_greedy_tokens_equal_to_fp32": agree(hf_tokens, ref_tokens),
                   "fused_greedy_tokens_equal_to_fp32": agree(fused_tokens, ref_tokens),
                   "fused_greedy_tokens_equal_to_hf": agree(fused_tokens, hf_tokens)}
        results.update({k: float(f"{v:.3g}") if isinstance(v, float) else v for k, v in figures.items()})
        print(f"accuracy vs a float32 copy: prefill logits relative error transformers {dtype} "
              f"{figures['hf_logits_rel_err_vs_fp32']:.2e}, fused {figures['fused_logits_rel_err_vs_fp32']:.2e} "
              f"(fused vs transformers {figures['fused_logits_rel_err_vs_hf']:.2e}); leading greedy tokens equal "
              f"to float32: transformers {figures['hf_greedy_tokens_equal_to_fp32']}/32, fused "
              f"{figures['fused_greedy_tokens_equal_to_fp32']}/32", flush=True)

    def fast_for_batch(decoder: Any, batch: int, prefix: str) -> None:
        embeds = prompt_embeds(batch)
        t0 = time.perf_counter()
        for _ in range(2):  # warm-up: compiles and records the CUDA graphs
            for _token in decoder.tokens(embeds, 8, stop_at_eos=False):
                pass
        sync(device)
        warm = time.perf_counter() - t0

        def first_token() -> Any:
            """Frames already on the GPU -> vision -> projector -> prefill -> first token."""
            with torch.inference_mode():
                feats = parts["tower"](state["pixels"])
                state["video_tokens"] = parts["projector"](feats.unsqueeze(0))[0]
                return next(iter(decoder.tokens(prompt_embeds(batch), 1, stop_at_eos=False)))

        def decode() -> int:
            count = sum(1 for _token in decoder.tokens(embeds, args.new_tokens, stop_at_eos=False))
            sync(device)
            return count

        def decode_streamed() -> int:
            """As the chat streams: each token is read on the host before the next step is queued."""
            return sum(1 for token in decoder.tokens(embeds, args.new_tokens, stop_at_eos=False) if int(token[0]) >= 0)

        ttft, _ = timed(first_token, device, repeats=3, warmup=1)
        t_all, count = timed(decode, device, repeats=5, warmup=0)
        t_prefill, _ = timed(lambda: decoder.prefill(embeds), device, repeats=3, warmup=0)
        rate = batch * (count - 1) / max(t_all - t_prefill, 1e-9)
        results[f"{prefix}_b{batch}_tok_s"] = round(rate, 1)
        if batch == 1:
            t_streamed, _ = timed(decode_streamed, device, repeats=3, warmup=0)
            streamed = (count - 1) / max(t_streamed - t_prefill, 1e-9)
            results[f"{prefix}_b1_streamed_tok_s"] = round(streamed, 1)
            print(f"{prefix.replace('_', ' ')} path batch 1, each token read on the host as the chat does: "
                  f"{streamed:.1f} tok/s", flush=True)
        results[f"{prefix}_b{batch}_ttft_ms"] = round(ttft * 1e3, 1)
        results[f"{prefix}_b{batch}_prefill_ms"] = round(t_prefill * 1e3, 1)
        label = prefix.replace("_", " ")
        print(f"{label} path batch {batch}: {rate:.1f} tok/s ({rate / batch:.1f} per sequence), first token "
              f"{ttft*1e3:.1f} ms (prefill {t_prefill*1e3:.1f} ms), warm-up/compile {warm:.1f}s", flush=True)

    phase("build", do_build, needs_s=30 if not args.tiny else 1)
    if parts:
        phase("vision+projector", do_vision)
    if "video_tokens" in state:
        quick = 1 if args.tiny else None
        for variant, batch in variants:
            phase(f"{variant} decoder, batch {batch}", do_fast(variant, batch), needs_s=quick or 90)
            if not args.no_baseline and "dynamic_generate_b1_tok_s" not in results:
                phase("baseline generate, dynamic cache", do_baselines(static=False, only=[1]), needs_s=quick or 20)
        if not args.no_accuracy:
            phase("accuracy against float32", do_agreement, needs_s=quick or 20)
        if args.static_generate:
            phase("baseline generate, static cache", do_baselines(static=True), needs_s=quick or 60)
    signal.alarm(0)
    if device.startswith("cuda"):
        results["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    results["total_s"] = round(time.perf_counter() - started, 1)
    for batch in batches:
        candidates = [results.get(f"{name}_b{batch}_tok_s") for name, _ in variants]
        if any(candidates):
            results[f"best_b{batch}_tok_s"] = max(c for c in candidates if c)
    base = results.get("dynamic_generate_b1_tok_s")
    fast = results.get("best_b1_tok_s")
    if base and fast:
        results["speedup_b1_vs_dynamic"] = round(fast / base, 2)
    print("\n| figure | value |\n|---|---|")
    for key, value in results.items():
        if key != "errors":
            print(f"| {key} | {value} |")
    for err in results["errors"]:
        print(f"! {err}")
    print(json.dumps(results), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
