"""hf backend: tiny Qwen2-VL, LLaVA-OneVision and SmolVLM checkpoints saved with save_pretrained, loaded via hf:PATH."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from ecva_core.errors import ModelLoadError
from ecva_core.models import ChatMessage, load_model
from tests.tiny_models import build_llava_onevision, build_qwen2_vl, build_smolvlm
from tests.videogen import make_clip


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clips") / "00003.mp4"
    make_clip(path, seconds=1.0, fps=16, width=64, height=48)
    return path


@pytest.fixture(scope="module")
def other_clip_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clips") / "00004.mp4"
    make_clip(path, seconds=1.0, fps=16, width=64, height=48, noise=True)
    return path


def _smolvlm(dest: Path) -> Path:
    pytest.importorskip("num2words", reason="the SmolVLM processor needs num2words")
    return build_smolvlm(dest)


# Each tiny family with the attribute of its inner model that holds the vision encoder.
FAMILIES = [(build_qwen2_vl, "visual"), (build_llava_onevision, "vision_tower"), (_smolvlm, "vision_model")]
FAMILY_IDS = ["qwen2-vl", "llava-onevision", "smolvlm"]


def _count_calls(chat, tower: str, monkeypatch: pytest.MonkeyPatch) -> tuple[list[int], list[int]]:
    """Count vision-encoder forwards (a hook on the real module) and video preprocessing runs."""
    encodes: list[int] = []
    getattr(chat.model.base_model, tower).register_forward_hook(lambda *_: encodes.append(1))
    preprocesses: list[int] = []
    video_processor = chat.processor.video_processor
    original = video_processor.preprocess

    def preprocess(*args, **kwargs):
        preprocesses.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(video_processor, "preprocess", preprocess)
    return encodes, preprocesses


def _record_logits(chat) -> list:
    """Every LM-head output of the model, to compare the cached and uncached paths step by step."""
    logits: list = []
    chat.model.lm_head.register_forward_hook(lambda _m, _i, out: logits.append(out[:, -1].clone()))
    return logits


def _uncached_answer(chat, frames, history: list[ChatMessage], max_new_tokens: int) -> str:
    """Plain transformers: the processor on the raw frames, then generate on the pixels."""
    import torch

    prompt = chat.processor.apply_chat_template(chat.conversation(history), add_generation_prompt=True,
                                                tokenize=False)
    batch = chat.processor(text=[prompt], videos=[list(frames.images)], return_tensors="pt")
    with torch.inference_mode():
        out = chat.model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False)
    return chat.processor.tokenizer.decode(out[0, batch["input_ids"].shape[1]:], skip_special_tokens=True)


@pytest.mark.parametrize(("builder", "tower"), FAMILIES, ids=FAMILY_IDS)
def test_follow_up_turn_reuses_the_encoded_clip(builder, tower: str, tmp_path: Path, clip_path: Path,
                                                other_clip_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    chat = load_model(f"hf:{builder(tmp_path / 'model')}", device="cpu", num_frames=4)
    assert chat.describe()["reused_across_turns"] == ["frames", "video preprocessing", "vision features"]
    encodes, preprocesses = _count_calls(chat, tower, monkeypatch)
    history = [ChatMessage("user", "What happened in the video?")]
    first = "".join(chat.chat(clip_path, history, max_new_tokens=4))
    assert len(encodes) == 1 and len(preprocesses) == 1 and "encode_s" in chat.last_timings
    history += [ChatMessage("assistant", first), ChatMessage("user", "Why did it happen?")]
    logits = _record_logits(chat)
    second = "".join(chat.chat(clip_path, history, max_new_tokens=6))
    assert len(encodes) == 1 and len(preprocesses) == 1  # the follow-up neither preprocessed nor encoded
    assert chat.last_timings["encode_s"] == 0.0 and chat.last_timings["sample_s"] == 0.0
    stored = chat.clip(clip_path).encoded["hf_features"][1]
    assert all("hidden_states" not in output for output in stored.values())

    cached_logits = list(logits)
    logits.clear()
    assert _uncached_answer(chat, chat.last_frames, history, 6) == second
    assert len(encodes) == 2  # plain generate encoded the pixels itself
    assert len(logits) == len(cached_logits) and all(map(torch.equal, logits, cached_logits))

    chat.clip_cache.clear()  # the features go with the clip's cache entry
    assert "".join(chat.chat(clip_path, history, max_new_tokens=6)) == second
    assert len(encodes) == 3 and chat.last_timings["encode_s"] > 0.0
    encodes.clear()
    preprocesses.clear()

    "".join(chat.chat(other_clip_path, [ChatMessage("user", "What happened?")], max_new_tokens=2))
    assert len(encodes) == 1 and len(preprocesses) == 1  # a different clip is encoded anew
    "".join(chat.chat(clip_path, history, max_new_tokens=2))
    assert len(encodes) == 1 and len(preprocesses) == 1  # and the first one is still cached


def test_concurrent_sessions_get_their_own_clip(tmp_path: Path, clip_path: Path, other_clip_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    chat = load_model(f"hf:{build_qwen2_vl(tmp_path / 'q')}", device="cpu", num_frames=4, max_concurrency=2)
    encodes, preprocesses = _count_calls(chat, "visual", monkeypatch)
    question = [ChatMessage("user", "What happened in the video?")]
    answers: dict[Path, list[str]] = {clip_path: [], other_clip_path: []}

    def ask(path: Path) -> None:
        for _ in range(3):
            answers[path].append("".join(chat.chat(path, question, max_new_tokens=3)))

    threads = [threading.Thread(target=ask, args=(path,)) for path in (clip_path, other_clip_path)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(encodes) == 2 and len(preprocesses) == 2  # once per clip, whatever the interleaving
    assert all(len(set(texts)) == 1 and len(texts) == 3 for texts in answers.values())
    for path in (clip_path, other_clip_path):
        encoded = chat.clip(path).encoded
        own = chat.processor.video_processor(encoded["hf_video"], return_tensors="pt")["pixel_values_videos"]
        assert torch.equal(encoded["hf_processed_video"][1]["pixel_values_videos"], own)


@pytest.mark.parametrize("builder", [build_qwen2_vl, build_llava_onevision], ids=["qwen2-vl", "llava-onevision"])
def test_tiny_video_llm_loads_and_streams(builder, tmp_path: Path, clip_path: Path) -> None:
    folder = builder(tmp_path / "model")
    chat = load_model(f"hf:{folder}", device="cpu", num_frames=4)
    history = [ChatMessage("user", "What happened in the video?")]
    chunks = list(chat.chat(clip_path, history, max_new_tokens=5))
    assert "".join(chunks).strip()
    assert chat.last_frames is not None and chat.last_frames.images.shape[0] == 4
    history += [ChatMessage("assistant", "".join(chunks)), ChatMessage("user", "Why?")]
    assert isinstance("".join(chat.chat(clip_path, history, max_new_tokens=3)), str)
    assert chat.last_timings["sample_s"] == 0.0  # second turn reused the sampled frames


def test_video_part_only_in_the_first_user_turn(tmp_path: Path) -> None:
    chat = load_model(f"hf:{build_qwen2_vl(tmp_path / 'q')}", device="cpu")
    conv = chat.conversation([ChatMessage("user", "a"), ChatMessage("assistant", "b"), ChatMessage("user", "c")])
    assert [m["role"] for m in conv] == ["system", "user", "assistant", "user"]
    assert conv[1]["content"][0] == {"type": "video"}
    assert all(part["type"] == "text" for m in conv[2:] for part in m["content"])


def test_missing_model_is_a_load_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    # the hub library reads HF_HUB_OFFLINE once at import; make sure no test reaches for the network
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelLoadError, match=r"hf:"):
        load_model(f"hf:{tmp_path / 'absent'}", device="cpu")
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE"):
        load_model("hf:some-org/not-downloaded-video-llm", device="cpu")


def test_a_missing_package_is_a_load_error() -> None:
    from ecva_core.models.hf import _load

    def loader(source: str) -> None:
        raise ImportError("Package `num2words` is required to run SmolVLM processor.")

    with pytest.raises(ModelLoadError, match=r"hf:some/model.*num2words.*pip"):
        _load(loader, "some/model", "processor")
