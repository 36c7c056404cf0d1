"""A loopback server that speaks the part of the Hugging Face hub API that ``huggingface_hub`` uses to
download a model: repository info, the file tree, and ``resolve`` (HEAD for metadata, ranged GET).

Programmable per test like tests/modelscope_stub.py: the repositories it serves, a connection cut
after N bytes of one file, files listed with a wrong SHA-256, and a log of every request.
"""

from __future__ import annotations

import hashlib
import http.server
import json
from dataclasses import dataclass, field
from urllib.parse import unquote, urlparse

from tests.loopback import LoopbackServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class HFRequest:
    method: str
    path: str
    range: str | None


@dataclass
class HFHubStub(LoopbackServer):
    """Serves ``models`` (repo id -> {path -> bytes}) at ``self.endpoint`` (set it as ``HF_ENDPOINT``)."""

    models: dict[str, dict[str, bytes]]
    cut_after: dict[str, int] = field(default_factory=dict)  # path -> bytes before a one-time cut
    lie_sha256: set[str] = field(default_factory=set)  # paths listed with a wrong checksum
    requests: list[HFRequest] = field(default_factory=list)

    def ranged(self, path: str) -> list[str]:
        return [r.range for r in self.requests if r.path.endswith(f"/{path}") and r.range and r.method == "GET"]

    def _sha256(self, path: str, data: bytes) -> str:
        return hashlib.sha256(data + (b"tampered" if path in self.lie_sha256 else b"")).hexdigest()

    def _tree(self, files: dict[str, bytes]) -> list[dict]:
        return [
            {
                "type": "file",
                "path": path,
                "size": len(data),
                "oid": hashlib.sha1(data).hexdigest(),
                "lfs": {"oid": self._sha256(path, data), "size": len(data), "pointerSize": 130},
            }
            for path, data in files.items()
        ]

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                return

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _json(self, payload: object) -> None:
                self._send(200, json.dumps(payload).encode(), {"Content-Type": "application/json"})

            def do_GET(self) -> None:
                url = urlparse(self.path)
                path = unquote(url.path)
                stub.requests.append(HFRequest(self.command, path, self.headers.get("Range")))
                for repo_id, files in stub.models.items():
                    if path in (
                        f"/api/models/{repo_id}",
                        f"/api/models/{repo_id}/revision/main",
                        f"/api/models/{repo_id}/revision/{COMMIT}",
                    ):
                        self._json(
                            {
                                "id": repo_id,
                                "sha": COMMIT,
                                "private": False,
                                "siblings": [{"rfilename": p} for p in files],
                            }
                        )
                        return
                    if path in (f"/api/models/{repo_id}/tree/main", f"/api/models/{repo_id}/tree/{COMMIT}"):
                        self._json(stub._tree(files))
                        return
                    for revision in ("main", COMMIT):
                        prefix = f"/{repo_id}/resolve/{revision}/"
                        if path.startswith(prefix) and path[len(prefix) :] in files:
                            self._file(path[len(prefix) :], files[path[len(prefix) :]])
                            return
                self._send(
                    404,
                    b'{"error": "Repository not found"}',
                    {"Content-Type": "application/json", "X-Error-Code": "RepoNotFound"},
                )

            do_HEAD = do_GET

            def _file(self, name: str, data: bytes) -> None:
                etag = f'"{stub._sha256(name, data)}"'
                start = 0
                header = self.headers.get("Range")
                if header:
                    start = int(header.split("=", 1)[1].split("-", 1)[0])
                body = data[start:]
                self.send_response(206 if header else 200)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", etag)
                self.send_header("X-Linked-Etag", etag)
                self.send_header("X-Linked-Size", str(len(data)))
                self.send_header("Accept-Ranges", "bytes")
                if header:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command == "HEAD":
                    return
                cut = stub.cut_after.pop(name, None)
                if cut is not None:
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body)

        return Handler
