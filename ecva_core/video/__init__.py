"""Video layer: probe clips, sample frames for models, previews and thumbnails for people."""

from ecva_core.video.info import VideoInfo, probe_video
from ecva_core.video.preview import browser_preview, thumbnail
from ecva_core.video.readers import BACKENDS
from ecva_core.video.sampling import Frames, frame_indices, keyframe_removed_frames, sample_frames
from ecva_core.video.uploads import check_video_upload, max_video_upload_mb

__all__ = [
    "BACKENDS",
    "Frames",
    "VideoInfo",
    "browser_preview",
    "check_video_upload",
    "frame_indices",
    "keyframe_removed_frames",
    "max_video_upload_mb",
    "probe_video",
    "sample_frames",
    "thumbnail",
]
