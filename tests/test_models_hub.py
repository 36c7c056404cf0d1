"""Model weights from a hub: local cache first, a quick pre-flight, ModelScope downloads (resumed and
verified) through the real SDK against the loopback ModelScope server, and ``ecva models download``.

Nothing here reaches the internet: the Hugging Face hub is a refused port or HF_HUB_OFFLINE, and
ModelScope is tests/modelscope_stub.py.
"""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from ecva_core.cli.main import cli
from ecva_core.dataset.download import RemoteFile
from ecva_core.errors import ModelLoadError
from ecva_core.models import load_model
from ecva_core.models.hub import fetch_model, missing_files, select_needed
from tests.hf_stub import HFHubStub
from tests.modelscope_stub import ModelScopeStub
from tests.tiny_models import build_anomshield, build_smolvlm
from tests.videogen import make_clip

pytest.importorskip("torch")

SMOL_ID = "HuggingFaceTB/SmolVLM2-500M-Video-Instruct"


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _refused_endpoint() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture(scope="module")
def smol(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_smolvlm(tmp_path_factory.mktemp("smol") / "model")


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clips") / "00003.mp4"
    make_clip(path, seconds=1.0, fps=16, width=64, height=48)
    return path


@pytest.fixture
def hubs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Empty caches for both hubs under tmp_path; the Hugging Face hub refuses connections."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "ms-cache"))
    monkeypatch.setenv("HF_ENDPOINT", _refused_endpoint())
    monkeypatch.delenv("ECVA_MODEL_HUB", raising=False)
    return tmp_path


def _online(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)


def _put_in_hf_cache(cache: Path, repo_id: str, folder: Path) -> Path:
    """The Hugging Face hub cache layout: blobs, a snapshot of links to them, refs/main."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    for name, data in _files(folder).items():
        blob = repo / "blobs" / f"blob{abs(hash(name))}"
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(blob)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit, encoding="utf-8")
    return snapshot


def test_unreachable_hub_fails_fast_naming_model_files_and_a_local_folder(hubs, monkeypatch, clip_path) -> None:
    _online(monkeypatch)
    started = time.perf_counter()
    result = CliRunner().invoke(
        cli, ["chat", "--model", "hf:default", "--video", str(clip_path), "--question", "What happened?"]
    )
    elapsed = time.perf_counter() - started
    print(f"unreachable Hugging Face hub: ecva chat failed after {elapsed:.2f} s")
    assert result.exit_code == 1 and "Traceback" not in result.output
    message = " ".join(result.output.split())
    assert SMOL_ID in message and "config.json" in message and "*.safetensors" in message
    assert "hf:DIR" in message and "ecva models download hf:default --to DIR" in message
    assert "cannot reach" in message


def test_hf_hub_offline_fails_at_once_without_asking(hubs) -> None:
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE is set") as info:
        load_model("hf:some-org/not-downloaded-video-llm", device="cpu")
    assert "some-org/not-downloaded-video-llm" in str(info.value)


def test_model_in_the_hf_cache_loads_offline_and_without_the_hub(hubs, monkeypatch, smol, clip_path) -> None:
    _put_in_hf_cache(hubs / "hf-cache", "tiny-org/smol", smol)
    model = load_model("hf:tiny-org/smol", device="cpu")  # HF_HUB_OFFLINE=1 (conftest): cache only
    assert "".join(model.chat(clip_path, [{"role": "user", "content": "hi"}], max_new_tokens=2)) is not None
    _online(monkeypatch)  # the hub refuses connections: a cached model never asks it
    fetched = fetch_model("tiny-org/smol", what="hf:tiny-org/smol", spec="hf:tiny-org/smol", local_hint="hf:DIR")
    assert fetched.source == "cache" and not missing_files(fetched.path)


def test_an_incomplete_cached_copy_is_not_used(hubs, smol) -> None:
    snapshot = _put_in_hf_cache(hubs / "hf-cache", "tiny-org/smol", smol)
    (snapshot / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE"):
        fetch_model("tiny-org/smol", what="hf:tiny-org/smol", spec="hf:tiny-org/smol", local_hint="hf:DIR")


def test_only_the_files_loading_reads_are_fetched() -> None:
    listing = [
        RemoteFile(p, 1, None)
        for p in (
            "config.json",
            "model-00001-of-00002.safetensors",
            "model.safetensors.index.json",
            "pytorch_model.bin",
            "consolidated.safetensors",
            "original/params.json",
            "README.md",
            "tokenizer.model",
            "chat_template.jinja",
            "non_lora_trainables.bin",
            "modeling_custom.py",
        )
    ]
    assert [f.path for f in select_needed(listing)] == [
        "config.json",
        "model-00001-of-00002.safetensors",
        "model.safetensors.index.json",
        "tokenizer.model",
        "chat_template.jinja",
        "non_lora_trainables.bin",
    ]


def test_modelscope_download_resumes_a_cut_transfer_verifies_and_loads(hubs, monkeypatch, smol, clip_path) -> None:
    files = _files(smol)
    with ModelScopeStub({}, models={"tiny-org/smol": files}, cut_after={"model.safetensors": 20_000}) as stub:
        monkeypatch.setenv("MODELSCOPE_ENDPOINT", stub.endpoint)
        result = CliRunner().invoke(
            cli,
            ["models", "download", "hf:tiny-org/smol", "--hub", "modelscope", "--to", str(hubs / "models"), "--json"],
        )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    folder = hubs / "models" / "tiny-org" / "smol"
    assert payload["offline_spec"] == f"hf:{folder}"
    (part,) = payload["parts"]
    assert part["source"] == "download" and part["verified"] == len(files) == part["files"]
    assert _files(folder) == files
    assert stub.ranged("model.safetensors"), "the SDK should resume the cut transfer with a Range request"
    model = load_model(payload["offline_spec"], device="cpu")  # HF_HUB_OFFLINE=1: the folder alone
    assert model.describe()


def test_modelscope_checksum_mismatch_is_a_load_error_naming_the_file(hubs, monkeypatch, smol) -> None:
    with ModelScopeStub({}, models={"tiny-org/smol": _files(smol)}, lie_sha256={"config.json"}) as stub:
        monkeypatch.setenv("MODELSCOPE_ENDPOINT", stub.endpoint)
        result = CliRunner().invoke(
            cli, ["models", "download", "hf:tiny-org/smol", "--hub", "modelscope", "--to", str(hubs / "models")]
        )
    assert result.exit_code == 1 and "Traceback" not in result.output
    message = " ".join(result.output.split())
    assert re.search(r"config\.json(: expected| fails its SHA-256 check)", message), message  # the SDK or we
    assert "Hash mismatch" in message or "SHA-256" in message
    assert not (hubs / "models" / "tiny-org" / "smol" / "config.json").exists()


def test_model_hub_env_and_unreachable_modelscope(hubs, monkeypatch) -> None:
    _online(monkeypatch)
    monkeypatch.setenv("ECVA_MODEL_HUB", "modelscope")
    monkeypatch.setenv("MODELSCOPE_ENDPOINT", _refused_endpoint())
    with pytest.raises(ModelLoadError, match="Cannot reach the ModelScope hub") as info:
        load_model("hf:tiny-org/absent", device="cpu")
    assert "--hub huggingface" in str(info.value)
    monkeypatch.setenv("ECVA_MODEL_HUB", "civitai")
    with pytest.raises(ModelLoadError, match="huggingface, modelscope"):
        load_model("hf:tiny-org/absent", device="cpu")


@pytest.fixture(scope="module")
def hub_named_anomshield(tmp_path_factory: pytest.TempPathFactory):
    """A LoRA checkpoint whose config names its base LM and CLIP tower by hub id, as the official one does."""
    tiny = build_anomshield(tmp_path_factory.mktemp("anomshield-hub"), lora=True)
    names = {str(tiny.base): "tiny-org/mistral", str(tiny.clip): "tiny-org/clip"}
    for name in ("config.json", "adapter_config.json"):
        path = tiny.checkpoint / name
        data = json.loads(path.read_text(encoding="utf-8"))
        for key, value in data.items():
            if isinstance(value, str) and value in names:
                data[key] = names[value]
        path.write_text(json.dumps(data), encoding="utf-8")
    return tiny


def test_anomshield_base_lm_unreachable_fails_fast_naming_it(hubs, monkeypatch, hub_named_anomshield) -> None:
    _online(monkeypatch)
    started = time.perf_counter()
    with pytest.raises(ModelLoadError) as info:
        load_model(f"anomshield:{hub_named_anomshield.checkpoint}", device="cpu")
    print(f"unreachable hub, anomshield base LM: failed after {time.perf_counter() - started:.2f} s")
    message = str(info.value)
    assert "base language model" in message and "tiny-org/mistral" in message
    assert f"anomshield:{hub_named_anomshield.checkpoint}@DIR" in message


def test_models_download_anomshield_fetches_base_and_tower_then_loads_offline(
    hubs, monkeypatch, hub_named_anomshield, clip_path
) -> None:
    tiny = hub_named_anomshield
    models = {"tiny-org/mistral": _files(tiny.base), "tiny-org/clip": _files(tiny.clip)}
    spec = f"anomshield:{tiny.checkpoint}"
    with ModelScopeStub({}, models=models) as stub:
        monkeypatch.setenv("MODELSCOPE_ENDPOINT", stub.endpoint)
        result = CliRunner().invoke(cli, ["models", "download", spec, "--hub", "modelscope", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    roles = {p["role"]: p for p in payload["parts"]}
    assert roles["checkpoint"]["source"] == "local"
    assert roles["base language model"]["source"] == roles["vision tower"]["source"] == "download"
    assert payload["offline_spec"] == f"{spec}@{roles['base language model']['path']}"
    # the stub is gone and HF_HUB_OFFLINE=1: both parts come from the ModelScope cache, the spec unchanged
    model = load_model(spec, device="cpu")
    answer = "".join(model.chat(clip_path, [{"role": "user", "content": "What happened?"}], max_new_tokens=3))
    assert isinstance(answer, str)
    human = CliRunner().invoke(cli, ["models", "download", spec])
    assert human.exit_code == 0 and "(cache)" in human.output and f"--model {spec}@" in human.output


def test_openai_specs_have_nothing_to_download() -> None:
    result = CliRunner().invoke(cli, ["models", "download", "openai:gpt-4o-mini"])
    assert result.exit_code == 1 and "no weights to download" in result.output


def test_chat_app_shows_the_hub_message_and_stays_usable(hubs, monkeypatch, demo_dataset_dir) -> None:
    from ecva_apps.chat_app import ChatApp
    from ecva_core.dataset import load_dataset

    _online(monkeypatch)
    dataset = load_dataset(demo_dataset_dir)
    app = ChatApp(dataset, "hf:default")
    video_id = next(iter(dataset.records))
    clip = {"video_id": video_id, "path": str(dataset.video_path(video_id)), "annotation": ""}
    updates = list(app.respond([{"role": "user", "content": "What happened?"}], clip, "hf:default"))
    history, status = updates[-1]
    assert SMOL_ID in status and "hf:DIR" in status
    assert SMOL_ID in history[-1]["content"]
    picked = app.pick(video_id, False)
    assert picked[4] == f"Clip {video_id} ready."  # the app goes on working


@pytest.fixture
def hf_online(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let huggingface_hub talk to the loopback hub (it read HF_HUB_OFFLINE=1 once, at import)."""
    import huggingface_hub.constants

    _online(monkeypatch)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


def test_hf_download_resumes_a_cut_transfer_verifies_and_loads_offline(
    hubs, monkeypatch, hf_online, smol, clip_path
) -> None:
    """huggingface_hub resumes a cut transfer within a run from its last whole 10 MiB chunk (a killed
    run's partial file is not reused since huggingface_hub 1.x), so one file here is larger than that."""
    files = {**_files(smol), "padding.safetensors": bytes(range(256)) * 48_000}  # 12.3 MB, never loaded
    with HFHubStub({"tiny-org/smol": files}, cut_after={"padding.safetensors": 11_000_000}) as stub:
        monkeypatch.setenv("HF_ENDPOINT", stub.endpoint)
        result = CliRunner().invoke(cli, ["models", "download", "hf:tiny-org/smol", "--json"])
    assert result.exit_code == 0, result.output
    (part,) = json.loads(result.stdout)["parts"]
    assert part["source"] == "download" and part["verified"] == len(files)
    assert stub.ranged("padding.safetensors"), "the cut transfer should be resumed with a Range request"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", _refused_endpoint())
    fetched = fetch_model("tiny-org/smol", what="hf:tiny-org/smol", spec="hf:tiny-org/smol", local_hint="hf:DIR")
    assert fetched.source == "cache" and _files(fetched.path) == files
    assert load_model("hf:tiny-org/smol", device="cpu").describe()


def test_hf_checksum_mismatch_is_a_load_error_naming_the_file(hubs, monkeypatch, hf_online, smol) -> None:
    with HFHubStub({"tiny-org/smol": _files(smol)}, lie_sha256={"model.safetensors"}) as stub:
        monkeypatch.setenv("HF_ENDPOINT", stub.endpoint)
        with pytest.raises(ModelLoadError, match=r"model\.safetensors fails its SHA-256 check"):
            load_model("hf:tiny-org/smol", device="cpu")


def test_silent_hf_hub_gives_up_on_the_pre_flight_timeout(hubs, monkeypatch) -> None:
    """A server that accepts connections but never answers: the pre-flight gives up on its timeout."""
    _online(monkeypatch)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{listener.getsockname()[1]}")
        monkeypatch.setenv("ECVA_HUB_TIMEOUT_S", "1")
        with pytest.raises(ModelLoadError, match="cannot reach") as info:
            load_model("hf:default", device="cpu")
    assert SMOL_ID in str(info.value)


def test_hub_option_reaches_the_loader_from_ecva_chat_and_serve_chat(hubs, monkeypatch, clip_path) -> None:
    import ecva_apps.chat_app as chat_app

    monkeypatch.setenv("MODELSCOPE_ENDPOINT", _refused_endpoint())
    result = CliRunner().invoke(
        cli,
        [
            "chat",
            "--model",
            "hf:tiny-org/absent",
            "--hub",
            "modelscope",
            "--video",
            str(clip_path),
            "--question",
            "What happened?",
        ],
    )
    assert result.exit_code == 1 and "Cannot reach the ModelScope hub" in result.output
    launched: list[dict] = []
    monkeypatch.setattr(chat_app, "launch", lambda *args, **kwargs: launched.append(kwargs))
    served = CliRunner().invoke(cli, ["serve", "chat", "--model", "hf:x", "--hub", "modelscope", "--port", "0"])
    assert served.exit_code == 0, served.output
    assert launched[0]["model_options"] == {"hub": "modelscope"}


def test_modelscope_resumes_the_partial_file_of_a_killed_run(hubs, monkeypatch, smol) -> None:
    files = _files(smol)
    folder = hubs / "models" / "tiny-org" / "smol"
    folder.mkdir(parents=True)
    (folder / "model.safetensors.incomplete").write_bytes(files["model.safetensors"][:30_000])
    with ModelScopeStub({}, models={"tiny-org/smol": files}) as stub:
        monkeypatch.setenv("MODELSCOPE_ENDPOINT", stub.endpoint)
        result = CliRunner().invoke(
            cli, ["models", "download", "hf:tiny-org/smol", "--hub", "modelscope", "--to", str(hubs / "models")]
        )
    assert result.exit_code == 0, result.output
    assert _files(folder) == files
    assert "bytes=30000-" in stub.ranged("model.safetensors")


def test_infer_hub_option_reaches_the_loader(hubs, monkeypatch, demo_dataset_dir, tmp_path) -> None:
    """``ecva infer --hub modelscope`` looks the model up on ModelScope and stops at once when it is unreachable."""
    from ecva_core.cli.main import cli

    _online(monkeypatch)
    monkeypatch.setenv("MODELSCOPE_ENDPOINT", _refused_endpoint())
    args = ["infer", "--model", "hf:tiny-org/absent", "--out", str(tmp_path / "a.json"), "--limit", "1",
            "--data", str(demo_dataset_dir), "--cache", str(tmp_path / "cache"), "--hub", "modelscope"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1 and "Cannot reach the ModelScope hub" in result.output, result.output
    assert "Traceback" not in result.output
