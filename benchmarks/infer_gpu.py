"""Batched AnomShield answers on one GPU: questions/s at batch 1 and batch 8, full size, random weights.

What ``ecva infer`` does with a local AnomShield model: ``answer_batch`` over questions about a
few clips (each clip encoded once per batch, prompts left-padded). The model is the full-size
architecture (CLIP ViT-L/14-224 + mamba_scan projector + a Mistral-7B-shaped LM, bf16) built with
random weights, so nothing is downloaded; the tokenizer is a word-level stand-in with Mistral's
32000-token vocabulary. Random weights would stop at a random EOS, so the EOS row of the LM head is
zeroed and every answer runs to ``--new-tokens``: questions/s are for answers of that length.

Two decoders, each at batch 1 and batch 8: the fused static-cache decoder (``static_cache=True``,
compiled with CUDA graphs; compile time is excluded) and transformers ``generate`` with its
dynamic cache. ``gpu_section()`` is what ``benchmarks/bench_infer.py`` calls; on a machine without
a GPU it prints one "no GPU" line and returns ``{}``.

    .venv/bin/python benchmarks/infer_gpu.py           # GPU, full size
    .venv/bin/python benchmarks/infer_gpu.py --tiny    # tiny shapes on any device: checks the code path
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from typing import Any

BATCHES = (1, 8)
DECODERS = ("fused", "generate")
VOCAB_SIZE = 32000  # Mistral-7B's
QUESTIONS = (
    "Describe the anomaly events observed in the video.",
    "What is the cause of the anomaly in the video?",
    "What is the result of the anomaly in the video?",
    "Describe the video briefly.",
)


def stand_in_tokenizer(vocab_size: int) -> Any:
    """A word-level fast tokenizer with ``vocab_size`` ids: the prompt's words, specials, then fillers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = ["<unk>", "<s>", "</s>", "<pad>", "[INST]", "[/INST]", "<<SYS>>", "<</SYS>>"]
    for text in QUESTIONS:
        words += [w for w in text.replace(".", " .").replace("?", " ?").split() if w not in words]
    vocab = {word: index for index, word in enumerate(words)}
    vocab.update({f"t{index}": index for index in range(len(vocab), vocab_size)})
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tokenizer.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>")


def build_model(tiny: bool, device: str) -> Any:
    """The AnomShield model with random weights: full size, or tiny shapes for a smoke run."""
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModel, MistralConfig, MistralForCausalLM

    from ecva_core.models.anomshield.config import AnomShieldConfig
    from ecva_core.models.anomshield.modeling import AnomShieldModel
    from ecva_core.models.anomshield.vision import CLIPVisionTower, default_image_processor

    if tiny:
        vision = CLIPVisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                                  image_size=64, patch_size=4)
        text = MistralConfig(vocab_size=512, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                             sliding_window=None)
    else:
        vision = CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                                  num_attention_heads=16, image_size=224, patch_size=14, projection_dim=768)
        text = MistralConfig(vocab_size=VOCAB_SIZE, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                             num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=32768,
                             rope_theta=1e6, sliding_window=None)
    for config in (vision, text):
        config._attn_implementation = "sdpa"
    text.bos_token_id, text.eos_token_id, text.pad_token_id = 1, 2, 3
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            tower = CLIPVisionTower(CLIPVisionModel(vision))
            language_model = MistralForCausalLM(text)
            config = AnomShieldConfig(vision_tower="random", hidden_size=text.hidden_size,
                                      mm_hidden_size=vision.hidden_size, text_config=text.to_dict())
            model = AnomShieldModel(config, language_model, tower, stand_in_tokenizer(text.vocab_size),
                                    default_image_processor(vision.image_size))
    finally:
        torch.set_default_dtype(previous)
    with torch.no_grad():
        language_model.lm_head.weight[text.eos_token_id].zero_()  # random logits are ~ +-: EOS (0) never wins
    return model.eval()


