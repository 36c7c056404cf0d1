"""The ``ranked`` hallucination probe: the seed's key-frame procedure for data without moments.

32 uniform frames in 4 chunks of 8; the model captions each chunk; the judge endpoint ranks the
captions by relevance to the Description question; the top 2 chunks are the key frames, and the
probe question is answered from the other chunks. The ranking must be a permutation of 1..4,
parsed strictly: anything else is a recorded failure, never a guess.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ecva_core.dataset.questions import QUESTIONS
from ecva_core.schema import Task

if TYPE_CHECKING:
    from ecva_core.config import Settings
    from ecva_core.video import VideoInfo

RANKED_METHOD = "ranked"
CANDIDATE_FRAMES = 32
CHUNKS = 4
KEY_CHUNKS = 2
CAPTION_PROMPT = "Please describe the video briefly."
RANKING_PROMPT_VERSION = "rank-v1"
RANKING_SYSTEM = (
    "You rank short captions of consecutive chunks of one video by how relevant each chunk is to a "
    "question about the video's anomalous event. Reply with a JSON object "
    '{"ranking": [chunk numbers, most relevant first]} that lists every chunk number exactly once.'
)


class RankingError(ValueError):
    """The judge's reply is not a ranking of the chunks."""


def candidate_frames(info: VideoInfo) -> tuple[int, ...]:
    """The 32 uniform frames the captions and the probe are drawn from."""
    from ecva_core.video import frame_indices

    return tuple(frame_indices(info, num_frames=CANDIDATE_FRAMES))


def ranked_method_spec(judge_model: str) -> dict[str, Any]:
    """What a ranked probe answer depends on besides the model: prompts, chunking and the ranker."""
    return {
        "caption": CAPTION_PROMPT,
        "ranking": RANKING_PROMPT_VERSION,
        "chunks": CHUNKS,
        "key_chunks": KEY_CHUNKS,
        "judge_model": judge_model,
    }


def chunk_positions() -> list[list[int]]:
    """Positions (into the 32 candidates) of each chunk: 8 consecutive frames each."""
    size = CANDIDATE_FRAMES // CHUNKS
    return [list(range(c * size, (c + 1) * size)) for c in range(CHUNKS)]


def ranking_messages(captions: list[str]) -> list[dict[str, str]]:
    """The judge request: the Description question and the numbered captions."""
    lines = [f"Question: {QUESTIONS[Task.DESCRIPTION]}", ""]
    lines += [f"Chunk {number}: {caption.strip()}" for number, caption in enumerate(captions, start=1)]
    return [{"role": "system", "content": RANKING_SYSTEM}, {"role": "user", "content": "\n".join(lines)}]


def parse_ranking(text: str | None) -> list[int]:
    """``{"ranking": [1, 4, 3, 2]}`` or ``[1, 4, 3, 2]`` -> ``[1, 4, 3, 2]``; anything else raises."""
    excerpt = " ".join(str(text or "").split())[:120]
    try:
        value = json.loads(text or "")
    except ValueError:
        raise RankingError(f"the judge's ranking is not JSON: {excerpt!r}") from None
    if isinstance(value, dict):
        value = value.get("ranking")
    if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
        raise RankingError(f"the judge's reply holds no list of chunk numbers: {excerpt!r}")
    if sorted(value) != list(range(1, CHUNKS + 1)):
        raise RankingError(f"the judge's ranking {value} is not an order of chunks 1-{CHUNKS}: {excerpt!r}")
    return value


def rank_all(captions: dict[str, list[str]], settings: Settings) -> dict[str, list[int] | str]:
    """Rank each video's captions with the judge endpoint (concurrently); a failure is its reason."""
    import asyncio

    from ecva_core.metrics.judge.client import JudgeCallError, JudgeClient

    async def run() -> dict[str, list[int] | str]:
        client = JudgeClient(settings)

        async def one(video: str, texts: list[str]) -> tuple[str, list[int] | str]:
            try:
                completion = await client.complete(ranking_messages(texts))
                return video, parse_ranking(completion.text)
            except JudgeCallError as exc:
                return video, f"ranking the chunks failed: {exc.reason}"
            except RankingError as exc:
                return video, str(exc)

        try:
            pairs = await asyncio.gather(*(one(v, t) for v, t in captions.items()))
        finally:
            await client.aclose()
        return dict(pairs)

    return asyncio.run(run()) if captions else {}


def kept_positions(ranking: list[int]) -> tuple[list[int], list[int]]:
    """(positions kept for the probe, positions removed as key frames), each in time order."""
    chunks = chunk_positions()
    removed_chunks = set(ranking[:KEY_CHUNKS])
    kept = [p for number, chunk in enumerate(chunks, start=1) if number not in removed_chunks for p in chunk]
    removed = [p for number, chunk in enumerate(chunks, start=1) if number in removed_chunks for p in chunk]
    return kept, removed
