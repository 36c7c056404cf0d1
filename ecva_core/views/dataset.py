"""Dataset summaries: categories, durations, moments, annotation flags and one video's annotation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ecva_core.schema import SCORED_TASKS
from ecva_core.views.common import video_categories

if TYPE_CHECKING:
    import pandas as pd

    from ecva_core.dataset import Dataset


def moments_frame(dataset: Dataset, video_id: str) -> pd.DataFrame:
    """The annotated moments of one video with their descriptions, for a timeline chart."""
    import pandas as pd

    ann = dataset.records[video_id].annotation
    rows = []
    for i, seg in enumerate(ann.moments):
        desc = ann.descriptions[i] if i < len(ann.descriptions) else ""
        rows.append({"moment": i + 1, "start": seg.start, "end": seg.end, "description": desc})
    return pd.DataFrame(rows, columns=["moment", "start", "end", "description"])


def video_duration(dataset: Dataset, video_id: str) -> float | None:
    """A clip's length: from the annotation when known, else probed from its file (None if absent)."""
    from ecva_core.errors import VideoError
    from ecva_core.video import probe_video

    record = dataset.records[video_id]
    if record.duration:
        return float(record.duration)
    path = dataset.video_path(video_id)
    if path is None:
        return None
    try:
        return float(probe_video(path).duration)
    except VideoError:
        return None


def first_moment_start(dataset: Dataset, video_id: str) -> float:
    """Where the clip preview starts: the first annotated moment, else the beginning."""
    moments = dataset.records[video_id].annotation.moments
    return float(moments[0].start) if moments else 0.0


def expert_answers(dataset: Dataset, video_id: str) -> dict[str, str]:
    """The expert What / Why / How answers of one video, keyed by task name."""
    out = {}
    for task in SCORED_TASKS:
        item = dataset.qa_item(video_id, task)
        out[task.value] = item.answer if item else ""
    return out


def category_counts(dataset: Dataset) -> pd.DataFrame:
    """Videos per major and sub-category, most frequent first."""
    cats = video_categories(dataset)
    counts = cats.groupby(["major", "major_name", "code", "category"], as_index=False).size()
    return counts.rename(columns={"size": "videos"}).sort_values(["major", "code"]).reset_index(drop=True)


def durations_frame(dataset: Dataset, probe_limit: int = 300) -> pd.DataFrame:
    """Per video: duration, number of moments and total moment length.

    Durations the annotation does not give are probed from the video files, for at most
    ``probe_limit`` clips (probing thousands of files would stall a page); the rest stay unknown.
    """
    import pandas as pd

    from ecva_core.errors import VideoError
    from ecva_core.video import probe_video

    rows = []
    probed = 0
    for vid, record in dataset.records.items():
        duration = record.duration
        if duration is None and probed < probe_limit:
            path = dataset.video_path(vid)
            if path is not None:
                probed += 1
                try:
                    duration = probe_video(path).duration
                except VideoError:
                    duration = None
        moments = record.annotation.moments
        rows.append(
            {
                "video_id": vid,
                "duration_s": duration,
                "moments": len(moments),
                "moment_total_s": sum(m.duration for m in moments),
            }
        )
    return pd.DataFrame(rows, columns=["video_id", "duration_s", "moments", "moment_total_s"])


def moment_lengths(dataset: Dataset) -> pd.DataFrame:
    """One row per annotated moment with its length in seconds."""
    import pandas as pd

    rows = [
        {"video_id": vid, "length_s": seg.duration}
        for vid, record in dataset.records.items()
        for seg in record.annotation.moments
    ]
    return pd.DataFrame(rows, columns=["video_id", "length_s"])


def flags_frame(dataset: Dataset) -> pd.DataFrame:
    """The annotation quality flags with the row of the annotation file behind each."""
    import pandas as pd

    rows = [{"video_id": f.video_id, "row": f.row, "field": f.field, "problem": f.problem} for f in dataset.flags]
    return pd.DataFrame(rows, columns=["video_id", "row", "field", "problem"])
