"""Sessions survive a server restart on the same SQLite file; the CLI command is registered."""

from __future__ import annotations

import httpx
from typer.testing import CliRunner


def test_session_survives_restart(make_app, live_server):
    first = live_server(make_app(db_name="restart.sqlite3"))
    sid = httpx.post(first.url + "/v1/sessions").json()["session_id"]
    for text in ("배가 아파요", "가슴이 쥐어짜듯 아프고 식은땀이 나요"):
        assert httpx.post(f"{first.url}/v1/sessions/{sid}/messages", json={"text": text}).status_code == 200
    first.stop()

    second = live_server(make_app(db_name="restart.sqlite3"), port=first.port)  # a new app, same file and port
    before = httpx.get(f"{second.url}/v1/sessions/{sid}").json()
    assert before["turns"] == 2 and before["last_reply"]["triage"]["level"] == "emergency"
    reply = httpx.post(f"{second.url}/v1/sessions/{sid}/messages", json={"text": "지금은 좀 괜찮아요"}).json()
    # the red flag raised before the restart still holds: the reply is not downgraded
    assert reply["triage"]["level"] == "emergency" and "119" in reply["answer"]
    assert httpx.get(f"{second.url}/v1/sessions/{sid}").json()["turns"] == 3


def test_cli_registers_serve_and_bench_serve():
    from kmed.cli.main import app

    runner = CliRunner()
    serve = runner.invoke(app, ["serve", "--help"])
    assert serve.exit_code == 0 and "--api-key" in serve.output and "--db" in serve.output
    bench = runner.invoke(app, ["bench", "serve", "--help"])
    assert bench.exit_code == 0 and "--sessions" in bench.output
