"""Model weights from the Hugging Face hub or ModelScope: local cache first, a quick pre-flight, then a
resumable, verified snapshot download.

Every local backend resolves a hub id (``org/name``) to a folder here before transformers sees it, so
transformers never talks to a hub itself (its own retries took minutes to give up on an unreachable
one). The order: a folder that exists is used as is; a complete copy in the hub's local cache is used
with no network at all; with ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) set the Hugging Face hub is
never asked; otherwise the repository is listed with the short timeout of the dataset download
(``ECVA_HUB_TIMEOUT_S``), the files a model needs are fetched through the hub's own SDK (which
resumes partial files), and each is checked against the listing's size and SHA-256. Any failure is
a :class:`ModelLoadError` that names the model, the files it needs and how to use a local folder.
"""

from __future__ import annotations

import fnmatch
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ecva_core.config import MODEL_HUB_ENV, MODEL_HUBS
from ecva_core.dataset.download import RemoteFile, hub_endpoint, hub_timeout_s, list_remote_files, verify_files
from ecva_core.errors import DownloadError, ModelLoadError

HF_DEFAULT_ENDPOINT = "https://huggingface.co"
HUB_REVISION = {"huggingface": "main", "modelscope": "master"}
NEEDED_FILES = "config.json, the weights (*.safetensors, or pytorch_model*.bin) and the tokenizer/processor files"
# What a model repository may hold that loading never reads: other formats, the original
# (non-transformers) checkpoint, pictures, docs, remote code (never trusted here).
_NOT_NEEDED = (
    "*.md", ".gitattributes", "*.png", "*.jpg", "*.jpeg", "*.gif", "*.pdf", "*.pth", "*.pt", "*.gguf", "*.onnx",
    "*.onnx_data", "*.msgpack", "*.h5", "*.ot", "*.tflite", "*.mlmodel", "*.py", "consolidated*", "flax_model*",
    "tf_model*", "rust_model*", "original/*", "onnx/*", "openvino/*", "coreml/*",
)  # fmt: skip


@dataclass
class FetchedModel:
    """A model on local disk and how it got there: ``local`` (a folder given), ``cache``, ``download``."""

    repo_id: str
    path: Path
    source: str
    hub: str | None = None
    files: list[str] = field(default_factory=list)
    bytes: int = 0
    verified: int = 0
    role: str = "model"

    def as_dict(self) -> dict[str, object]:
        return {
            "role": self.role,
            "repo_id": self.repo_id,
            "path": str(self.path),
            "source": self.source,
            "hub": self.hub,
            "files": len(self.files),
            "bytes": self.bytes,
            "verified": self.verified,
        }


def resolve_hub(hub: str | None = None) -> str:
    """The hub for model ids: the explicit choice, else ``ECVA_MODEL_HUB``, else the Hugging Face hub."""
    chosen = (hub or os.environ.get(MODEL_HUB_ENV, "") or "huggingface").strip().lower()
    if chosen not in MODEL_HUBS:
        raise ModelLoadError(f"model hub {chosen!r} is not one of {', '.join(MODEL_HUBS)} (--hub or {MODEL_HUB_ENV})")
    return chosen


def is_hub_id(source: str) -> bool:
    """``org/name`` that is not a path on this machine."""
    parts = source.split("/")
    return (
        len(parts) == 2 and all(parts) and not source.startswith((".", "~")) and not Path(source).expanduser().exists()
    )


def hub_offline() -> bool:
    """Whether the user forbade hub access (``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE``), read at call time."""
    return any(
        os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def hf_endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or HF_DEFAULT_ENDPOINT).rstrip("/")


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, resolved as huggingface_hub does (``HF_HUB_CACHE``, ``HF_HOME``)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface"
    return Path(home).expanduser() / "hub"


def ms_cache_dir() -> Path:
    """The ModelScope cache (``MODELSCOPE_CACHE``, else ``~/.cache/modelscope/hub``)."""
    return Path(os.environ.get("MODELSCOPE_CACHE") or Path.home() / ".cache" / "modelscope" / "hub").expanduser()


