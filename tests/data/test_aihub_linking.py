"""Entity linking through the lead's EntityLinker: passage entity_ids and KG co-occurrence edges."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aihub_fixture import fx

from kmed.data.aihub.config import PipelineConfig
from kmed.data.aihub.pipeline import prepare

TINY_KB = Path(__file__).parents[1] / "fixtures" / "aihub" / "tiny_kb"


def test_real_linker_fills_entity_ids_and_edges(tmp_path):
    pytest.importorskip("kmed.kg.linker", reason="the lead's EntityLinker is not available yet")
    root = fx.copy_fixture(tmp_path / "aihub")
    out = tmp_path / "processed"
    from kmed.kg.linker import EntityLinker

    result = prepare(root / fx.ESSENTIAL, out, PipelineConfig(), kb_dir=TINY_KB, make_linker=lambda kb: EntityLinker.from_kb(kb).entity_ids)
    assert not [n for n in result.report.notes if "연결" in n], result.report.notes  # the KB loaded and the linker ran
    passages = {p["id"]: p for p in map(json.loads, (out / "passages.jsonl").read_text(encoding="utf-8").splitlines())}
    assert passages["aihub:essential:doc:5001#0"]["metadata"]["entity_ids"][:2] == ["cond.gerd", "sym.heartburn"]
    assert passages["aihub:essential:qa:102"]["metadata"]["entity_ids"] == ["cond.gerd", "sym.heartburn"]
    edges = [json.loads(line) for line in (out / "kg_edges" / "aihub_cooccurrence.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(e["src"], e["dst"]) for e in edges] == [("cond.gerd", "sym.heartburn")]
    assert edges[0]["provenance"]["count"] >= 2 and edges[0]["provenance"]["dataset"] == "essential"
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["linked"] and manifest["fingerprint"]["linking"].startswith("kb:")
