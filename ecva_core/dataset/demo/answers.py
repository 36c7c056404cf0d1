"""Three demo submissions of deliberately different quality, written from the demo clips' ground truth.

They are in the official submission format (a JSON list of ``{video_file, prompt, output,
task_type, human_expert_answer}``) so that scoring, the leaderboard and the comparison views have
something meaningful to show on a first run:

- ``demo-strong``: paraphrases that contain most key phrases; abstains ("None") when key frames are
  removed; right category and a tight time window.
- ``demo-medium``: the right kind of event with few details; abstains on half of the probe questions.
- ``demo-weak``: generic or wrong answers, two ``ERROR`` rows, one video left out, always answers the
  probe questions (hallucinates).
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ecva_core.schema import KEYFRAMES_REMOVED_PROBE, Task

if TYPE_CHECKING:
    from ecva_core.dataset.demo.clips import DemoClip

MODELS = ("demo-strong", "demo-medium", "demo-weak")

# Roughly right but vague answers per major category (What, Why, How), for the medium model.
_VAGUE: dict[int, tuple[str, str, str]] = {
    1: ("Some people get into a fight on the street.", "The people had a disagreement.",
        "Someone may have been hurt."),
    2: ("An animal attacks a person.", "The animal was not controlled by its owner.",
        "The person was hurt by the animal."),
    3: ("There is an accident in the water.", "The water conditions were dangerous.",
        "People were in danger in the water."),
    4: ("A person damages property in the street.", "The person wanted to cause damage.",
        "Public property was damaged."),
    5: ("Two vehicles are involved in an accident.", "A driver was not careful.", "The vehicles were damaged."),
    6: ("A robbery happens in a shop.", "The robber wanted money.", "Money was taken from the shop."),
    7: ("Someone steals something.", "The thief wanted valuables.", "Property was stolen."),
    8: ("A pedestrian has an accident.", "The pedestrian was not careful.", "The pedestrian may be injured."),
    9: ("There is a fire.", "Something caught fire.", "Things were burned and there was smoke."),
    10: ("A vehicle breaks the traffic rules.", "The driver ignored the rules.",
         "Other road users were put in danger."),
    11: ("Something is burned in a public place.", "Someone lit a fire where it is forbidden.",
         "Smoke and a fire hazard were created."),
}

_GENERIC = (
    "The video shows an ordinary street scene. People walk by and cars pass; nothing unusual happens.",
    "A group of people are standing and talking. The camera is fixed and the lighting is good.",
    "The video shows a city at daytime with buildings and a clear blue sky.",
    "There is a man wearing a hat who is dancing in front of a crowd of people.",
)
_GENERIC_CAUSE = ("1. The weather was bad.\n2. The camera angle was poor.",
                  "1. It is not clear why this happened.", "1. The people were in a hurry.")
_GENERIC_RESULT = ("1. Nothing serious happened.", "1. Everyone went home.\n2. The street stayed calm.",
                   "1. The video ends.")
_ABSTAIN = ("None", "None", "I cannot tell: the frames shown do not contain the anomalous event.")


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in text.replace(";", ".").split(".") if s.strip()]


def _numbered(items: Sequence[str]) -> str:
    return "\n".join(f"{k}. {item[0].upper()}{item[1:]}." for k, item in enumerate(items, 1))


def _truth(clip: DemoClip, task: Task) -> str:
    return {
        Task.DESCRIPTION: clip.description,
        Task.CAUSE: clip.reason,
        Task.RESULT: clip.result,
        Task.CLASSIFICATION: clip.category_cell,
        Task.TIMESTAMP: clip.moment_cell,
    }[task]


def _strong(clip: DemoClip, task: Task, probe: bool, k: int) -> str:
    if probe:
        return _ABSTAIN[k % len(_ABSTAIN)]
    phrases = list(clip.key_phrases)
    if task is Task.DESCRIPTION:
        start, end = clip.window.start, clip.window.end
        return (f"Between second {start:g} and second {end:g}, {clip.gist}. In detail: "
                f"{'; '.join(phrases[:-1])}; and finally, {phrases[-1]}.")
    if task is Task.CAUSE:
        return _numbered([*_sentences(clip.reason)[:1], *phrases[:2]])
    if task is Task.RESULT:
        return _numbered([*_sentences(clip.result)[:2], *phrases[2:]])
    if task is Task.CLASSIFICATION:
        return f"[{clip.category[0]}-{clip.category[1]}]"
    return f"[{clip.window.start:g}, {clip.window.end:g}]"


def _medium(clip: DemoClip, task: Task, probe: bool, k: int) -> str:
    major = clip.category[0]
    what, why, how = _VAGUE[major]
    if probe:
        return "None" if k % 2 == 0 else what
    if task is Task.DESCRIPTION:
        return f"{what} It looks like {clip.key_phrases[0]}."
    if task is Task.CAUSE:
        return _numbered([why.rstrip("."), clip.key_phrases[1]])
    if task is Task.RESULT:
        return _numbered([how.rstrip(".")])
    if task is Task.CLASSIFICATION:
        return f"[{major}]"
    return f"[{clip.window.start + 1:g}, {clip.window.end + 2:g}]"


def _weak(clip: DemoClip, task: Task, probe: bool, k: int, others: Sequence[DemoClip]) -> str:
    wrong = others[(k + 5) % len(others)]
    if probe:
        return f"The video clearly shows that {wrong.gist}." if k % 2 else _GENERIC[k % len(_GENERIC)]
    if task is Task.DESCRIPTION:
        return _GENERIC[k % len(_GENERIC)] if k % 3 else f"In the video, {wrong.gist}."
    if task is Task.CAUSE:
        return _GENERIC_CAUSE[k % len(_GENERIC_CAUSE)]
    if task is Task.RESULT:
        return _GENERIC_RESULT[k % len(_GENERIC_RESULT)]
    if task is Task.CLASSIFICATION:
        return f"[{wrong.category[0]}]"
    return "[0, 2]"


def build_submission(model: str, clips: Sequence[DemoClip]) -> list[dict[str, Any]]:
    """The rows of one demo model's submission: scored, probe and auxiliary answers for every clip.

    Prompts are the benchmark's question texts; probe rows use its "answer None if you cannot tell"
    variant, as the official key-frame-removed runs did.
    """
    from ecva_core.dataset.questions import question_for

    rows: list[dict[str, Any]] = []
    skipped = clips[-1].video_id if model == "demo-weak" else None  # one video the weak model never ran
    failed = {(clips[0].video_id, Task.CAUSE), (clips[len(clips) // 2].video_id, Task.DESCRIPTION)}
    tasks = (Task.DESCRIPTION, Task.CAUSE, Task.RESULT, Task.CLASSIFICATION, Task.TIMESTAMP)
    for k, clip in enumerate(clips):
        if clip.video_id == skipped:
            continue
        for probe in (False, True):
            for task in tasks if not probe else tasks[:3]:
                if model == "demo-strong":
                    output = _strong(clip, task, probe, k)
                elif model == "demo-medium":
                    output = _medium(clip, task, probe, k)
                else:
                    output = _weak(clip, task, probe, k, clips)
                    if not probe and (clip.video_id, task) in failed:
                        output = "ERROR"
                row = {
                    "video_file": clip.video_file,
                    "prompt": question_for(task, probe=probe),
                    "output": output,
                    "task_type": task.value,
                    "human_expert_answer": _truth(clip, task),
                }
                if probe:
                    row["probe"] = KEYFRAMES_REMOVED_PROBE
                rows.append(row)
    if model != "demo-strong":  # real result files are unsorted: joins must go by id, not position
        random.Random(model).shuffle(rows)
    return rows


def write_submissions(folder: Path, clips: Sequence[DemoClip]) -> list[Path]:
    """Write ``demo-strong.json``, ``demo-medium.json`` and ``demo-weak.json`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for model in MODELS:
        path = folder / f"{model}.json"
        path.write_text(json.dumps(build_submission(model, clips), indent=1, ensure_ascii=False) + "\n",
                        encoding="utf-8")
        paths.append(path)
    return paths
