"""Run transformers ``generate`` in a worker thread and stream its text; stop it when the reader stops.

A chat UI's "stop" closes the generator we return; the worker then ends at its next step instead
of holding the GPU until ``max_new_tokens``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any


def stream_generate(model: Any, tokenizer: Any, kwargs: dict[str, Any]) -> Iterator[str]:
    """Yield decoded text chunks of ``model.generate(**kwargs)``; errors in the worker are re-raised here."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

    stop = threading.Event()

    class _Stopped(StoppingCriteria):
        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **_: Any) -> torch.Tensor:
            return torch.full((input_ids.shape[0],), stop.is_set(), dtype=torch.bool, device=input_ids.device)

    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    failure: list[BaseException] = []

    def work() -> None:
        try:
            with torch.inference_mode():
                model.generate(**kwargs, streamer=streamer, stopping_criteria=StoppingCriteriaList([_Stopped()]))
        except BaseException as exc:
            failure.append(exc)
            streamer.end()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        yield from streamer
    finally:
        stop.set()
        thread.join()
    if failure:
        raise failure[0]


def sampling_kwargs(temperature: float, top_p: float) -> dict[str, Any]:
    """``generate`` arguments for greedy decoding at temperature 0, nucleus sampling otherwise."""
    if temperature > 0:
        return {"do_sample": True, "temperature": temperature, "top_p": top_p}
    return {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