def missing_files(folder: Path) -> list[str]:
    """What a model folder lacks to load: config.json, every shard its index names, some weights."""
    missing = [] if (folder / "config.json").is_file() else ["config.json"]
    indexes = sorted(folder.glob("*.index.json"))
    for index in indexes:
        try:
            shards = set(json.loads(index.read_text(encoding="utf-8")).get("weight_map", {}).values())
        except (OSError, ValueError, AttributeError):
            missing.append(index.name + " (unreadable)")
            continue
        missing += sorted(s for s in shards if not (folder / s).is_file())
    if not indexes and not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
        missing.append("the weights (*.safetensors or *.bin)")
    return missing


def select_needed(remote: list[RemoteFile]) -> list[RemoteFile]:
    """The files of a repository that loading reads (safetensors weights win over pytorch_model*.bin)."""

    def skipped(path: str) -> bool:
        name = path.rsplit("/", 1)[-1]
        return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(name, p) for p in _NOT_NEEDED)

    kept = [f for f in remote if not skipped(f.path)]
    if any(f.path.endswith(".safetensors") for f in kept):
        kept = [f for f in kept if not fnmatch.fnmatch(f.path.rsplit("/", 1)[-1], "pytorch_model*.bin")]
    return kept


def cached_model(repo_id: str) -> Path | None:
    """A complete copy of ``repo_id`` in either hub's local cache, found without any network."""
    for lookup in (_hf_cached, _ms_cached):
        try:
            folder = lookup(repo_id)
        except Exception:  # each SDK raises its own "not in the cache" type
            continue
        if folder is not None and folder.is_dir() and not missing_files(folder):
            return folder
    return None


def _hf_cached(repo_id: str) -> Path | None:
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id, cache_dir=hf_cache_dir(), local_files_only=True))


def _ms_cached(repo_id: str) -> Path | None:
    if not (ms_cache_dir() / "models").is_dir():
        return None  # nothing cached: skip the SDK import
    from modelscope.hub.snapshot_download import snapshot_download

    return Path(snapshot_download(repo_id, cache_dir=str(ms_cache_dir()), local_files_only=True))


def fetch_model(
    source: str, *, what: str, spec: str, local_hint: str, hub: str | None = None, to: Path | None = None
) -> FetchedModel:
    """A local folder holding ``source`` (a folder, or a hub id), for the part of ``spec`` named by ``what``.

    ``to``: download into this folder instead of the hub's cache (and skip the cache lookup).
    ``local_hint`` says how to point the spec at a folder instead (e.g. ``--model hf:DIR/ORG/NAME``, where
    ``ecva models download SPEC --to DIR`` puts it).
    """
    folder = Path(source).expanduser()
    if folder.exists():
        return FetchedModel(source, folder, "local")
    if not is_hub_id(source):
        raise ModelLoadError(f"{what}: {source!r} is neither a folder on this machine nor a hub id (org/name)")
    chosen = resolve_hub(hub)
    if to is None:
        cached = cached_model(source)
        if cached is not None:
            return FetchedModel(source, cached, "cache", chosen)
    if chosen == "huggingface" and hub_offline():
        raise ModelLoadError(
            _unavailable(what, spec, source, chosen, local_hint, "HF_HUB_OFFLINE is set, so the hub is not asked")
        )
    remote = _list(source, chosen, what, spec, local_hint)
    needed = select_needed(remote)
    if not needed:
        raise ModelLoadError(f"{what}: {source} on {_hub_label(chosen)} has no model files")
    path = _download(source, chosen, needed, to, what)
    try:
        verified = verify_files(path, needed)
    except DownloadError as exc:
        raise ModelLoadError(f"{what}: {exc}") from None
    return FetchedModel(
        source, path, "download", chosen, [f.path for f in needed], sum(f.size or 0 for f in needed), verified
    )


def _hub_label(hub: str) -> str:
    return f"ModelScope ({hub_endpoint()})" if hub == "modelscope" else f"the Hugging Face hub ({hf_endpoint()})"


