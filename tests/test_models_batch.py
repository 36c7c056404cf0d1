"""Batched answers (``answer_batch``) of the local backends on tiny random checkpoints.

Several questions about a few clips go through one forward pass with left padding; each answer
must equal the one-at-a-time answer token for token, and each clip must be encoded once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ecva_core.models import load_model
from ecva_core.models.base import BatchRequest
from tests.tiny_models import build_anomshield, build_llava_onevision, build_qwen2_vl
from tests.videogen import make_clip

torch = pytest.importorskip("torch")

# Prompts of different token lengths, so the batch is ragged and left padding is in play.
QUESTIONS = ["What happened?", "Why did the red car hit the man in the street at night?", "Describe the scene.",
             "What is the result of the crash?", "how"]


@pytest.fixture(scope="module")
def clip_paths(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("batch-clips")
    paths = [folder / f"0001{i}.mp4" for i in range(3)]
    for index, path in enumerate(paths):
        make_clip(path, seconds=1.0, fps=16, width=48, height=32, noise=index == 1)
    return paths


@pytest.fixture(scope="module")
def anomshield_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_anomshield(tmp_path_factory.mktemp("anomshield-batch"), lora=True).checkpoint


def _requests(chat, clip_paths: list[Path]) -> list[BatchRequest]:
    """Every question about every clip, one ``Frames`` object per clip (as ``ecva infer`` shares them)."""
    frames = [chat.clip(path).frames for path in clip_paths]
    chat.clip_cache.clear()  # the batch must encode the clips itself
    return [BatchRequest(clip, question) for clip in frames for question in QUESTIONS]


def _sharpen(model: torch.nn.Module) -> None:
    """Weights large enough that the answer depends on the clip and the question (the default init
    of the tiny hf models is so flat that every prompt gets the same answer)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.normal_(std=0.2)


def _count_forwards(module: torch.nn.Module) -> list[int]:
    calls: list[int] = []
    module.register_forward_hook(lambda *_: calls.append(1))
    return calls


