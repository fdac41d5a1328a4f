"""A short run of ``kmed bench serve``: concurrent sessions, SIGKILL mid-run, restart, nothing lost."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_bench_serve_survives_a_kill():
    from kmed.serve.bench import bench_serve

    report = bench_serve(sessions=6, turns=4, kill=True, timeout_s=240)
    assert report["ok"], report
    assert report["turns"]["errors"] == 0 and report["turns"]["ok"] == 24
    assert report["kill"]["after_turns"] >= 12
    storage = report["storage"]
    assert storage["integrity_check"] == "ok" and storage["lost"] == 0 and storage["corrupted"] == 0
    assert storage["every_turn_stored"]