def _unavailable(what: str, spec: str, repo_id: str, hub: str, local_hint: str, why: str) -> str:
    cache = ms_cache_dir() if hub == "modelscope" else hf_cache_dir()
    own_client = (
        f"modelscope download --model {repo_id} --local_dir DIR/{repo_id}"
        if hub == "modelscope"
        else f"huggingface-cli download {repo_id} --local-dir DIR/{repo_id}"
    )
    return (
        f"{what} needs {repo_id} from {_hub_label(hub)}: {NEEDED_FILES}. It is not in the local cache ({cache}) "
        f"and {why}. To use a local folder instead: on a machine that reaches the hub run "
        f"`ecva models download {spec} --to DIR` (or `{own_client}`), copy DIR here and use {local_hint}; "
        "or try the other hub "
        f"(--hub {'huggingface' if hub == 'modelscope' else 'modelscope'} or {MODEL_HUB_ENV})."
    )


def _list(repo_id: str, hub: str, what: str, spec: str, local_hint: str) -> list[RemoteFile]:
    """The pre-flight: the repository's files, or a ModelLoadError within ``ECVA_HUB_TIMEOUT_S``."""
    try:
        if hub == "modelscope":
            return list_remote_files(repo_id, HUB_REVISION[hub], repo_type="model", hint="")
        return _list_hf(repo_id)
    except DownloadError as exc:
        why = f"the hub cannot be used: {str(exc).strip()}"
        raise ModelLoadError(_unavailable(what, spec, repo_id, hub, local_hint, why)) from None


def _list_hf(repo_id: str) -> list[RemoteFile]:
    """``GET /api/models/{id}/tree/main?recursive=true`` (following its pages) as RemoteFile rows."""
    import httpx

    endpoint = hf_endpoint()
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    timeout = hub_timeout_s()
    url: str | None = f"{endpoint}/api/models/{repo_id}/tree/{HUB_REVISION['huggingface']}"
    params: dict[str, str] | None = {"recursive": "true"}
    files: list[RemoteFile] = []
    with httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)), headers=headers) as client:
        while url:
            try:
                response = client.get(url, params=params)
            except httpx.HTTPError as exc:
                raise DownloadError(f"cannot reach {endpoint} ({type(exc).__name__}: {exc})") from None
            if response.status_code in (401, 403):
                raise DownloadError(
                    f"HTTP {response.status_code}: the model is gated or private; accept its terms "
                    "on the hub and set HF_TOKEN"
                )
            if response.status_code == 404:
                raise DownloadError(f"HTTP 404: no model {repo_id!r} on {endpoint}")
            if response.status_code >= 400:
                raise DownloadError(f"HTTP {response.status_code} when listing {repo_id!r}")
            try:
                entries = response.json()
            except ValueError:
                raise DownloadError("the file listing is not JSON; is HF_ENDPOINT right?") from None
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, dict) and entry.get("type") == "file":
                    lfs = entry.get("lfs") or {}
                    files.append(RemoteFile(str(entry["path"]), entry.get("size"), lfs.get("oid") or None))
            url = response.links.get("next", {}).get("url")
            params = None
    return files


def _download(repo_id: str, hub: str, needed: list[RemoteFile], to: Path | None, what: str) -> Path:
    """Fetch ``needed`` through the hub's SDK (it resumes partial files); return the snapshot folder."""
    patterns = [f.path for f in needed]
    revision = HUB_REVISION[hub]
    if to is not None:
        to.mkdir(parents=True, exist_ok=True)
    try:
        if hub == "modelscope":
            from modelscope.hub.snapshot_download import snapshot_download as ms_snapshot

            path = ms_snapshot(
                repo_id,
                revision=revision,
                cache_dir=None if to else str(ms_cache_dir()),
                local_dir=str(to) if to else None,
                allow_patterns=patterns,
                max_workers=4,
                endpoint=hub_endpoint(),
            )
        else:
            from huggingface_hub import snapshot_download as hf_snapshot

            path = hf_snapshot(
                repo_id,
                revision=revision,
                cache_dir=None if to else hf_cache_dir(),
                local_dir=to,
                allow_patterns=patterns,
                endpoint=hf_endpoint(),
                etag_timeout=hub_timeout_s(),
                max_workers=4,
            )
    except Exception as exc:  # the SDKs raise many types; the user needs the message and a way on
        raise ModelLoadError(
            f"{what}: the download of {repo_id} from {_hub_label(hub)} stopped ({exc}); run the "
            "same command again: it resumes partial files and fetches again any that failed "
            "their check"
        ) from None
    return Path(path)
