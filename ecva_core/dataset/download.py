"""Download the ECVA release from ModelScope, resumable and verified, or take it from a local copy.

The transfer itself goes through the ``modelscope`` SDK (it honours ``MODELSCOPE_ENDPOINT``,
``MODELSCOPE_API_TOKEN`` and resumes ``*.incomplete`` files with HTTP Range). Before it starts we
list the repository ourselves with a short timeout, so an unreachable hub fails in seconds with a
message that says how to use a local copy instead of after minutes of SDK retries; after it ends
we check every file's size and SHA-256 against that listing.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ecva_core.errors import DownloadError

DEFAULT_ENDPOINT = "https://www.modelscope.cn"
HUB_TIMEOUT_ENV = "ECVA_HUB_TIMEOUT_S"
MANIFEST_NAME = ".ecva_download.json"
ANNOTATION_PATTERNS = ("*.csv", "*.xlsx", "*.json", "*.jsonl", "*.txt", "*.md")
VIDEO_PATTERNS = ("*.mp4", "*.avi", "*.mkv", "*.mov", "*.webm", "*.zip", "*.tar", "*.tar.gz")
INCLUDE_CHOICES = ("annotations", "videos", "all")
LOCAL_COPY_HINT = (
    "If you already have the dataset, use it directly with --data DIR or ECVA_DATA=DIR, "
    "or copy it into place with `ecva data download --from DIR`."
)


@dataclass(frozen=True)
class RemoteFile:
    """One file of the hub listing: the facts we verify the download against."""

    path: str
    size: int | None
    sha256: str | None


@dataclass
class DownloadResult:
    """What ended up on disk and how it was checked."""

    dest: Path
    source: str
    files: list[str] = field(default_factory=list)
    verified: int = 0
    bytes: int = 0


def hub_endpoint() -> str:
    """The endpoint the SDK will use; we list and pre-flight against the same one."""
    return (os.environ.get("MODELSCOPE_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def patterns_for(include: str) -> tuple[str, ...] | None:
    """Glob patterns for ``--include``; ``None`` means every file."""
    if include == "annotations":
        return ANNOTATION_PATTERNS
    if include == "videos":
        return VIDEO_PATTERNS
    if include == "all":
        return None
    raise DownloadError(f"--include must be one of {', '.join(INCLUDE_CHOICES)}, not {include!r}")


def _selected(path: str, patterns: tuple[str, ...] | None) -> bool:
    name = path.rsplit("/", 1)[-1]
    return patterns is None or any(fnmatch.fnmatch(name, p) for p in patterns)


def hub_timeout_s() -> float:
    """How long a hub pre-flight waits (``ECVA_HUB_TIMEOUT_S``), for the dataset and for model weights."""
    raw = os.environ.get(HUB_TIMEOUT_ENV, "").strip()
    try:
        return float(raw) if raw else 8.0
    except ValueError as exc:
        raise DownloadError(f"{HUB_TIMEOUT_ENV}={raw!r} is not a number of seconds") from exc


def list_remote_files(
    repo_id: str,
    revision: str = "master",
    page_size: int = 200,
    *,
    repo_type: str = "dataset",
    hint: str = LOCAL_COPY_HINT,
) -> list[RemoteFile]:
    """List a ModelScope repository (a dataset, all pages; or a model) with a short timeout; raise a
    clear error, ending with ``hint``, if the hub cannot be reached."""
    import httpx

    endpoint = hub_endpoint()
    dataset = repo_type == "dataset"
    route = f"datasets/{repo_id}/repo/tree" if dataset else f"models/{repo_id}/repo/files"
    url = f"{endpoint}/api/v1/{route}"
    token = os.environ.get("MODELSCOPE_API_TOKEN")
    cookies = {"m_session_id": token} if token else None
    timeout = hub_timeout_s()
    files: list[RemoteFile] = []
    with httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)), cookies=cookies) as client:
        page = 1
        while True:
            params: dict[str, object] = {"Revision": revision, "Recursive": "True"}
            if dataset:  # the model route has no pages (it returns every file at once)
                params.update(PageNumber=page, PageSize=page_size)
            try:
                response = client.get(url, params=params)
            except httpx.HTTPError as exc:
                raise DownloadError(
                    f"Cannot reach the ModelScope hub at {endpoint} ({type(exc).__name__}: {exc}). " + hint
                ) from None
            if response.status_code == 404:
                raise DownloadError(
                    f"{repo_type.capitalize()} {repo_id!r} (revision {revision}) not found on {endpoint}."
                )
            if response.status_code in (401, 403):
                raise DownloadError(
                    f"{endpoint} refused access to {repo_id!r} (HTTP {response.status_code}); "
                    f"set MODELSCOPE_API_TOKEN if the {repo_type} needs a login."
                )
            if response.status_code >= 400:
                raise DownloadError(
                    f"{endpoint} answered HTTP {response.status_code} when listing {repo_id!r}. " + hint
                )
            entries = _entries(response)
            files.extend(
                RemoteFile(
                    path=str(e.get("Path") or e.get("Name")),
                    size=int(e["Size"]) if e.get("Size") is not None else None,
                    sha256=(e.get("Sha256") or None),
                )
                for e in entries
                if (e.get("Type") or "blob") != "tree"
            )
            if not dataset or len(entries) < page_size:
                return files
            page += 1


def _entries(response: object) -> list[dict]:
    try:
        payload = response.json()  # type: ignore[attr-defined]
    except ValueError:
        raise DownloadError("The hub's file listing is not JSON; is MODELSCOPE_ENDPOINT right?") from None
    data = payload.get("Data", payload) if isinstance(payload, dict) else payload
    entries = data if isinstance(data, list) else (data or {}).get("Files", [])
    if not isinstance(entries, list):
        raise DownloadError("The hub's file listing has an unexpected shape.")
    return [e for e in entries if isinstance(e, dict)]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def verify_files(dest: Path, expected: Iterable[RemoteFile]) -> int:
    """Check size and SHA-256 of every expected file; raise naming the first file that fails."""
    count = 0
    for remote in expected:
        local = dest / remote.path
        if not local.is_file():
            raise DownloadError(f"{local} is missing after the download; run the command again to resume.")
        if remote.size is not None and local.stat().st_size != remote.size:
            raise DownloadError(
                f"{local} has {local.stat().st_size} bytes, the hub lists {remote.size}; "
                "delete it and run the command again."
            )
        if remote.sha256 and sha256_of(local) != remote.sha256.lower():
            raise DownloadError(f"{local} fails its SHA-256 check; delete it and run the command again.")
        count += 1
    return count


def download_dataset(
    dest: Path,
    dataset_id: str,
    include: str = "annotations",
    revision: str = "master",
    max_workers: int = 4,
) -> DownloadResult:
    """Download (or resume) the selected files of ``dataset_id`` into ``dest`` and verify them."""
    patterns = patterns_for(include)
    remote = [f for f in list_remote_files(dataset_id, revision) if _selected(f.path, patterns)]
    if not remote:
        raise DownloadError(f"{dataset_id!r} has no files matching --include {include}.")
    dest.mkdir(parents=True, exist_ok=True)

    from modelscope.hub.snapshot_download import dataset_snapshot_download

    try:
        dataset_snapshot_download(
            dataset_id,
            revision=revision,
            local_dir=str(dest),
            allow_patterns=list(patterns) if patterns else None,
            max_workers=max_workers,
            endpoint=hub_endpoint(),
        )
    except Exception as exc:  # the SDK raises many types; the user needs the message and a way out
        raise DownloadError(
            f"Download of {dataset_id!r} stopped: {exc}. Run the same command again to resume. "
            + LOCAL_COPY_HINT
        ) from None
    verified = verify_files(dest, remote)
    result = DownloadResult(
        dest=dest,
        source=f"{hub_endpoint()}/datasets/{dataset_id}@{revision}",
        files=[f.path for f in remote],
        verified=verified,
        bytes=sum(f.size or 0 for f in remote),
    )
    _write_manifest(result)
    return result


def copy_local(source: Path, dest: Path, include: str = "all") -> DownloadResult:
    """Take the dataset from a local folder (hard links where possible), for machines without the hub."""
    if not source.is_dir():
        raise DownloadError(f"--from {source}: not a folder.")
    patterns = patterns_for(include)
    files = sorted(p for p in source.rglob("*") if p.is_file() and _selected(p.name, patterns))
    if not files:
        raise DownloadError(f"--from {source}: no files matching --include {include}.")
    total = 0
    for path in files:
        target = dest / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not (target.exists() and target.stat().st_size == path.stat().st_size):
            try:
                os.link(path, target)
            except OSError:
                shutil.copy2(path, target)
        total += path.stat().st_size
    result = DownloadResult(
        dest=dest,
        source=str(source),
        files=[str(p.relative_to(source)) for p in files],
        verified=len(files),
        bytes=total,
    )
    _write_manifest(result)
    return result


def _write_manifest(result: DownloadResult) -> None:
    manifest = {"source": result.source, "files": result.files, "bytes": result.bytes}
    (result.dest / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
