"""The cache key of an answer: a hash of everything that decides it.

Model and weights fingerprint (config and adapter hashes for local folders; model name, base URL
and image encoding for servers), generation settings, the prompt text, the video file's content
hash, the exact frames and the variant. File hashes are remembered by (path, size, mtime), so a
re-run does not read a video or a checkpoint again unless it changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

KEY_VERSION = "infer-v1"
# Files at most this large are hashed whole; larger weight files by size plus their first and last MiB.
FULL_HASH_LIMIT = 256 * 1024 * 1024
_EDGE = 1 << 20
# Loading options that change the numbers a local model computes (placement options do not).
_NUMERIC_OPTIONS = ("dtype", "attn_implementation", "vision_tower", "model_base")


def stable_hash(payload: Any) -> str:
    """SHA-256 of a JSON value written canonically (sorted keys, no spaces)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class StatCache:
    """Facts about files remembered by (path, size, mtime): an append-only JSON-lines file.

    Several processes may append at once (each line is one small ``write`` on an append-mode
    file); a torn last line is ignored when read.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], Any] = {}
        if path.is_file():
            with path.open("r", encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    try:
                        entry = json.loads(line)
                        self._entries[(entry["id"], entry["kind"])] = entry["value"]
                    except (ValueError, KeyError, TypeError):
                        continue

    @staticmethod
    def file_id(path: Path) -> str:
        stat = path.stat()
        return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"

    def get(self, path: Path, kind: str) -> Any:
        return self._entries.get((self.file_id(path), kind))

    def put(self, path: Path, kind: str, value: Any) -> None:
        file_id = self.file_id(path)
        with self._lock:
            self._entries[(file_id, kind)] = value
            self.path.parent.mkdir(parents=True, exist_ok=True)
            line = json.dumps({"id": file_id, "kind": kind, "value": value}, ensure_ascii=False) + "\n"
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line)


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (whole up to ``FULL_HASH_LIMIT``; above it size + first/last MiB)."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    with path.open("rb") as handle:
        if size <= FULL_HASH_LIMIT:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        else:
            digest.update(f"size={size}".encode())
            digest.update(handle.read(_EDGE))
            handle.seek(size - _EDGE)
            digest.update(handle.read(_EDGE))
    return digest.hexdigest()


def cached_digest(path: Path, cache: StatCache | None) -> str:
    """``file_digest`` through the stat cache."""
    if cache is not None:
        known = cache.get(path, "sha256")
        if known:
            return str(known)
    value = file_digest(path)
    if cache is not None:
        cache.put(path, "sha256", value)
    return value


def folder_fingerprint(folder: Path, cache: StatCache | None) -> dict[str, str]:
    """``{file name: digest}`` for the files of a local model folder (its config, adapter and weights).

    Sub-folders (training checkpoints such as ``checkpoint-1000``) are not what a loader reads.
    """
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    return {path.name: cached_digest(path, cache) for path in files}


def _local_or_name(name: str, cache: StatCache | None) -> Any:
    path = Path(name).expanduser()
    return folder_fingerprint(path, cache) if path.is_dir() else name


def model_fingerprint(spec: str, model_options: dict[str, Any], cache: StatCache | None = None) -> dict[str, Any]:
    """What identifies the model's weights and how its input is encoded, without loading it."""
    from ecva_core.models import parse_spec

    parsed = parse_spec(spec)
    numeric = {k: model_options[k] for k in _NUMERIC_OPTIONS if model_options.get(k) is not None}
    if parsed.backend == "openai":
        from ecva_core.models.openai_backend import resolve_base_url

        encoding = {k: model_options.get(k) for k in ("use_video_url", "max_side", "jpeg_quality")}
        return {
            "backend": "openai",
            "model": parsed.model,
            "base_url": resolve_base_url(parsed.extra, model_options),
            "encoding": encoding,
        }
    fingerprint: dict[str, Any] = {
        "backend": parsed.backend,
        "weights": _local_or_name(parsed.model, cache),
        "options": numeric,
    }
    base = model_options.get("model_base") or parsed.extra
    if base:
        fingerprint["base"] = _local_or_name(base, cache)
    return fingerprint


def item_key(
    model: dict[str, Any],
    generation: dict[str, Any],
    prompt: str,
    video_sha256: str,
    frame_indices: tuple[int, ...],
    variant: str,
    method: dict[str, Any] | None = None,
) -> str:
    """The cache key of one answer (``method`` adds what a probe procedure depends on)."""
    return stable_hash(
        {
            "version": KEY_VERSION,
            "model": model,
            "generation": generation,
            "prompt": prompt,
            "video": video_sha256,
            "frames": list(frame_indices),
            "variant": variant,
            "method": method or {},
        }
    )


def default_cache_dir() -> Path:
    """Where result logs and the file-fact cache live unless ``--cache`` says otherwise."""
    from ecva_core.config import get_settings

    settings = get_settings()
    assert settings.cache_dir is not None
    return settings.cache_dir / "infer"


def process_tag() -> str:
    """A name unique to this process, for its own log file (one writer per file)."""
    import socket
    import time

    return f"{socket.gethostname()}-{os.getpid()}-{time.time_ns()}"
