"""Builders for tiny random checkpoints saved in the real on-disk layouts (no download needed).

* :func:`build_tokenizer` - a word-level fast tokenizer with ``<s>``/``</s>``/``<unk>`` (and extra
  special tokens when asked), built with the ``tokenizers`` library.
* :func:`build_anomshield` - an AnomShield checkpoint exactly as ``AnomShield/train.py`` writes it
  (LoRA adapter + ``non_lora_trainables.bin``, or full weights with ``model.mm_projector.*``),
  next to a tiny CLIP tower and a tiny Mistral base LM.
* :func:`build_qwen2_vl` / :func:`build_llava_onevision` - tiny transformers-native video LLMs
  with a processor and chat template, saved with ``save_pretrained``.
* :func:`build_smolvlm` - a tiny SmolVLM (video frames go through its image encoder), likewise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

WORDS = (
    "the", "a", "car", "person", "man", "woman", "road", "street", "fire", "smoke", "crash", "falls", "runs",
    "hits", "stops", "because", "then", "after", "video", "shows", "what", "why", "how", "happened",
    "result", "cause", "anomaly", "accident", "police", "people", "at", "night", "day", "in", "on", "of",
    "and", "is", "was", "were", "it", "this", "that", "with", "from", "to", "by", "near", "red", "blue",
    "white", "black", "truck", "bike", "dog", "cat", "answer", "question", "describe", "event", "scene",
    "camera", "suddenly", "slowly", "fast", "left", "right", "front", "behind",
)
PUNCT = list(".,!?:;()[]<>/\\-'\"_|=")


def build_tokenizer(extra_special: list[str] | tuple[str, ...] = (), bos: bool = True):
    """A small ``PreTrainedTokenizerFast``: word level, whitespace/punctuation split, BOS added."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<pad>", *extra_special]
    vocab = {tok: i for i, tok in enumerate(specials + [w for w in (*WORDS, *PUNCT) if w not in specials])}
    for token in ("SYS", "INST", "user", "assistant", "system", "video", "\n", "<video>"):
        vocab.setdefault(token, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    if bos:
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A $B",
                                                           special_tokens=[("<s>", vocab["<s>"])])
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                      pad_token="<pad>")
    if extra_special:
        wrapped.add_special_tokens({"additional_special_tokens": list(extra_special)})
    return wrapped


def tiny_clip_config(image_size: int = 32, patch_size: int = 8, width: int = 32):
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(hidden_size=width, intermediate_size=2 * width, num_hidden_layers=2,
                            num_attention_heads=2, image_size=image_size, patch_size=patch_size,
                            projection_dim=width)


def tiny_mistral_config(vocab_size: int, width: int = 32):
    from transformers import MistralConfig

    return MistralConfig(vocab_size=vocab_size, hidden_size=width, intermediate_size=2 * width,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=width // 4,
                         max_position_embeddings=1024, sliding_window=None, bos_token_id=1, eos_token_id=2,
                         pad_token_id=3, tie_word_embeddings=False)


@dataclass
class TinyAnomShield:
    checkpoint: Path
    base: Path
    clip: Path
    projector_state: dict
    lora: bool


