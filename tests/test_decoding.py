"""The fast decoders against transformers itself, on tiny random Llama-family models (float32, CPU)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ecva_core.models.decoding import FusedDecoder, StaticDecoder, fast_decoder, fused_support

SHAPES = dict(vocab_size=160, hidden_size=48, intermediate_size=96, num_hidden_layers=3, num_attention_heads=6,
              num_key_value_heads=2, max_position_embeddings=256)


def _mistral(**extra):
    from transformers import MistralConfig, MistralForCausalLM

    return MistralForCausalLM(MistralConfig(**SHAPES, **extra))


def _llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    rope = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 32, "rope_theta": 10000.0}
    return LlamaForCausalLM(LlamaConfig(**SHAPES, rope_scaling=rope))


def _qwen2():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    return Qwen2ForCausalLM(Qwen2Config(**SHAPES, tie_word_embeddings=True))


BUILDERS = {"mistral, sliding window 16": lambda: _mistral(sliding_window=16),
            "llama, llama3 RoPE": _llama, "qwen2, q/k/v bias, tied head": _qwen2}


def _random(model: nn.Module) -> nn.Module:
    """Weights large enough that every layer moves the argmax (the default init is nearly uniform)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(std=0.2)
    model.generation_config.eos_token_id = None  # else min_new_tokens masks EOS and generate avoids it
    return model.eval()


def _generate(model: nn.Module, embeds: torch.Tensor, new: int) -> torch.Tensor:
    mask = torch.ones(embeds.shape[:2], dtype=torch.long)
    with torch.inference_mode():
        return model.generate(inputs_embeds=embeds, attention_mask=mask, max_new_tokens=new, min_new_tokens=new,
                              do_sample=False, pad_token_id=0)


@pytest.mark.parametrize("family", list(BUILDERS))
def test_fused_decoder_matches_transformers(family: str) -> None:
    model = _random(BUILDERS[family]())
    embeds = torch.randn(2, 24, SHAPES["hidden_size"], generator=torch.Generator().manual_seed(1))
    reference = _generate(model, embeds, 14)  # 24 + 14 > 16: the sliding window is in play
    with torch.inference_mode():
        reference_logits = model(inputs_embeds=embeds).logits[:, -1, :]
    storages_before = {p.untyped_storage().data_ptr() for p in model.parameters()}

    decoder = FusedDecoder(model, max_cache_len=64, compile_step=False)
    ours = torch.stack(list(decoder.tokens(embeds, 14, stop_at_eos=False)), dim=1)
    assert torch.equal(ours, reference)
    assert torch.allclose(decoder.prefill(embeds), reference_logits, atol=1e-4)
    again = torch.stack(list(decoder.tokens(embeds[:, :10], 5, stop_at_eos=False)), dim=1)  # shorter prompt
    assert torch.equal(again, _generate(model, embeds[:, :10], 5))

    # transformers' own forward runs on views of the fused weights and still gives the same answer
    assert torch.equal(_generate(model, embeds, 14), reference)
    first = model.model.layers[0]
    fused = decoder.model.layers[0]
    assert first.self_attn.k_proj.weight.untyped_storage().data_ptr() == fused.qkv.untyped_storage().data_ptr()
    assert first.mlp.up_proj.weight.untyped_storage().data_ptr() == fused.gate_up.untyped_storage().data_ptr()
    # fusing replaced the separate q/k/v and gate/up storages instead of adding copies
    storages_after = {p.untyped_storage().data_ptr() for p in model.parameters()}
    assert len(storages_after) < len(storages_before)
    # a second decoder on the same model finds the weights already fused and shares them
    assert FusedDecoder(model, max_cache_len=32, compile_step=False).model.layers[0].qkv.data_ptr() == \
        fused.qkv.data_ptr()


def test_attention_span_follows_the_request_and_keeps_the_answer() -> None:
    model = _random(_llama())
    decoder = FusedDecoder(model, max_cache_len=128, compile_step=False, min_span=16)
    embeds = torch.randn(1, 40, SHAPES["hidden_size"], generator=torch.Generator().manual_seed(5))
    for prompt, new, span in ((10, 5, 16), (24, 14, 64), (40, 60, 128), (10, 5, 16)):
        tokens = torch.stack(list(decoder.tokens(embeds[:, :prompt], new, stop_at_eos=False)), dim=1)
        assert decoder.span == span
        assert torch.equal(tokens, _generate(model, embeds[:, :prompt], new))
    decoder.prefill(embeds[:, :20])  # a direct prefill longer than the span widens it
    assert decoder.span == 32


