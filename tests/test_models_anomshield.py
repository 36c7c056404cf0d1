"""AnomShield backend: official checkpoint layouts, the mamba_scan projector, prompt and clip cache."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from ecva_core.errors import ModelLoadError
from ecva_core.models import ChatMessage, load_model, parse_spec
from tests.tiny_models import build_anomshield
from tests.videogen import make_clip

torch = pytest.importorskip("torch")

# The official projector's state-dict names for mamba_depth=1, mlp_depth=2 (Dulpy/ECVA MambaScan).
OFFICIAL_PROJECTOR_KEYS = {
    f"model.mm_projector.mambaModel_h.layers.0.mixer.{name}"
    for name in (
        "A_log", "D", "in_proj.weight", "conv1d.weight", "conv1d.bias", "x_proj.weight", "dt_proj.weight",
        "dt_proj.bias", "A_b_log", "conv1d_b.weight", "conv1d_b.bias", "x_proj_b.weight", "dt_proj_b.weight",
        "dt_proj_b.bias", "D_b", "out_proj.weight",
    )
} | {
    "model.mm_projector.mambaModel_h.layers.0.norm.weight",
    "model.mm_projector.mambaModel_h.norm_f.weight",
    "model.mm_projector.readout.0.weight",
    "model.mm_projector.readout.0.bias",
    "model.mm_projector.readout.2.weight",
    "model.mm_projector.readout.2.bias",
}


def _greedy_answer(chat, clip_path: Path, question: str, max_new_tokens: int) -> str:
    """The answer a plain argmax loop over the language model gives on the spliced video embeddings,
    recomputing the whole sequence each step: what the backend's decoding must reproduce."""
    from ecva_core.models.anomshield.conversation import build_prompt

    model = chat.model
    embeds = model.inputs_embeds(build_prompt([ChatMessage("user", question)]), chat.video_tokens(chat.clip(clip_path)))
    embed = model.language_model.get_input_embeddings()
    tokens: list[int] = []
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits = model.language_model(inputs_embeds=embeds).logits[0, -1]
            token = int(logits.argmax())
            if token == model.tokenizer.eos_token_id:
                break
            tokens.append(token)
            embeds = torch.cat([embeds, embed(torch.tensor([[token]]))], dim=1)
    return model.tokenizer.decode(tokens, skip_special_tokens=True)


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clips") / "00007.mp4"
    make_clip(path, seconds=1.0, fps=16, width=48, height=32)
    return path


@pytest.fixture(scope="module")
def lora_ckpt(tmp_path_factory: pytest.TempPathFactory):
    return build_anomshield(tmp_path_factory.mktemp("anomshield-lora"), lora=True)


@pytest.fixture(scope="module")
def lora_chat(lora_ckpt):
    return load_model(f"anomshield:{lora_ckpt.checkpoint}", device="cpu")


@pytest.fixture(scope="module")
def full_ckpt(tmp_path_factory: pytest.TempPathFactory):
    return build_anomshield(tmp_path_factory.mktemp("anomshield-full"), lora=False, image_aspect_ratio="square")


def test_projector_parameter_names_match_the_official_state_dict() -> None:
    from ecva_core.models.anomshield.modeling import local_to_official, official_to_local
    from ecva_core.models.anomshield.projector import MambaScanProjector

    ours = {local_to_official("mm_projector." + k) for k in MambaScanProjector(32, 48).state_dict()}
    assert ours == OFFICIAL_PROJECTOR_KEYS
    assert official_to_local("base_model.model.model.mm_projector.readout.0.bias") == "mm_projector.readout.0.bias"
    assert official_to_local("model.layers.0.self_attn.q_proj.weight") == (
        "language_model.model.layers.0.self_attn.q_proj.weight")
    assert official_to_local("lm_head.weight") == "language_model.lm_head.weight"