@pytest.mark.parametrize("static_cache", [False, True], ids=["generate", "fused-decoder"])
def test_anomshield_batch_equals_one_at_a_time(anomshield_ckpt: Path, clip_paths: list[Path], static_cache: bool,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    chat = load_model(f"anomshield:{anomshield_ckpt}", device="cpu", static_cache=static_cache, max_batch_size=4,
                      max_cache_len=256)
    requests = _requests(chat, clip_paths)
    single = [chat.answer(r.frames, r.question, max_new_tokens=24) for r in requests]
    assert len(set(single)) > len(clip_paths) and all(single)  # the answers differ by clip and question

    chat.clip_cache.clear()
    tower = _count_forwards(chat.model.vision_tower)
    batches: list[tuple[int, int]] = []  # (rows, left padding of the shortest prompt) per forward pass
    if static_cache:
        decoder = chat.decoder()
        tokens = decoder.tokens

        def counted(embeds, *args, padding=None, **kwargs):
            batches.append((embeds.shape[0], int(padding.max())))
            return tokens(embeds, *args, padding=padding, **kwargs)

        monkeypatch.setattr(decoder, "tokens", counted)
    else:
        generate = chat.model.generate_batch

        def counted(embeds, padding, *args):
            batches.append((embeds.shape[0], int(padding.max())))
            return generate(embeds, padding, *args)

        monkeypatch.setattr(chat.model, "generate_batch", counted)
    assert chat.answer_batch(requests, max_new_tokens=24) == single
    assert len(tower) == len(clip_paths)  # each clip encoded once for all its questions
    assert [rows for rows, _ in batches] == [4, 4, 4, 3]  # 15 questions, at most max_batch_size per pass
    assert all(pad > 0 for _, pad in batches)  # ragged prompts: every pass was left-padded
    assert chat.answer_batch([], max_new_tokens=4) == []


def test_compiled_decoder_fills_a_partial_batch_to_one_size(anomshield_ckpt: Path, clip_paths: list[Path],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A compiled step has one graph per batch size: a short batch runs at ``max_batch_size`` rows."""
    chat = load_model(f"anomshield:{anomshield_ckpt}", device="cpu", static_cache=True, max_batch_size=4,
                      max_cache_len=256)
    requests = _requests(chat, clip_paths)[:6]
    single = [chat.answer(r.frames, r.question, max_new_tokens=16) for r in requests]
    decoder = chat.decoder()
    monkeypatch.setattr(decoder, "compile_step", True)  # as on a GPU; the step itself stays eager here
    rows: list[int] = []
    tokens = decoder.tokens
    monkeypatch.setattr(decoder, "tokens", lambda embeds, *a, **k: rows.append(embeds.shape[0]) or tokens(
        embeds, *a, **k))
    assert chat.answer_batch(requests, max_new_tokens=16) == single
    assert rows == [4, 4]  # 4 questions, then 2 filled up to 4
    assert chat.answer_batch(requests[:1], max_new_tokens=16) == single[:1] and rows[-1] == 1


def test_a_batch_that_does_not_fit_the_gpu_goes_to_generate(anomshield_ckpt: Path, clip_paths: list[Path],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    chat = load_model(f"anomshield:{anomshield_ckpt}", device="cpu", static_cache=True, max_batch_size=4,
                      max_cache_len=256)
    requests = _requests(chat, clip_paths)[:5]
    single = [chat.answer(r.frames, r.question, max_new_tokens=12) for r in requests]
    decoder = chat.decoder()
    tokens = decoder.tokens
    tried: list[int] = []

    def out_of_memory(embeds, *args, **kwargs):
        tried.append(embeds.shape[0])
        if embeds.shape[0] > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 4.00 GiB")
        return tokens(embeds, *args, **kwargs)

    monkeypatch.setattr(decoder, "tokens", out_of_memory)
    assert chat.answer_batch(requests, max_new_tokens=12) == single
    assert tried == [4, 1]  # the 4-row batch did not fit; the last question alone still used the decoder
    assert "does not fit" in chat.describe()["batch_decoder_error"]
    assert chat.answer_batch(requests[:2], max_new_tokens=12) == single[:2] and tried == [4, 1]  # no retry


@pytest.mark.parametrize(("builder", "tower"), [(build_qwen2_vl, "visual"), (build_llava_onevision, "vision_tower")],
                         ids=["qwen2-vl", "llava-onevision"])
def test_hf_batch_equals_one_at_a_time(builder, tower: str, tmp_path: Path, clip_paths: list[Path],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    chat = load_model(f"hf:{builder(tmp_path / 'model')}", device="cpu", num_frames=4, max_batch_size=4)
    _sharpen(chat.model)
    requests = _requests(chat, clip_paths)
    single = [chat.answer(r.frames, r.question, max_new_tokens=10) for r in requests]
    assert len(set(single)) > len(clip_paths) and all(single)

    chat.clip_cache.clear()
    encodes = _count_forwards(getattr(chat.model.base_model, tower))
    passes: list[tuple[int, int]] = []  # (rows, padded positions) per generate call
    generate = chat.model.generate

    def counted(**kwargs):
        assert "mm_encoder_outputs" in kwargs and not any(k.startswith("pixel_values") for k in kwargs)
        passes.append((kwargs["input_ids"].shape[0], int((kwargs["attention_mask"] == 0).sum())))
        return generate(**kwargs)

    monkeypatch.setattr(chat.model, "generate", counted)
    assert chat.answer_batch(requests, max_new_tokens=10) == single
    assert len(encodes) == len(clip_paths)  # each clip encoded once, its features shared by its questions
    assert [rows for rows, _ in passes] == [4, 4, 4, 3]
    assert all(padded > 0 for _, padded in passes)


def test_outputs_that_cannot_be_stacked_are_reported() -> None:
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    from ecva_core.models.hf import stack_encoder_outputs

    rows = [BaseModelOutputWithPooling(last_hidden_state=torch.ones(2, 3), pooler_output=(torch.ones(1, 3),)),
            BaseModelOutputWithPooling(last_hidden_state=torch.zeros(4, 3), pooler_output=(torch.zeros(2, 3),))]
    stacked = stack_encoder_outputs(rows)
    assert stacked.last_hidden_state.shape == (6, 3) and [t.shape[0] for t in stacked.pooler_output] == [1, 2]
    with_layers = [BaseModelOutputWithPooling(last_hidden_state=torch.ones(2, 3), hidden_states=(torch.ones(2, 3),))]
    assert stack_encoder_outputs(with_layers) is None  # a per-layer field: the batch gets the pixels instead