def build_anomshield(dest: Path, lora: bool = True, num_frames: int = 8, seed: int = 0,
                     image_aspect_ratio: str = "pad") -> TinyAnomShield:
    """Write ``dest/{clip,base,checkpoint}`` in the official layouts and return the paths."""
    import torch
    from safetensors.torch import save_file
    from transformers import CLIPVisionModel, MistralForCausalLM

    from ecva_core.models.anomshield.config import AnomShieldConfig
    from ecva_core.models.anomshield.projector import MambaScanProjector
    from ecva_core.models.anomshield.vision import default_image_processor

    torch.manual_seed(seed)
    dest.mkdir(parents=True, exist_ok=True)
    clip_dir, base_dir, ckpt_dir = dest / "clip-vit-tiny", dest / "mistral-tiny", dest / "checkpoint"
    clip_cfg = tiny_clip_config()
    CLIPVisionModel(clip_cfg).save_pretrained(clip_dir)
    default_image_processor(clip_cfg.image_size).save_pretrained(clip_dir)

    tokenizer = build_tokenizer()
    lm_cfg = tiny_mistral_config(len(tokenizer))
    base = MistralForCausalLM(lm_cfg).eval()
    base.save_pretrained(base_dir)
    tokenizer.save_pretrained(base_dir)

    projector = MambaScanProjector(clip_cfg.hidden_size, lm_cfg.hidden_size)
    with torch.no_grad():
        for param in projector.parameters():
            param.add_(torch.randn_like(param) * 0.02)
    projector_state = {k: v.clone() for k, v in projector.state_dict().items()}

    cfg = AnomShieldConfig(vision_tower=str(clip_dir), hidden_size=lm_cfg.hidden_size,
                           mm_hidden_size=clip_cfg.hidden_size, num_frames=num_frames,
                           image_aspect_ratio=image_aspect_ratio, model_base=str(base_dir),
                           text_config=lm_cfg.to_dict())
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    if lora:
        from peft import LoraConfig, get_peft_model

        tuned = MistralForCausalLM.from_pretrained(base_dir)
        targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        peft_model = get_peft_model(tuned, LoraConfig(r=4, lora_alpha=8, target_modules=targets,
                                                      lora_dropout=0.0, task_type="CAUSAL_LM"))
        with torch.no_grad():
            for name, param in peft_model.named_parameters():
                if "lora_B" in name:
                    param.normal_(0, 0.5)
        peft_model.save_pretrained(ckpt_dir)
        non_lora = {f"base_model.model.model.mm_projector.{k}": v for k, v in projector_state.items()}
        torch.save(non_lora, ckpt_dir / "non_lora_trainables.bin")
    else:
        state = {k: v.contiguous() for k, v in base.state_dict().items()}
        state.update({f"model.mm_projector.{k}": v.contiguous() for k, v in projector_state.items()})
        save_file(state, str(ckpt_dir / "model.safetensors"), metadata={"format": "pt"})
        tokenizer.save_pretrained(ckpt_dir)
    (ckpt_dir / "config.json").write_text(json.dumps(cfg.to_official_dict(), indent=2), encoding="utf-8")
    return TinyAnomShield(ckpt_dir, base_dir, clip_dir, projector_state, lora)


QWEN_SPECIALS = ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|video_pad|>",
                 "<|image_pad|>"]
QWEN_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_qwen2_vl(dest: Path, seed: int = 0) -> Path:
    """A tiny Qwen2-VL (2 text layers, 1 vision block) with its processor, saved with save_pretrained."""
    import torch
    from transformers import (
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    torch.manual_seed(seed)
    tokenizer = build_tokenizer(QWEN_SPECIALS, bos=False)
    tokenizer.eos_token = "<|im_end|>"
    ids = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in QWEN_SPECIALS}
    width = 32
    config = Qwen2VLConfig(
        text_config={"vocab_size": len(tokenizer), "hidden_size": width, "intermediate_size": 2 * width,
                     "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                     "max_position_embeddings": 2048,
                     "rope_parameters": {"rope_type": "default", "mrope_section": [1, 1, 2], "rope_theta": 10000.0},
                     "eos_token_id": ids["<|im_end|>"], "pad_token_id": tokenizer.pad_token_id,
                     "bos_token_id": None},
        vision_config={"depth": 1, "embed_dim": width, "hidden_size": width, "num_heads": 2, "mlp_ratio": 2,
                       "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "in_chans": 3},
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )
    model = Qwen2VLForConditionalGeneration(config).eval()
    pixels = {"shortest_edge": 56 * 56, "longest_edge": 56 * 56}
    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(size=pixels),
        video_processor=Qwen2VLVideoProcessor(size=pixels),
        tokenizer=tokenizer,
        chat_template=QWEN_TEMPLATE,
    )
    model.save_pretrained(dest)
    processor.save_pretrained(dest)
    return dest


