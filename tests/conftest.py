"""Shared fixtures: the shipped KB and the objects built from it are loaded once per test run."""

from __future__ import annotations

import pytest

from kmed.data.kb import load_kb_or_fail


@pytest.fixture(scope="session")
def kb():
    return load_kb_or_fail()


@pytest.fixture(scope="session")
def linker(kb):
    from kmed.kg.linker import EntityLinker

    return EntityLinker.from_kb(kb)
