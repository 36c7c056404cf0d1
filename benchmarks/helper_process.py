"""A benchmark's helper process (a loopback server in a child), spoken to by lines on stdin and stdout.

A benchmark whose helper dies must stop with the helper's error, never wait forever: every read
here has a timeout and ends as soon as the child's stdout closes.
"""

from __future__ import annotations

import queue
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

HELPER_TIMEOUT_S = 60.0


class HelperError(RuntimeError):
    """A helper process exited, or did not answer in time; the message carries its last error output."""


class Helper:
    """A child process spoken to by lines on its stdin and stdout; its first line says it is ready.

    Every read waits at most ``timeout_s`` and raises :class:`HelperError` as soon as the child's
    stdout closes (it exited), so a benchmark whose helper dies stops instead of waiting forever.
    """

    def __init__(
        self, command: list[str], name: str, cwd: Path | None = None, timeout_s: float = HELPER_TIMEOUT_S
    ) -> None:
        self.name = name
        self.timeout_s = timeout_s
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._errors: deque[str] = deque(maxlen=20)
        self.proc = subprocess.Popen(
            command,
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        threading.Thread(target=self._pump, args=(self.proc.stdout, self._lines.put), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, self._errors.append), daemon=True).start()
        self.ready_line = self._next_line()

    @staticmethod
    def _pump(stream: Any, sink: Callable[[Any], None]) -> None:
        for line in stream:
            sink(line.rstrip("\n"))
        sink(None)

    def _next_line(self) -> str:
        try:
            line = self._lines.get(timeout=self.timeout_s)
        except queue.Empty:
            self.close()
            raise HelperError(f"{self.name} did not answer within {self.timeout_s:g} s") from None
        if line is None:
            status = self.proc.wait(timeout=10)
            time.sleep(0.1)  # let the error reader drain the child's last words
            tail = "\n".join(e for e in self._errors if e) or "(no error output)"
            raise HelperError(f"{self.name} exited with status {status} before answering:\n{tail}")
        return line

    def ask(self, request: str) -> str:
        """Send one line and return the child's one-line answer."""
        try:
            self.proc.stdin.write(request + "\n")
            self.proc.stdin.flush()
        except OSError:
            pass  # the child is gone; reading its answer reports how it ended
        return self._next_line()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
