"""Generate small test clips with PyAV whose frames say which frame they are.

Each frame carries its index as a row of black/white blocks (bit i = block i), so a test can
check that a reader returned *the* frame it was asked for, not just a frame. Other test files
may import :func:`make_clip` and :func:`frame_code`.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

CODE_BITS = 12


def _frame(index: int, width: int, height: int, rng: np.random.Generator | None) -> np.ndarray:
    """An RGB frame: moving gradient background, index code in the top rows."""
    x = np.arange(width, dtype=np.int32)[None, :]
    y = np.arange(height, dtype=np.int32)[:, None]
    img = np.empty((height, width, 3), dtype=np.uint8)
    img[..., 0] = ((x * 2 + index * 3) % 256).astype(np.uint8)
    img[..., 1] = ((y * 3 + index * 5) % 256).astype(np.uint8)
    img[..., 2] = (((x + y) + index * 7) % 256).astype(np.uint8)
    if rng is not None:
        img ^= rng.integers(0, 16, size=img.shape, dtype=np.uint8)
    block = max(4, width // CODE_BITS)
    band = max(8, height // 6)
    for bit in range(CODE_BITS):
        if bit * block >= width:
            break
        img[:band, bit * block : (bit + 1) * block] = 255 if (index >> bit) & 1 else 0
    return img


def frame_code(image: np.ndarray) -> int:
    """Read back the index written by :func:`_frame` from a decoded RGB frame."""
    height, width = image.shape[:2]
    block = max(4, width // CODE_BITS)
    band = max(8, height // 6)
    value = 0
    for bit in range(CODE_BITS):
        if bit * block >= width:
            break
        cell = image[2 : band - 2, bit * block + 1 : (bit + 1) * block - 1]
        if cell.mean() > 127:
            value |= 1 << bit
    return value


def make_clip(
    path: Path,
    seconds: float = 2.0,
    fps: float = 25,
    width: int = 64,
    height: int = 48,
    codec: str = "libx264",
    gop: int | None = 12,
    bframes: int | None = None,
    preset: str = "ultrafast",
    crf: int = 18,
    noise: bool = False,
) -> Path:
    """Write a clip of ``round(seconds*fps)`` coded frames; ``gop=None`` keeps the encoder default."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)
    count = round(seconds * fps)
    rng = np.random.default_rng(0) if noise else None
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            options = {"preset": preset, "crf": str(crf)}
            if bframes is not None:
                options["bf"] = str(bframes)
            stream.options = options
        if gop is not None:
            stream.codec_context.gop_size = gop
        for index in range(count):
            frame = av.VideoFrame.from_ndarray(_frame(index, width, height, rng), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
