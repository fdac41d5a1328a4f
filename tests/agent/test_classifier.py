"""The learned message classifier (kmed.agent.classifier): training, determinism, corrupt files, bad data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kmed.agent import classifier as clf
from kmed.errors import KmedError

ROWS = [
    *({"text": t, "triage": "emergency", "intent": "symptom_report", "target": "rf.acute_chest_pain"} for t in
      ["가슴이 쥐어짜듯 아프고 식은땀이 나요", "아빠가 가슴을 움켜쥐고 식은땀을 흘려요", "가슴이 돌로 누르는 것 같고 숨이 차요"]),
    *({"text": t, "triage": "none", "intent": "symptom_report"} for t in
      ["어제부터 콧물이 나고 목이 칼칼해요", "운동하고 나서 허벅지가 뻐근해요", "밥 먹고 속이 좀 더부룩해요"]),
    *({"text": t, "triage": "none", "intent": "drug_question"} for t in ["타이레놀 하루 몇 알까지 돼요?", "감기약이랑 술 같이 먹어도 돼요?"]),
    *({"text": t, "triage": "self_harm", "intent": "self_harm"} for t in ["그냥 다 끝내고 싶어요", "살고 싶지 않아요"]),
    *({"text": t, "intent": "out_of_scope"} for t in ["주식 뭐 사야 돼요?", "파이썬 코드 짜 줘"]),
]


@pytest.fixture()
def data_dir(tmp_path):
    folder = tmp_path / "triage_data"
    folder.mkdir()
    (folder / "a.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in ROWS) + "\n", encoding="utf-8")
    return folder


def test_features_tolerate_spacing():
    a, b = clf.features("숨이 안 쉬어져요"), clf.features("숨이안쉬어져요")
    shared = sum(min(a.get(k, 0), b.get(k, 0)) for k in a)
    assert shared > 0.6
    assert abs(sum(v * v for v in a.values()) - 1.0) < 1e-6


def test_build_is_deterministic_and_predicts(data_dir, tmp_path):
    first = clf.build(tmp_path / "m1", data_dir)
    second = clf.build(tmp_path / "m2", data_dir)
    assert first["inputs"] == second["inputs"] and first["counts"] == {"triage": 10, "intent": 12}
    m1, m2 = clf.MessageClassifier.load(tmp_path / "m1"), clf.MessageClassifier.load(tmp_path / "m2")
    for head in clf.HEADS:
        assert np.array_equal(m1.heads[head][1], m2.heads[head][1])
    prediction = m1.predict("엄마가 가슴을 쥐어짜듯 아파하고 식은땀이 나요")
    assert prediction.top("triage")[0] == "emergency"
    assert abs(sum(prediction.intent.values()) - 1.0) < 1e-5
    assert m1.nearest_targets("가슴이 쥐어짜듯 아파요", "emergency")[0][0] == "rf.acute_chest_pain"


def test_missing_stale_and_corrupt_models_are_rebuilt(data_dir, tmp_path):
    folder = tmp_path / "model"
    assert clf.problem(folder, data_dir) == "missing"
    clf.load_or_build(folder, data_dir)
    assert clf.problem(folder, data_dir) is None
    (folder / clf.MODEL_FILE).write_bytes(b"not a zip")
    with pytest.raises(KmedError, match="kmed build classifier"):
        clf.load_or_build(folder, data_dir, auto_build=False)
    assert clf.load_or_build(folder, data_dir).predict("머리가 아파요")  # rebuilt
    (folder / clf.MODEL_FILE).write_bytes((folder / clf.MODEL_FILE).read_bytes()[:200])  # truncated
    assert clf.load_or_build(folder, data_dir).predict("머리가 아파요")
    with open(data_dir / "a.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"text": "새 문장이에요", "triage": "none"}, ensure_ascii=False) + "\n")
    assert clf.problem(folder, data_dir) == "stale"


@pytest.mark.parametrize("line", ['{"text": ""}', '{"text": "x", "triage": "maybe"}', "not json"])
def test_bad_training_lines_name_file_and_line(tmp_path, line):
    (tmp_path / "bad.jsonl").write_text('{"text": "괜찮아요", "triage": "none"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(KmedError, match=r"bad.jsonl:2"):
        clf.read_training(tmp_path)


def test_no_training_data_is_a_clear_error(tmp_path):
    with pytest.raises(KmedError, match="data/triage"):
        clf.read_training(tmp_path)


def test_shipped_training_data_reads_and_covers_every_red_flag(kb):
    rows = clf.read_training()
    assert len(rows) > 7000
    targets = {r.get("target") for r in rows}
    assert set(kb.red_flags) <= targets
    assert {r["intent"] for r in rows if r.get("intent")} == set(clf.INTENT_LABELS)