LLAVA_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'video' %}<video>\n"
    "{% elif part['type'] == 'image' %}<image>\n"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_llava_onevision(dest: Path, seed: int = 0) -> Path:
    """A tiny LLaVA-OneVision (SigLIP 28 px tower, 2-layer Qwen2 LM) with its processor."""
    import torch
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionImageProcessor,
        LlavaOnevisionProcessor,
        LlavaOnevisionVideoProcessor,
    )

    torch.manual_seed(seed)
    tokenizer = build_tokenizer(["<|im_start|>", "<|im_end|>", "<image>", "<video>"], bos=False)
    tokenizer.eos_token = "<|im_end|>"
    width, side = 32, 28
    config = LlavaOnevisionConfig(
        text_config={"model_type": "qwen2", "vocab_size": len(tokenizer), "hidden_size": width,
                     "intermediate_size": 2 * width, "num_hidden_layers": 2, "num_attention_heads": 4,
                     "num_key_value_heads": 2, "max_position_embeddings": 2048, "bos_token_id": None,
                     "eos_token_id": tokenizer.convert_tokens_to_ids("<|im_end|>"),
                     "pad_token_id": tokenizer.pad_token_id},
        vision_config={"model_type": "siglip_vision_model", "hidden_size": width, "intermediate_size": 2 * width,
                       "num_hidden_layers": 2, "num_attention_heads": 2, "image_size": side, "patch_size": 14},
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        video_token_index=tokenizer.convert_tokens_to_ids("<video>"),
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
        image_grid_pinpoints=[[side, side]],
    )
    model = LlavaOnevisionForConditionalGeneration(config).eval()
    size = {"height": side, "width": side}
    processor = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(size=size, image_grid_pinpoints=[[side, side]]),
        video_processor=LlavaOnevisionVideoProcessor(size=size),
        tokenizer=tokenizer,
        num_image_tokens=(side // 14) ** 2,
        vision_feature_select_strategy="full",
        chat_template=LLAVA_TEMPLATE,
    )
    model.save_pretrained(dest)
    processor.save_pretrained(dest)
    return dest


SMOLVLM_SPECIALS = ["<|im_start|>", "<end_of_utterance>", "<fake_token_around_image>", "<global-img>", "<image>",
                    "<video>"]


def build_smolvlm(dest: Path, seed: int = 0) -> Path:
    """A tiny SmolVLM (28 px frames, one image token per frame, 2-layer Llama LM) with its processor.

    SmolVLM feeds a video's frames to its image encoder; the processor needs the ``num2words`` package.
    """
    import torch
    from transformers import (
        SmolVLMConfig,
        SmolVLMForConditionalGeneration,
        SmolVLMImageProcessor,
        SmolVLMProcessor,
        SmolVLMVideoProcessor,
    )

    torch.manual_seed(seed)
    tokenizer = build_tokenizer(SMOLVLM_SPECIALS, bos=False)
    tokenizer.eos_token = "<end_of_utterance>"
    width, side = 32, 28
    config = SmolVLMConfig(
        text_config={"model_type": "llama", "vocab_size": len(tokenizer), "hidden_size": width,
                     "intermediate_size": 2 * width, "num_hidden_layers": 2, "num_attention_heads": 4,
                     "num_key_value_heads": 2, "max_position_embeddings": 2048, "bos_token_id": None,
                     "eos_token_id": tokenizer.convert_tokens_to_ids("<end_of_utterance>"),
                     "pad_token_id": tokenizer.pad_token_id},
        vision_config={"hidden_size": width, "intermediate_size": 2 * width, "num_hidden_layers": 2,
                       "num_attention_heads": 2, "image_size": side, "patch_size": 14},
        scale_factor=2,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
    )
    model = SmolVLMForConditionalGeneration(config).eval()
    size = {"longest_edge": side}
    processor = SmolVLMProcessor(
        image_processor=SmolVLMImageProcessor(size=size, max_image_size=size, do_image_splitting=False),
        video_processor=SmolVLMVideoProcessor(size=size, max_image_size=size),
        tokenizer=tokenizer,
        image_seq_len=((side // 14) // 2) ** 2,
    )
    model.save_pretrained(dest)
    processor.save_pretrained(dest)
    return dest
