"""The real CLI, as a user runs it: ask --json, chat over stdin, build, and errors without tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

MINI = Path(__file__).parents[1] / "fixtures" / "kb_mini"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    index = tmp_path_factory.mktemp("cli-index")
    config = index / "retrieval.yaml"
    config.write_text("dense:\n  train_steps: 40\n", encoding="utf-8")  # a fast build; the flow is what is tested
    return {**os.environ, "KMED_KB_DIR": str(MINI), "KMED_INDEX_DIR": str(index), "KMED_RETRIEVAL_CONFIG": str(config),
            "PYTHONUNBUFFERED": "1"}


def run(env, *args, stdin: str | None = None, timeout: int = 300):
    return subprocess.run([sys.executable, "-m", "kmed.cli.main", *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=timeout)


def test_build_then_ask_json_returns_the_contract(env):
    built = run(env, "build", "all")
    assert built.returncode == 0, built.stderr
    done = run(env, "ask", "--json", "역류성식도염이 있는데 가슴이 쓰리고 신물이 올라와요")
    assert done.returncode == 0, done.stderr
    reply = json.loads(done.stdout)
    assert set(reply) == {"answer", "citations", "triage", "entities", "departments", "refused"}
    assert any(e["name"] == "역류성 식도염" for e in reply["entities"]) and reply["citations"]


def test_chat_holds_a_two_turn_conversation(env):
    done = run(env, "chat", stdin="머리가 아파요\n이틀 됐고 콧물도 나요\n/sources\n/reset\n/quit\n")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "언제부터" in out  # turn 1: one clarifying question
    assert out.count("kmed>") >= 2 and "두통" in out  # turn 2 answered with both symptoms
    assert "새 상담을 시작해요" in out and "Traceback" not in out + done.stderr


def test_chat_ends_cleanly_on_eof(env):
    done = run(env, "chat", stdin="")
    assert done.returncode == 0 and "Traceback" not in done.stderr


def test_unknown_model_path_is_a_clear_error(env):
    done = run(env, "ask", "--model", "/no/such/model", "두통")
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and ("모델" in done.stderr or "model" in done.stderr.lower())


def test_broken_kb_is_reported_with_the_fix(env, tmp_path):
    import shutil

    kb = tmp_path / "kb"
    shutil.copytree(MINI, kb)
    (kb / "oops.yaml").write_text("conditions:\n  - id: cond.oops\n", encoding="utf-8")
    done = run({**env, "KMED_KB_DIR": str(kb)}, "ask", "두통")
    assert done.returncode == 2 and "kmed kb validate" in done.stderr and "Traceback" not in done.stderr
