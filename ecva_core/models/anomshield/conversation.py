"""The prompt template AnomShield was trained with (the ``mistral`` conversation, Llama-2 style).

``[INST] <<SYS>>\\n{system}\\n<</SYS>>\\n\\n<video>\\n{question} [/INST] {answer} </s>[INST] ...``:
the system text goes into the first user turn, the ``<video>`` placeholder precedes the first
question, and each finished assistant turn is closed by ``</s>``.
"""

from __future__ import annotations

from collections.abc import Sequence

from ecva_core.models.anomshield.config import VIDEO_TOKEN
from ecva_core.models.base import DEFAULT_SYSTEM_PROMPT, ChatMessage

END_OF_TURN = "</s>"


def build_prompt(messages: Sequence[ChatMessage], system: str = DEFAULT_SYSTEM_PROMPT) -> str:
    """Render the conversation, ending with ``[/INST]`` so the model writes the next answer."""
    turns = [m for m in messages if m.role != "system"]
    system_text = next((m.content for m in messages if m.role == "system"), system)
    if not turns or turns[0].role != "user":
        raise ValueError("an AnomShield conversation starts with a user question")
    parts: list[str] = []
    for index, message in enumerate(turns):
        text = message.content.replace(VIDEO_TOKEN, "").strip()
        if index == 0:
            text = f"<<SYS>>\n{system_text}\n<</SYS>>\n\n{VIDEO_TOKEN}\n{text}"
        if message.role == "user":
            parts.append(f"[INST] {text} [/INST]")
        else:
            parts.append(f" {text} {END_OF_TURN}")
    return "".join(parts)
