"""What every loopback stub server in the tests shares: a threaded HTTP server on a free 127.0.0.1 port.

A stub subclasses :class:`LoopbackServer`, builds its request handler in ``_handler()`` and is used
as a context manager; ``endpoint`` is its base URL.
"""

from __future__ import annotations

import http.server
import threading
from typing import Any, Self


class LoopbackServer:
    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        raise TypeError(f"{type(self).__name__} must define _handler()")

    def __post_init__(self) -> None:
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
