"""hf backend: tiny Qwen2-VL and LLaVA-OneVision checkpoints saved with save_pretrained, loaded via hf:PATH."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecva_core.errors import ModelLoadError
from ecva_core.models import ChatMessage, load_model
from tests.tiny_models import build_llava_onevision, build_qwen2_vl
from tests.videogen import make_clip


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clips") / "00003.mp4"
    make_clip(path, seconds=1.0, fps=16, width=64, height=48)
    return path


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
