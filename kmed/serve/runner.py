"""Run the app with uvicorn, in this process (``kmed serve``) or as a child process (tests, load test).

    run(ServeSettings(port=8000), Assistant.load())           # blocks; Ctrl-C stops it
    with ServerProcess(db_path="s.sqlite3") as server:        # python -m kmed.cli.main serve … on a free port
        httpx.get(server.url + "/readyz")
        server.kill(); server.start()                          # SIGKILL and restart on the same SQLite file
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from kmed.serve import logs
from kmed.serve.settings import ServeSettings


def run(settings: ServeSettings, assistant) -> None:
    import uvicorn

    from kmed.serve.app import create_app

    logs.configure(settings.log_level)
    app = create_app(assistant, settings)
    # timeout_keep_alive: idle keep-alive sockets close after 15 s; h11 caps header size (slow or huge headers).
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False,
                timeout_keep_alive=15, timeout_graceful_shutdown=10)


def check_port(host: str, port: int) -> None:
    """Fail before the seconds-long index load when the address cannot be bound."""
    from kmed.errors import ConfigError

    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except OSError as exc:
        raise ConfigError(f"{host}:{port} 에서 서버를 열 수 없어요 ({exc.strerror}).",
                          f"다른 포트를 주거나(--port {port + 1}) 그 포트를 쓰는 프로그램을 끄세요.") from exc


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ServerProcess:
    """``kmed serve`` in a child process on 127.0.0.1 and a free port; stderr (JSON logs) to a file."""

    def __init__(self, db_path: str | Path, port: int | None = None, extra_args: list[str] | None = None,
                 log_path: str | Path | None = None, ready_timeout_s: float = 120.0):
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.db_path = str(db_path)
        self.extra_args = list(extra_args or [])
        self.log_path = Path(log_path) if log_path else Path(self.db_path).with_suffix(".log")
        self.ready_timeout_s = ready_timeout_s
        self.process: subprocess.Popen | None = None
        self.ready_seconds: float | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ServerProcess:
        command = [sys.executable, "-m", "kmed.cli.main", "serve", "--host", self.host, "--port", str(self.port),
                   "--db", self.db_path, *self.extra_args]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        started = time.perf_counter()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log, env=env)
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
                raise RuntimeError(f"kmed serve exited with {self.process.returncode}:\n{tail}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    self.ready_seconds = time.perf_counter() - started
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"kmed serve was not ready within {self.ready_timeout_s} s (log: {self.log_path})")

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, as in a crash or an OOM kill."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
