"""Video layer: probe clips, sample frames for models, previews and thumbnails for people."""

from ecva_core.video.info import VideoInfo, probe_video
from ecva_core.video.preview import browser_preview, thumbnail
from ecva_core.video.readers import BACKENDS
from ecva_core.video.sampling import Frames, frame_indices, keyframe_removed_frames, sample_frames

__all__ = [
    "BACKENDS",
    "Frames",
    "VideoInfo",
    "browser_preview",
    "frame_indices",
    "keyframe_removed_frames",
    "probe_video",
    "sample_frames",
    "thumbnail",
]
