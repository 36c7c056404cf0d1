"""A loopback server that speaks the ModelScope API the SDK uses: file tree + file download, for the
dataset and for model repositories.

Programmable per test: the files it serves, a connection cut after N bytes of one file (to make
an interrupted download), and a log of every request with its Range header.
"""

from __future__ import annotations

import hashlib
import http.server
import json
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlparse

from tests.loopback import LoopbackServer


@dataclass
class StubRequest:
    path: str
    file_path: str | None
    range: str | None


@dataclass
class ModelScopeStub(LoopbackServer):
    """Serves ``files`` (repo path -> bytes) as dataset ``dataset_id`` at ``self.endpoint``, and each
    of ``models`` (model id -> {repo path -> bytes}) as a model repository."""

    files: dict[str, bytes]
    dataset_id: str = "gouchenyi/ECVA"
    models: dict[str, dict[str, bytes]] = field(default_factory=dict)
    cut_after: dict[str, int] = field(default_factory=dict)  # repo path -> bytes before a one-time cut
    lie_sha256: set[str] = field(default_factory=set)  # repo paths listed with a wrong checksum
    requests: list[StubRequest] = field(default_factory=list)

    def ranged(self, file_path: str) -> list[str]:
        return [r.range for r in self.requests if r.file_path == file_path and r.range]

    def _tree(self, files: dict[str, bytes]) -> bytes:
        entries = []
        for path, data in files.items():
            digest = hashlib.sha256(data).hexdigest()
            if path in self.lie_sha256:
                digest = hashlib.sha256(data + b"tampered").hexdigest()
            entries.append({"Path": path, "Name": path.rsplit("/", 1)[-1], "Type": "blob",
                            "Size": len(data), "Sha256": digest, "Revision": "master"})
        return json.dumps({"Code": 200, "Success": True, "Data": {"Files": entries}}).encode()

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        stub = self
        tree_path = f"/api/v1/datasets/{stub.dataset_id}/repo/tree"
        file_route = f"/api/v1/datasets/{stub.dataset_id}/repo"
        model_trees = {f"/api/v1/models/{model_id}/repo/files": files for model_id, files in stub.models.items()}
        model_files = {f"/api/v1/models/{model_id}/repo": files for model_id, files in stub.models.items()}

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

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = parse_qs(url.query)
                file_path = query.get("FilePath", [None])[0]
                stub.requests.append(StubRequest(self.path, file_path, self.headers.get("Range")))
                if url.path == tree_path:
                    self._send(200, stub._tree(stub.files), {"Content-Type": "application/json"})
                elif url.path == file_route and file_path in stub.files:
                    self._file(stub.files, file_path)
                elif url.path in model_trees:
                    self._send(200, stub._tree(model_trees[url.path]), {"Content-Type": "application/json"})
                elif file_path in model_files.get(url.path, {}):
                    self._file(model_files[url.path], file_path)
                else:
                    self._send(404, b'{"Code": 404, "Message": "not found"}', {"Content-Type": "application/json"})

            do_HEAD = do_GET

            def _file(self, files: dict[str, bytes], file_path: str) -> None:
                data = files[file_path]
                start = 0
                header = self.headers.get("Range")
                if header:
                    start = int(header.split("=", 1)[1].split("-", 1)[0])
                body = data[start:]
                self.send_response(206 if header else 200)
                if header:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                cut = stub.cut_after.pop(file_path, None)
                if cut is not None:
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body)

        return Handler
