"""Shared fixtures: the shipped KB and the objects built from it are loaded once per test run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kmed.data.kb import load_kb_or_fail


@pytest.fixture(scope="session", autouse=True)
def _runs_dir(tmp_path_factory):
    """Run records from commands under test go to a temporary folder, never the project's runs/."""
    before = os.environ.get("KMED_RUNS_DIR")
    os.environ["KMED_RUNS_DIR"] = str(tmp_path_factory.mktemp("runs"))
    yield
    if before is None:
        os.environ.pop("KMED_RUNS_DIR", None)
    else:
        os.environ["KMED_RUNS_DIR"] = before


@pytest.fixture(scope="session")
def kb():
    return load_kb_or_fail()


MINI_KB = Path(__file__).parent / "fixtures" / "kb_mini"


@pytest.fixture(scope="session")
def mini_kb():
    """The small test KB (tests/fixtures/kb_mini): indexes build from it in seconds."""
    return load_kb_or_fail(MINI_KB)


@pytest.fixture(scope="session")
def linker(kb):
    from kmed.kg.linker import EntityLinker

    return EntityLinker.from_kb(kb)
