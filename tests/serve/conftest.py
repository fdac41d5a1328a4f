"""Fixtures for kmed.serve: one Assistant per test module, apps on temporary SQLite files, real servers.

    .venv/bin/python -m pytest tests/serve -q            # API, bad input, OpenAI client, restart
    .venv/bin/python -m pytest tests/serve -q -m slow    # browser (Debian chromium) and load test
"""

from __future__ import annotations

import threading
import time

import pytest
import uvicorn
from starlette.testclient import TestClient

from kmed.serve import ServeSettings, create_app
from kmed.serve.runner import free_port


@pytest.fixture(scope="module")
def assistant():
    """Assistant.load takes seconds: one per module, shared by its tests (tests must not mutate it for good)."""
    from kmed import Assistant

    return Assistant.load()


@pytest.fixture
def make_app(assistant, tmp_path):
    def factory(db_name: str = "sessions.sqlite3", **settings):
        return create_app(assistant, ServeSettings(db_path=tmp_path / db_name, **settings))

    return factory


@pytest.fixture
def client(make_app):
    with TestClient(make_app(rate_limit_per_min=0), raise_server_exceptions=False) as c:
        yield c


class LiveServer:
    """A real uvicorn server on 127.0.0.1 and a free port, in a thread of this process."""

    def __init__(self, app, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None,
                                                    access_log=False, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture
def live_server():
    """``live_server(app)`` starts a real server; every one started is stopped after the test."""
    started: list[LiveServer] = []

    def start(app, port: int | None = None) -> LiveServer:
        server = LiveServer(app, port).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