def test_chunked_scan_equals_the_sequential_recurrence() -> None:
    import torch.nn.functional as F

    from ecva_core.models.anomshield.projector import selective_scan

    g = torch.Generator().manual_seed(1)
    b, d, n, length = 2, 3, 4, 37
    u, delta, z = (torch.randn(b, d, length, generator=g) for _ in range(3))
    A = -torch.rand(d, n, generator=g) * 2
    B, C = torch.randn(b, n, length, generator=g), torch.randn(b, n, length, generator=g)
    D, bias = torch.randn(d, generator=g), torch.randn(d, generator=g)
    got = selective_scan(u, delta, A, B, C, D, z, bias, chunk=8)
    dt = F.softplus(delta + bias[None, :, None])
    h = torch.zeros(b, d, n)
    ys = []
    for t in range(length):
        h = torch.exp(dt[:, :, t, None] * A) * h + (dt[:, :, t] * u[:, :, t])[..., None] * B[:, None, :, t]
        ys.append((h * C[:, None, :, t]).sum(-1))
    want = (torch.stack(ys, -1) + u * D[None, :, None]) * F.silu(z)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_projector_pools_each_frame_to_16_tokens() -> None:
    from ecva_core.models.anomshield.projector import MambaScanProjector

    projector = MambaScanProjector(16, 24)
    out = projector(torch.randn(1, 3, 256, 16))
    assert out.shape == (1, 3 * 16, 24)


def test_prompt_follows_the_llama2_template() -> None:
    from ecva_core.models.anomshield.conversation import build_prompt

    prompt = build_prompt([ChatMessage("system", "SYS"), ChatMessage("user", "What happened?"),
                           ChatMessage("assistant", "A crash."), ChatMessage("user", "Why?")])
    assert prompt == ("[INST] <<SYS>>\nSYS\n<</SYS>>\n\n<video>\nWhat happened? [/INST] A crash. </s>"
                      "[INST] Why? [/INST]")


def test_pad_to_square_uses_the_clip_mean_colour() -> None:
    from ecva_core.models.anomshield.vision import CLIP_MEAN, pad_to_square

    image = np.zeros((2, 6, 3), dtype=np.uint8)
    out = pad_to_square(image, tuple(int(x * 255) for x in CLIP_MEAN))
    assert out.shape == (6, 6, 3)
    assert out[0, 0].tolist() == [122, 116, 104]
    assert out[2:4].max() == 0


def test_lora_checkpoint_loads_merges_and_generates(lora_ckpt, lora_chat, clip_path: Path) -> None:
    from transformers import MistralForCausalLM

    chat = lora_chat
    chat.clip_cache.clear()
    model = chat.model
    for key, value in lora_ckpt.projector_state.items():
        torch.testing.assert_close(model.mm_projector.state_dict()[key], value)
    base = MistralForCausalLM.from_pretrained(lora_ckpt.base)
    merged = model.language_model.model.layers[0].self_attn.q_proj.weight
    assert not torch.allclose(merged, base.model.layers[0].self_attn.q_proj.weight)
    chunks = list(chat.chat(clip_path, [ChatMessage("user", "What happened in the video?")], max_new_tokens=6))
    assert chunks and "".join(chunks).strip()
    assert chat.last_frames is not None and chat.last_frames.images.shape[0] == 8
    assert {"sample_s", "encode_s", "total_s"} <= set(chat.last_timings)


def test_video_tokens_are_spliced_at_the_placeholder(lora_chat, clip_path: Path) -> None:
    chat = lora_chat
    clip = chat.clip(clip_path)
    tokens = chat.video_tokens(clip)
    assert tokens.shape == (8 * 1, 32)  # 32 px / 8 px patches = 4x4 grid -> one pooled token per frame
    embeds = chat.model.inputs_embeds("[INST] <video>\nwhy [/INST]", tokens)
    before, after = chat.model.prompt_ids("[INST] <video>\nwhy [/INST]")
    assert before[0] == chat.model.tokenizer.bos_token_id
    assert embeds.shape[1] == len(before) + len(after) + tokens.shape[0]


def test_full_checkpoint_without_lora_and_explicit_base(full_ckpt, clip_path: Path) -> None:
    chat = load_model(f"anomshield:{full_ckpt.checkpoint}", device="cpu")
    for key, value in full_ckpt.projector_state.items():
        torch.testing.assert_close(chat.model.mm_projector.state_dict()[key], value)
    text = chat.answer(clip_path, "Describe the anomaly.", max_new_tokens=4)
    assert text == _greedy_answer(chat, clip_path, "Describe the anomaly.", 4)


