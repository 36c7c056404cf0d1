"""A six-video annotation file in the official cell formats, for submission and scoring tests."""

from __future__ import annotations

import csv
from pathlib import Path

HEADERS = [
    "video_id",
    "X1 (5-1)",
    "X2 - reason",
    "X2 -  result",
    "X3 - moment",
    "X3 - description",
    "X4 - key sentences",
]

ROWS = [
    ["1", "[5-1,5]", "The driver ran a red light at speed.", "The car hit a cyclist who fell down.",
     "[0002,0006]", "[A car speeds through a red light and hits a cyclist]",
     '["car runs red light", "cyclist hit", "cyclist falls", "car speeds"]'],
    ["2", "[3-2,4]", "A man slipped on the wet floor.", "He fell and hurt his arm.",
     "[0001,0004]", "[A man walks on a wet floor and slips]",
     '["wet floor", "man slips", "man falls", "arm hurt"]'],
    ["3", "[7-1,5]", "Sparks from welding lit the dry grass.", "The fire spread to the shed.",
     "[0003,0008]", "[Grass catches fire near a shed]",
     '["welding sparks", "dry grass burns", "fire spreads", "shed burns"]'],
    ["4", "[1-1,3]", "Two men argued over a parking spot.", "They started punching each other.",
     "[0000,0005]", "[Two men fight in a car park]",
     '["argument", "parking spot", "punching", "fight"]'],
    ["5", "[2-2,5]", "The thief waited until the owner looked away.", "He ran off with the bag.",
     "[0001,0003][0004,0006]", "[A man grabs a bag][He runs away]",
     '["bag grabbed", "owner distracted", "thief runs", "theft"]'],
    ["6", "[4-1,4]", "The dog was not on a leash.", "It bit a child on the leg.",
     "[0002,0005]", "[A dog runs at a child and bites]",
     '["dog off leash", "dog bites child", "child hurt", "dog runs"]'],
]

TASK_TEXT = {"Description": 5, "Cause": 2, "Result": 3}


def write_tiny_annotations(folder: Path) -> Path:
    """Write ``annotations.csv`` for six videos into ``folder`` and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "annotations.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADERS)
        writer.writerows(ROWS)
    return path


def answer_rows(tasks: tuple[str, ...] = ("Description", "Cause", "Result"), ids: tuple[int, ...] = (1, 2, 3, 4, 5, 6),
                quality: str = "good") -> list[dict[str, str]]:
    """Official-format rows: "good" answers copy the reference's words, "poor" ones do not."""
    by_id = {int(r[0]): r for r in ROWS}
    out = []
    for task in tasks:
        for vid in ids:
            reference = by_id[vid][TASK_TEXT[task]].strip("[]")
            text = reference if quality == "good" else "Something unusual happens in the video."
            out.append({"video_file": f"{vid:05d}.mp4", "prompt": f"{task}?", "output": text, "task_type": task,
                        "human_expert_answer": reference})
    return out


def load_tiny(folder: Path):
    """The tiny dataset through the real loader."""
    from ecva_core.dataset import load_dataset

    return load_dataset(write_tiny_annotations(folder))