def test_compiled_step_gives_the_eager_tokens() -> None:
    model = _random(_mistral())
    embeds = torch.randn(1, 12, SHAPES["hidden_size"], generator=torch.Generator().manual_seed(2))
    eager = FusedDecoder(model, max_cache_len=64, compile_step=False, min_span=16)
    compiled = FusedDecoder(model, max_cache_len=64, compile_step=True, min_span=16)
    for new in (3, 6, 30):  # spans 16, 32, 64: one graph each
        expected = [int(t[0]) for t in eager.tokens(embeds, new, stop_at_eos=False)]
        assert [int(t[0]) for t in compiled.tokens(embeds, new, stop_at_eos=False)] == expected
        assert [int(t[0]) for t in compiled.tokens(embeds, new, stop_at_eos=False)] == expected


def test_sampling_is_seeded_and_top_p_near_zero_is_greedy() -> None:
    model = _random(_qwen2())
    decoder = FusedDecoder(model, max_cache_len=48, compile_step=False)
    embeds = torch.randn(1, 10, SHAPES["hidden_size"], generator=torch.Generator().manual_seed(3))
    greedy = [int(t[0]) for t in decoder.tokens(embeds, 8, stop_at_eos=False)]
    torch.manual_seed(7)
    first = [int(t[0]) for t in decoder.tokens(embeds, 8, temperature=1.5, stop_at_eos=False)]
    torch.manual_seed(7)
    second = [int(t[0]) for t in decoder.tokens(embeds, 8, temperature=1.5, stop_at_eos=False)]
    assert first == second and all(0 <= t < SHAPES["vocab_size"] for t in first)
    assert [int(t[0]) for t in decoder.tokens(embeds, 8, temperature=1.0, top_p=1e-6, stop_at_eos=False)] == greedy


def test_stops_at_eos_and_at_the_end_of_the_cache() -> None:
    model = _random(_mistral())
    decoder = FusedDecoder(model, max_cache_len=20, compile_step=False)
    embeds = torch.randn(1, 12, SHAPES["hidden_size"], generator=torch.Generator().manual_seed(4))
    tokens = [int(t[0]) for t in decoder.tokens(embeds, 50, stop_at_eos=False)]
    assert len(tokens) == 8  # 20 cache slots - 12 prompt positions
    stopped = [int(t[0]) for t in decoder.tokens(embeds, 50, eos_token_id=tokens[2])]
    assert stopped == tokens[: tokens.index(tokens[2]) + 1]
    with pytest.raises(ValueError, match="does not fit the static cache of 20"):
        next(decoder.tokens(torch.randn(1, 20, SHAPES["hidden_size"]), 4))


def test_unsupported_models_fall_back_to_the_static_cache_decoder() -> None:
    from transformers import Qwen3Config, Qwen3ForCausalLM

    qwen3 = _random(Qwen3ForCausalLM(Qwen3Config(**SHAPES)))
    assert "qwen3" in fused_support(qwen3)
    assert isinstance(fast_decoder(qwen3, max_cache_len=32, compile_step=False), StaticDecoder)
    with pytest.raises(ValueError, match="cannot run this model"):
        FusedDecoder(qwen3, max_cache_len=32)

    class Wrapped(nn.Linear):
        """Stands in for a quantised or adapter-wrapped projection."""

    mistral = _random(_mistral())
    layer = mistral.model.layers[1].self_attn
    wrapped = Wrapped(layer.v_proj.in_features, layer.v_proj.out_features, bias=False)
    wrapped.weight = layer.v_proj.weight
    layer.v_proj = wrapped
    assert "plain nn.Linear" in fused_support(mistral)
    assert isinstance(fast_decoder(mistral, compile_step=False), StaticDecoder)
    assert isinstance(fast_decoder(_random(_mistral()), compile_step=False), FusedDecoder)
    assert isinstance(fast_decoder(_random(_mistral()), compile_step=False, fused=False), StaticDecoder)


@pytest.mark.parametrize("family", list(BUILDERS))
def test_left_padded_rows_decode_as_each_row_alone(family: str) -> None:
    """Prompts of different lengths in one batch: same tokens as each prompt decoded on its own."""
    model = _random(BUILDERS[family]())
    decoder = FusedDecoder(model, max_cache_len=64, compile_step=False, min_span=16)
    generator = torch.Generator().manual_seed(6)
    prompts = [torch.randn(1, length, SHAPES["hidden_size"], generator=generator) for length in (9, 24, 17)]
    alone = [torch.stack(list(decoder.tokens(p, 12, stop_at_eos=False)), dim=1)[0] for p in prompts]
    padding = torch.tensor([24 - p.shape[1] for p in prompts])
    batch = torch.cat([torch.nn.functional.pad(p, (0, 0, 24 - p.shape[1], 0)) for p in prompts])
    together = torch.stack(list(decoder.tokens(batch, 12, stop_at_eos=False, padding=padding)), dim=1)
    for row, expected in zip(together, alone, strict=True):
        assert torch.equal(row, expected)
    assert len({tuple(row.tolist()) for row in together}) == 3
    with pytest.raises(ValueError, match="left-padded"):
        StaticDecoder(model, max_cache_len=64, compile_step=False).prefill(batch, padding)
