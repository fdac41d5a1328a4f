"""kmed.serve: the consultation as a 24-hour service (HTTP API, SSE, OpenAI-compatible, web page).

    kmed serve --host 127.0.0.1 --port 8000 [--model PATH] [--api-key KEY] [--db sessions.sqlite3]

Floor: above kmed.eval, below kmed.cli. It imports kmed.agent, kmed.data and kmed.errors only.
"""

from kmed.serve.settings import ServeSettings


def create_app(*args, **kwargs):
    """kmed.serve.app.create_app, imported on first use (FastAPI is not needed by the rest of kmed)."""
    from kmed.serve.app import create_app as factory

    return factory(*args, **kwargs)


__all__ = ["ServeSettings", "create_app"]
