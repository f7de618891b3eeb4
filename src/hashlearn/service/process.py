"""Run ``hashlearn serve`` in a child process (for tests, benchmarks and fault injection).

The child is a real server on a loopback port, so it can be killed with SIGKILL mid-write and
restarted on the same data directory.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["ServerProcess", "free_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``python -m hashlearn serve`` on a free loopback port.

    Parameters
    ----------
    data_dir : data directory
    api_keys : path of a key file (or None with ``extra_args=["--no-auth"]``)
    extra_args : more ``serve`` options
    env : extra environment variables
    preexec_fn : run in the child before exec (e.g. to set a file-size limit)
    """

    def __init__(self, data_dir, api_keys=None, *, extra_args=(), env=None, preexec_fn=None, log_path=None):
        self.data_dir = Path(data_dir)
        self.api_keys = api_keys
        self.extra_args = list(extra_args)
        self.env = dict(env or {})
        self.preexec_fn = preexec_fn
        self.log_path = Path(log_path) if log_path else self.data_dir.parent / f"{self.data_dir.name}.server.log"
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> "ServerProcess":
        import httpx

        for _attempt in range(3):
            self.port = free_port()
            cmd = [sys.executable, "-m", "hashlearn", "serve", "--data-dir", str(self.data_dir), "--port", str(self.port)]
            if self.api_keys is not None:
                cmd += ["--api-keys", str(self.api_keys)]
            cmd += self.extra_args
            env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "2", **self.env}
            self._log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                         preexec_fn=self.preexec_fn)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    if httpx.get(self.url + "/health", timeout=1.0).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            self.stop()
            if "address already in use" not in self.log().lower():
                break
        raise RuntimeError(f"server did not start; log:\n{self.log()[-3000:]}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (as in a crash or power cut of the process)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._close_log()

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, then wait (uvicorn shuts down cleanly and the service writes snapshots)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close_log()

    def _close_log(self) -> None:
        log = getattr(self, "_log", None)
        if log is not None and not log.closed:
            log.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