def random_clips(count: int, num_frames: int) -> list[Any]:
    """``count`` clips of ``num_frames`` random 360p frames (decoding is not what this measures)."""
    import numpy as np

    from ecva_core.video import Frames, VideoInfo

    rng = np.random.default_rng(0)
    info = VideoInfo(fps=30.0, frame_count=300, duration=10.0, width=640, height=360, codec="h264")
    return [Frames(images=rng.integers(0, 256, size=(num_frames, 360, 640, 3), dtype=np.uint8),
                   timestamps=[i * 10.0 / num_frames for i in range(num_frames)],
                   indices=list(range(0, 300, 300 // num_frames))[:num_frames], info=info, backend="random")
            for _ in range(count)]


def questions_per_s(chat: Any, requests: list[Any], new_tokens: int) -> float:
    """Questions answered per second by ``answer_batch`` (clips encoded anew: the clip cache is cleared)."""
    import torch

    chat.clip_cache.clear()
    if chat.device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    answers = chat.answer_batch(requests, max_new_tokens=new_tokens)
    if chat.device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    short = sum(len(answer.split()) < new_tokens // 2 for answer in answers)
    if short:
        print(f"  note: {short} answers stopped early (fewer than {new_tokens // 2} words)", flush=True)
    return len(requests) / seconds


def gpu_section(tiny: bool = False, device: str | None = None, clips: int = 2, per_clip: int = 8,
                new_tokens: int = 64) -> dict[str, float]:
    """Questions/s of AnomShield ``answer_batch`` per decoder at batch 1 and 8; ``{}`` without a GPU.

    ``tiny`` runs tiny shapes on any device (a check of the code path, not a measurement).
    """
    import torch

    from ecva_core.models.anomshield import AnomShieldChat
    from ecva_core.models.base import BatchRequest, ModelOptions

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if not device.startswith("cuda") and not tiny:
        print("no GPU: the AnomShield batch-inference section needs a CUDA GPU; skipped", flush=True)
        return {}
    name = torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu"
    print(f"AnomShield {'tiny' if tiny else 'full size'} on {name}: {clips} clips x {per_clip} questions, "
          f"{new_tokens} tokens per answer", flush=True)
    started = time.perf_counter()
    model = build_model(tiny, device)
    num_frames = model.config.num_frames
    requests = [BatchRequest(frames, QUESTIONS[index % len(QUESTIONS)])
                for frames in random_clips(clips, num_frames) for index in range(per_clip)]
    results: dict[str, float] = {"build_s": round(time.perf_counter() - started, 1)}
    for decoder in DECODERS:
        options = ModelOptions(device=device, static_cache=decoder == "fused", max_batch_size=max(BATCHES),
                               extra={"max_cache_len": 1024})
        chat = AnomShieldChat("anomshield:random-weights", model, options)
        for batch in BATCHES:
            key = f"{decoder}_b{batch}_questions_per_s"
            chat.max_batch_size = batch  # one chat (and one decoder, with a cache per batch size) per decoder
            try:
                for _ in range(2):  # compiles and records this batch size's graph (the span the run uses)
                    chat.answer_batch(requests[:batch], max_new_tokens=4)
                rate = questions_per_s(chat, requests, new_tokens)
            except Exception as exc:  # one failing variant (a compiler error, out of memory) leaves the others
                print(f"[error] {key}: {type(exc).__name__}: {exc}", flush=True)
                traceback.print_exc(limit=3, file=sys.stdout)
                if device.startswith("cuda"):
                    torch.cuda.empty_cache()
                continue
            results[key] = round(rate, 3)
            print(f"{decoder:>8} batch {batch}: {rate:.2f} questions/s ({rate * new_tokens:.0f} answer tokens/s)",
                  flush=True)
    for decoder in DECODERS:
        one, eight = results.get(f"{decoder}_b1_questions_per_s"), results.get(f"{decoder}_b8_questions_per_s")
        if one and eight:
            results[f"{decoder}_b8_speedup"] = round(eight / one, 2)
    if device.startswith("cuda"):
        results["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    results["total_s"] = round(time.perf_counter() - started, 1)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny shapes on any device (checks the code path)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--clips", type=int, default=2)
    parser.add_argument("--per-clip", type=int, default=8, help="questions per clip")
    parser.add_argument("--new-tokens", type=int, default=64, help="tokens per answer")
    args = parser.parse_args()
    results = gpu_section(args.tiny, args.device, args.clips, args.per_clip, args.new_tokens)
    if results:
        print("\n| figure | value |\n|---|---|")
        for key, value in results.items():
            print(f"| {key} | {value} |")
    print(json.dumps(results), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