def test_base_lm_from_spec_suffix(lora_ckpt, tmp_path: Path, clip_path: Path) -> None:
    import json
    import shutil

    ckpt = tmp_path / "moved"
    shutil.copytree(lora_ckpt.checkpoint, ckpt)
    config = json.loads((ckpt / "config.json").read_text())
    config["_name_or_path"] = "Mistral-7B-Instruct-v0___2"  # as the official script leaves it
    (ckpt / "config.json").write_text(json.dumps(config))
    adapter = json.loads((ckpt / "adapter_config.json").read_text())
    adapter["base_model_name_or_path"] = None
    (ckpt / "adapter_config.json").write_text(json.dumps(adapter))
    with pytest.raises(ModelLoadError, match="base language model"):
        load_model(f"anomshield:{ckpt}", device="cpu")
    chat = load_model(f"anomshield:{ckpt}@{lora_ckpt.base}", device="cpu")
    assert chat.answer(clip_path, "Why?", max_new_tokens=2) is not None


def test_second_turn_reuses_frames_and_video_tokens(lora_chat, clip_path: Path, monkeypatch) -> None:
    import ecva_core.video as video

    calls: list[Path] = []
    real = video.sample_frames

    def counting(path, *args, **kwargs):
        calls.append(Path(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(video, "sample_frames", counting)
    chat = lora_chat
    chat.clip_cache.clear()
    encodes: list[int] = []
    original = chat.model.encode_video
    monkeypatch.setattr(chat.model, "encode_video", lambda pixels: encodes.append(1) or original(pixels))
    history = [ChatMessage("user", "What happened?")]
    first = "".join(chat.chat(clip_path, history, max_new_tokens=3))
    history += [ChatMessage("assistant", first), ChatMessage("user", "Why did it happen?")]
    "".join(chat.chat(clip_path, history, max_new_tokens=3))
    assert len(calls) == 1 and len(encodes) == 1
    assert chat.last_timings["sample_s"] == 0.0 and chat.last_timings["encode_s"] == 0.0


def test_static_decoder_matches_generate_token_for_token(lora_chat, clip_path: Path) -> None:
    from ecva_core.models.decoding import StaticDecoder

    model = lora_chat.model
    embeds = model.inputs_embeds("[INST] <video>\nWhat is the result? [/INST]",
                                 lora_chat.video_tokens(lora_chat.clip(clip_path)))
    with torch.inference_mode():
        reference = model.language_model.generate(
            inputs_embeds=embeds, attention_mask=torch.ones(embeds.shape[:2], dtype=torch.long),
            max_new_tokens=6, do_sample=False, pad_token_id=3)[0].tolist()
    decoder = StaticDecoder(model.language_model, max_cache_len=128, compile_step=False)
    ours = [int(t[0]) for t in decoder.tokens(embeds, 6, stop_at_eos=False)]
    assert reference and ours[: len(reference)] == reference  # generate stops at EOS, we were told not to
    again = [int(t[0]) for t in decoder.tokens(embeds, 6, stop_at_eos=False)]  # the cache is reset and reused
    assert again == ours


def test_static_cache_option_uses_the_fused_decoder_with_the_same_answer(lora_ckpt, clip_path: Path) -> None:
    from ecva_core.models.decoding import FusedDecoder, StaticDecoder

    question = "What is the result?"
    plain = load_model(f"anomshield:{lora_ckpt.checkpoint}", device="cpu").answer(clip_path, question,
                                                                                   max_new_tokens=6)
    fused = load_model(f"anomshield:{lora_ckpt.checkpoint}", device="cpu", static_cache=True, max_cache_len=256)
    assert fused.answer(clip_path, question, max_new_tokens=6) == plain
    assert isinstance(fused.decoder(), FusedDecoder) and fused.decoder().max_cache_len == 256
    static = load_model(f"anomshield:{lora_ckpt.checkpoint}", device="cpu", static_cache=True, fused_decoder="false")
    assert isinstance(static.decoder(), StaticDecoder)
    assert static.answer(clip_path, question, max_new_tokens=6) == plain


def test_cli_fast_decode_flag_loads_the_fast_decoder(lora_ckpt, clip_path: Path, monkeypatch) -> None:
    import json

    from click.testing import CliRunner

    from ecva_core.cli.main import cli
    from ecva_core.models import decoding

    built: list[object] = []
    real = decoding.fast_decoder
    monkeypatch.setattr(decoding, "fast_decoder", lambda *a, **k: built.append(real(*a, **k)) or built[-1])
    args = ["chat", "--model", f"anomshield:{lora_ckpt.checkpoint}", "--video", str(clip_path), "--question",
            "Why did it happen?", "--device", "cpu", "--max-new-tokens", "3", "--json"]
    slow = CliRunner().invoke(cli, args)
    assert slow.exit_code == 0, slow.output
    assert built == []
    fast = CliRunner().invoke(cli, [*args, "--fast-decode"])
    assert fast.exit_code == 0, fast.output
    assert len(built) == 1
    fast_json, slow_json = (json.loads(r.stdout.strip().splitlines()[-1]) for r in (fast, slow))
    assert fast_json["answer"] == slow_json["answer"]
    assert fast_json["backend"]["decoder"] == "FusedDecoder" and slow_json["backend"]["decoder"] == "generate"


def test_fast_decoding_falls_back_to_generate_when_it_cannot_run(lora_ckpt, clip_path: Path, monkeypatch) -> None:
    from ecva_core.models import decoding

    question = "What is the result?"
    plain = load_model(f"anomshield:{lora_ckpt.checkpoint}", device="cpu").answer(clip_path, question,
                                                                                   max_new_tokens=5)

    class BrokenCompiler:
        """A decoder whose compilation fails the way a missing C compiler or driver makes it fail."""

        compile_step = True
        max_cache_len = 4096

        def tokens(self, *args, **kwargs):
            raise RuntimeError("inductor: no working C compiler")

    monkeypatch.setattr(decoding, "fast_decoder", lambda *a, **k: BrokenCompiler())
    chat = load_model(f"anomshield:{lora_ckpt.checkpoint}", device="cpu", static_cache=True)
    assert "no working C compiler" in chat.decoder_error
    assert chat.describe()["decoder"] == "generate"
    assert chat.answer(clip_path, question, max_new_tokens=5) == plain

    monkeypatch.undo()
    short = load_model(f"anomshield:{lora_ckpt.checkpoint}", device="cpu", static_cache=True, max_cache_len=16)
    assert short.answer(clip_path, question, max_new_tokens=5) == plain  # prompt > cache: generate answers

    from ecva_core.models.anomshield.conversation import build_prompt

    prompt = short.model.inputs_embeds(build_prompt([ChatMessage("user", question)]),
                                       short.video_tokens(short.clip(clip_path))).shape[1]
    tight = load_model(f"anomshield:{lora_ckpt.checkpoint}", device="cpu", static_cache=True,
                       max_cache_len=prompt + 3)
    assert tight.fast_decoder_for(prompt + 3) is tight.decoder()
    assert tight.answer(clip_path, question, max_new_tokens=5) == plain  # not cut at the cache's end


def test_load_errors_say_what_to_configure(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="checkpoint folder not found"):
        load_model(f"anomshield:{tmp_path / 'nope'}")
    with pytest.raises(ModelLoadError, match="unknown model spec"):
        load_model("llama:foo")
    with pytest.raises(ModelLoadError, match="unknown model spec"):
        parse_spec("anomshield:")
    (tmp_path / "config.json").write_text('{"hidden_size": 8}')
    with pytest.raises(ModelLoadError, match="mm_vision_tower"):
        load_model(f"anomshield:{tmp_path}")


def test_missing_vision_tower_is_a_load_error(lora_ckpt, tmp_path: Path) -> None:
    import json
    import shutil

    ckpt = tmp_path / "ckpt"
    shutil.copytree(lora_ckpt.checkpoint, ckpt)
    config = json.loads((ckpt / "config.json").read_text())
    config["mm_vision_tower"] = str(tmp_path / "no-such-clip")
    (ckpt / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="vision_tower"):
        load_model(f"anomshield:{ckpt}", device="cpu")


def test_spec_parsing() -> None:
    assert parse_spec("openai:gpt-4o@http://127.0.0.1:8000/v1").extra == "http://127.0.0.1:8000/v1"
    assert parse_spec("hf:org/model@main").model == "org/model@main"
    assert str(parse_spec("anomshield:/ckpt@/base")) == "anomshield:/ckpt@/base"


def test_closing_the_stream_stops_generation(lora_chat, clip_path: Path) -> None:
    stream = lora_chat.chat(clip_path, [ChatMessage("user", "Describe everything.")], max_new_tokens=400,
                            temperature=1.0)
    next(stream, None)
    stream.close()  # the app's "stop": the worker ends at its next step and the generator finishes cleanly
    assert "total_s" not in lora_chat.last_timings


def test_pretrain_layout_with_mm_projector_bin(lora_ckpt, tmp_path: Path, clip_path: Path) -> None:
    """The pre-training stage saves only config.json + mm_projector.bin (keys model.mm_projector.*)."""
    import shutil

    folder = tmp_path / "pretrain"
    folder.mkdir()
    shutil.copy(lora_ckpt.checkpoint / "config.json", folder / "config.json")
    torch.save({f"model.mm_projector.{k}": v for k, v in lora_ckpt.projector_state.items()},
               folder / "mm_projector.bin")
    chat = load_model(f"anomshield:{folder}", device="cpu")
    for key, value in lora_ckpt.projector_state.items():
        torch.testing.assert_close(chat.model.mm_projector.state_dict()[key], value)
    assert chat.answer(clip_path, "What happened?", max_new_tokens=2) == _greedy_answer(
        chat, clip_path, "What happened?", 2
    )


def test_incomplete_projector_weights_are_a_load_error(lora_ckpt, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "broken"
    folder.mkdir()
    shutil.copy(lora_ckpt.checkpoint / "config.json", folder / "config.json")
    partial = {f"model.mm_projector.{k}": v for k, v in lora_ckpt.projector_state.items() if "readout" in k}
    torch.save(partial, folder / "mm_projector.bin")
    with pytest.raises(ModelLoadError, match="lacks mamba_scan projector weights"):
        load_model(f"anomshield:{folder}", device="cpu")


def test_warm_up_compiles_the_step_the_first_answer_uses(lora_ckpt, clip_path: Path, monkeypatch) -> None:
    from ecva_core.models import decoding
    from ecva_core.models.decoding import FusedDecoder

    question = "What is the result?"
    plain = load_model(f"anomshield:{lora_ckpt.checkpoint}", device="cpu").answer(clip_path, question,
                                                                                   max_new_tokens=5)
    made: list[FusedDecoder] = []

    def compiled_on_cpu(language_model, max_cache_len, fused):
        made.append(FusedDecoder(language_model, max_cache_len=max_cache_len, compile_step=True, min_span=64))
        return made[-1]

    monkeypatch.setattr(decoding, "fast_decoder", compiled_on_cpu)
    chat = load_model(f"anomshield:{lora_ckpt.checkpoint}", device="cpu", static_cache=True, max_cache_len=2048)
    warmed_span = made[0].span
    assert chat.decoder_error is None and warmed_span >= 512  # video tokens + prompt + a 512-token answer
    chat.answer(clip_path, question, max_new_tokens=512)
    assert made[0].span == warmed_span  # a default-length answer runs in the span the warm-up compiled
    assert chat.answer(clip_path, question, max_new_tokens=5) == plain


def test_concurrent_sessions_take_turns_on_the_static_cache(lora_ckpt, clip_path: Path, monkeypatch) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from ecva_core.models import base


    questions = ["What is the result?", "Why did it happen?", "Describe the scene.", "What happened first?"]
    plain = load_model(f"anomshield:{lora_ckpt.checkpoint}", device="cpu")
    expected = [plain.answer(clip_path, q, max_new_tokens=40) for q in questions]
    monkeypatch.setattr(base, "_GPU_SLOTS", {})  # this test's max_concurrency=4 sets the device's limit
    fast = load_model(f"anomshield:{lora_ckpt.checkpoint}", device="cpu", static_cache=True, max_concurrency=4,
                      max_cache_len=512)
    fast.clip(clip_path)
    start = threading.Barrier(len(questions))

    def ask(question: str) -> str:
        start.wait()
        return fast.answer(clip_path, question, max_new_tokens=40)

    with ThreadPoolExecutor(len(questions)) as pool:
        answers = list(pool.map(ask, questions))
    assert answers == expected
