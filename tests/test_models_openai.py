"""openai backend and ``ecva chat`` against a loopback streaming server that inspects the frames."""

from __future__ import annotations

import base64
import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from ecva_core.cli.main import cli
from ecva_core.errors import ModelLoadError
from ecva_core.models import ChatMessage, load_model
from tests.videogen import make_clip

REPLY = ["A car ", "hits a ", "pole."]


class _StreamingHandler(BaseHTTPRequestHandler):
    """Answers /v1/chat/completions with SSE chunks; records each request body."""

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.bodies.append(body)  # type: ignore[attr-defined]
        if body.get("model") == "missing":
            data = json.dumps({"error": {"message": "model not found", "type": "not_found"}}).encode()
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for index, piece in enumerate(REPLY):
            chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": body["model"],
                     "choices": [{"index": 0, "delta": {"content": piece} if index else
                                  {"role": "assistant", "content": piece}, "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


@pytest.fixture()
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _StreamingHandler)
    httpd.bodies = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _url(httpd: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}/v1"


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clips") / "00042.mp4"
    make_clip(path, seconds=1.0, fps=16, width=64, height=48)
    return path


def _jpeg_sizes(content: list[dict]) -> list[tuple[int, int]]:
    from PIL import Image

    sizes = []
    for part in content:
        if part["type"] == "image_url":
            header, data = part["image_url"]["url"].split(",", 1)
            assert header == "data:image/jpeg;base64"
            image = Image.open(io.BytesIO(base64.b64decode(data)))
            assert image.format == "JPEG"
            sizes.append(image.size)
    return sizes


def test_frames_are_sent_as_jpegs_and_the_reply_streams(server, clip_path: Path) -> None:
    model = load_model(f"openai:stub-vlm@{_url(server)}", num_frames=6)
    chunks = list(model.chat(clip_path, [ChatMessage("user", "What happened?")], max_new_tokens=32))
    assert chunks == REPLY
    body = server.bodies[-1]
    assert body["stream"] is True and body["model"] == "stub-vlm" and body["max_tokens"] == 32
    user = body["messages"][1]
    assert user["role"] == "user"
    assert _jpeg_sizes(user["content"]) == [(64, 48)] * 6
    assert user["content"][-1] == {"type": "text", "text": "What happened?"}


def test_follow_up_turn_reuses_the_clip(server, clip_path: Path, monkeypatch) -> None:
    import ecva_core.video as video

    calls = []
    real = video.sample_frames
    monkeypatch.setattr(video, "sample_frames", lambda *a, **k: calls.append(a) or real(*a, **k))
    model = load_model(f"openai:stub-vlm@{_url(server)}", num_frames=4, max_side=32)
    history = [ChatMessage("user", "What happened?")]
    answer = "".join(model.chat(clip_path, history))
    history += [ChatMessage("assistant", answer), ChatMessage("user", "Why?")]
    "".join(model.chat(clip_path, history))
    assert len(calls) == 1
    second = server.bodies[-1]["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert _jpeg_sizes(second[1]["content"]) == [(32, 24)] * 4
    assert second[-1]["content"] == "Why?"


def test_video_url_mode_sends_the_file(server, clip_path: Path) -> None:
    model = load_model(f"openai:stub-vlm@{_url(server)}", use_video_url=True)
    "".join(model.chat(clip_path, [ChatMessage("user", "Describe.")]))
    parts = server.bodies[-1]["messages"][1]["content"]
    video_parts = [p for p in parts if p["type"] == "video_url"]
    assert len(video_parts) == 1
    assert base64.b64decode(video_parts[0]["video_url"]["url"].split(",", 1)[1]) == clip_path.read_bytes()


def test_server_errors_become_load_errors(server, clip_path: Path) -> None:
    model = load_model(f"openai:missing@{_url(server)}", max_retries=0)
    with pytest.raises(ModelLoadError, match="404"):
        "".join(model.chat(clip_path, [ChatMessage("user", "x")]))
    dead = load_model("openai:m@http://127.0.0.1:9/v1", max_retries=0, timeout_s=2)
    with pytest.raises(ModelLoadError, match="cannot reach"):
        "".join(dead.chat(clip_path, [ChatMessage("user", "x")]))
    with pytest.raises(ModelLoadError, match="OPENAI_API_KEY"):
        load_model("openai:gpt-4o")


def test_cli_chat_streams_and_prints_json(server, clip_path: Path) -> None:
    runner = CliRunner()
    spec = f"openai:stub-vlm@{_url(server)}"
    plain = runner.invoke(cli, ["chat", "--model", spec, "--video", str(clip_path), "--question", "Why?",
                                "--num-frames", "4"])
    assert plain.exit_code == 0, plain.output
    assert plain.stdout.strip() == "".join(REPLY)
    result = runner.invoke(cli, ["chat", "--model", spec, "--video", str(clip_path), "--question", "Why?",
                                 "--num-frames", "4", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["answer"] == "".join(REPLY)
    assert payload["model"] == spec
    assert payload["frames"]["count"] == 4 and len(payload["frames"]["timestamps"]) == 4
    assert {"load_s", "sample_s", "total_s"} <= set(payload["timings"])


def test_cli_chat_user_errors_exit_1(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["chat", "--video", "x.mp4", "--question", "Why?"])
    assert result.exit_code == 1 and "ECVA_CHAT_MODEL" in result.output
    result = runner.invoke(cli, ["chat", "--model", "nope:x", "--video", str(tmp_path), "--question", "Why?"])
    assert result.exit_code == 1


def test_cli_chat_finds_a_video_by_id_in_the_dataset(server, tmp_path: Path, clip_path: Path) -> None:
    import csv
    import shutil

    folder = tmp_path / "dataset"
    (folder / "videos").mkdir(parents=True)
    shutil.copy(clip_path, folder / "videos" / "00007.mp4")
    with (folder / "annotations.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Video ID", "A1 category", "A2 - Reason", "A2 - Result", "A3 moment", "A3 description",
                         "A4 Key Sentences"])
        writer.writerow([7, "[7-1,5]", "Thieves broke in.", "Property was stolen.", "[0000,0001]", "[a theft]",
                         '["thieves","stolen"]'])
    runner = CliRunner()
    args = ["chat", "--model", f"openai:stub-vlm@{_url(server)}", "--question", "Why?", "--num-frames", "2",
            "--data", str(folder), "--json", "--video"]
    result = runner.invoke(cli, [*args, "00007.mp4"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["video"].endswith("00007.mp4")
    missing = runner.invoke(cli, [*args, "99"])
    assert missing.exit_code == 1 and "no video id 99" in missing.output
