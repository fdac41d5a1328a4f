"""Each dataset loader on our fixture, which mirrors the AI Hub formats (aihub_formats.md)."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest
from aihub_fixture import fx

from kmed.data.aihub.config import InterviewConfig, PipelineConfig
from kmed.data.aihub.loading import FormatError, decode_json, load_records
from kmed.data.aihub.records import QA, Dialogue, Document, Exercise
from kmed.data.aihub.report import Report
from kmed.data.aihub.tree import DownloadTree


def _load(root: Path, config: PipelineConfig | None = None):
    report = Report()
    records = load_records(DownloadTree(root, report), config or PipelineConfig(), report)
    return {r.uid: r for r in records}, report


@pytest.fixture(scope="module")
def loaded():
    return _load(fx.FIXTURE)


def test_fixture_bom_file_really_has_a_bom():
    raw = (fx.FIXTURE / fx.ESSENTIAL / "Training/02.라벨링데이터/TL_내과/필수_101.json").read_bytes()
    assert raw.startswith(codecs.BOM_UTF8)
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw.decode("utf-8"))


def test_medical_multiple_choice_with_bom(loaded):
    records, _ = loaded
    qa = records["essential:qa:101"]
    assert isinstance(qa, QA) and qa.q_type == "mcq"
    assert qa.question.endswith("가장 적절한 초기 치료는?") and "1)" not in qa.question
    assert qa.options == {"1": "항생제", "2": "양성자펌프억제제", "3": "스테로이드", "4": "항히스타민제", "5": "수술"}
    assert qa.answer_label == "2" and qa.answer_text() == "양성자펌프억제제"
    assert qa.explanation.startswith("역류성 식도염의 초기 치료로")
    assert (qa.domain, qa.department, qa.prov.aihub_split, qa.prov.id) == ("17", "내과", "Training", "101")


def test_circled_answer_inline_options_and_unparsable_mcq(loaded):
    records, report = loaded
    circled = records["essential:qa:104"]
    assert (circled.answer_label, circled.answer_text(), circled.explanation) == ("3", "아세트아미노펜", "")
    inline = records["specialist:qa:3"]
    assert inline.question == "다음 중 두드러기의 1차 치료제는?" and len(inline.options) == 5 and inline.answer_label == "1"
    assert inline.department == "피부과"
    unparsed = records["essential:qa:109"]
    assert unparsed.q_type == "short" and unparsed.options == {} and unparsed.answer == "티아지드계 이뇨제"
    assert [s.file.rsplit("/", 1)[-1] for s in report.skips if s.reason == "mcq_unparsed"] == ["필수_109.json"]


def test_short_and_descriptive_and_validation_split(loaded):
    records, _ = loaded
    assert records["essential:qa:102"].q_type == "short"
    assert records["essential:qa:103"].q_type == "descriptive"
    assert records["essential:qa:201"].department == "응급의학과"
    assert records["essential:qa:301"].prov.aihub_split == "Validation"


def test_medical_source_documents(loaded):
    records, _ = loaded
    textbook = records["essential:doc:5001"]
    assert isinstance(textbook, Document)
    assert (textbook.source_kind, textbook.source_spec, textbook.year, textbook.lang) == ("의학 교과서", "내과학 교과서 소화기편", "2021", "ko")
    assert "<br>" not in textbook.text and "위내시경" in textbook.text
    assert records["essential:doc:5002"].year == ""  # creation_year "null"
    english = records["essential:doc:5003"]
    assert (english.lang, english.source_kind, english.year, english.department) == ("en", "학술 논문 및 저널", "2019", "내과")
    assert records["specialist:doc:7001"].department == "피부과"


def test_skipped_files_are_counted_with_reasons(loaded):
    _, report = loaded
    reasons = {(s.reason, s.file.rsplit("/", 1)[-1]) for s in report.skips}
    assert ("bad_json", "필수_105.json") in reasons
    assert ("missing_field", "필수_110.json") in reasons
    assert ("no_solution", "S3_중등_3_000003.json") in reasons
    assert ("no_answer_in_folder", "HC-Q-0000003.json") in reasons


def test_healthcare_questions_pair_with_answers_of_their_folder(loaded):
    records, _ = loaded
    coffee, dinner = records["healthcare_qa:qa:HC-Q-0000001"], records["healthcare_qa:qa:HC-Q-0000002"]
    assert coffee.meta["answer_id"] == "HC-A-00000001" and "카페인" in coffee.answer
    assert dinner.meta["answer_id"] == "HC-A-00000002" and "저녁 식사" in dinner.answer
    assert coffee.department == "소화기내과" and coffee.domain == "소화기질환"
    assert coffee.meta["intention"] == "식이, 생활" and coffee.meta["disease"] == "역류성 식도염"
    answer = records["healthcare_qa:answer:HC-A-00000001"]
    assert answer.text.startswith("역류성 식도염이 있다면") and answer.text.endswith("진료를 받으세요.")
    assert "healthcare_qa:qa:HC-Q-0000003" not in records


def test_korean_passage_questions(loaded):
    records, _ = loaded
    qa = records["korean_passage:qa:S2_고등_1_000001"]
    assert qa.context == "봄이 오면 마을 사람들은 함께 논에 물을 대고 모를 심었다.\n서로 일손을 나누는 두레는 공동체를 지탱하는 힘이었다."
    assert qa.q_type == "passage_mcq" and qa.answer_label == "3"
    assert sorted(qa.options) == ["1", "2", "3", "4", "5"] and qa.options["3"] == "함께 일하는 문화가 공동체를 지탱했다."
    assert qa.domain == "고등학교 1학년" and qa.explanation.startswith("두 번째 문장")


def test_math_solutions_keep_latex_and_fall_back_to_image_classes(loaded):
    records, _ = loaded
    first = records["math_solution:ex:S3_중등_3_000001"]
    assert isinstance(first, Exercise)
    assert first.problem == "다음 중 $\\sqrt{16}$ 의 값은?" and first.answer == "3) 4"
    assert first.options == {"1": "2", "2": "-4", "3": "4", "4": "8", "5": "16"}
    assert "$16 = 4^2$" in first.solution and first.grade == "중학교 3학년" and first.difficulty == "하"
    image_only = records["math_solution:ex:S3_중등_3_000002"]  # 정답 only in 정답(이미지)
    assert image_only.answer == "2) 3"


def test_interview_dialogues_with_default_paths(loaded):
    records, _ = loaded
    dialogue = records["interview:dlg:interview_0001"]
    assert isinstance(dialogue, Dialogue) and dialogue.topic == "건강 습관"
    assert dialogue.turns == [
        ("user", "평소에 운동은 얼마나 하세요?"),
        ("assistant", "일주일에 세 번 정도 걸어요."),
        ("user", "식사는 규칙적으로 하시나요?"),
        ("assistant", "아침은 자주 거르는 편이에요."),
    ]


def test_interview_paths_are_configurable(tmp_path):
    folder = tmp_path / "인터뷰 데이터"
    folder.mkdir()
    (folder / "talk_1.json").write_text(
        json.dumps({"meta": {"subject": "식습관"}, "turns": [{"q": "아침 드세요?", "a": ["네, 매일 먹어요."]}]}, ensure_ascii=False), encoding="utf-8"
    )
    default, report = _load(tmp_path)
    assert not default and report.skipped_by_reason() == {"unknown_format": 1}
    config = PipelineConfig(interview=InterviewConfig(topic="meta.subject", turns="turns", question="q", answer="a[0]"))
    custom, _ = _load(tmp_path, config)
    dialogue = custom["interview:dlg:talk_1"]
    assert dialogue.topic == "식습관" and dialogue.turns == [("user", "아침 드세요?"), ("assistant", "네, 매일 먹어요.")]


def test_content_decides_the_dataset_when_the_path_says_nothing(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"qa_id": 9, "domain": 15, "q_type": 2, "question": "영아 발열 기준은?", "answer": "38도 이상"}, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "전문_5.json").write_text(json.dumps({"qa_id": 5, "domain": 15, "q_type": 2, "question": "질문?", "answer": "답"}, ensure_ascii=False), encoding="utf-8")
    records, _ = _load(tmp_path)
    assert records["essential:qa:9"].department == "소아청소년과"  # domain 15 belongs to 필수의료
    assert "specialist:qa:5" in records  # the 전문_ file-name prefix wins over the domain


def test_encodings_lists_and_non_objects(tmp_path):
    obj = {"qa_id": 1, "domain": 17, "q_type": 2, "question": "고혈압 기준은?", "answer": "140/90 mmHg 이상"}
    folder = tmp_path / "09.필수의료 의학지식 데이터"
    folder.mkdir()
    (folder / "cp949.json").write_bytes(json.dumps({**obj, "qa_id": 2}, ensure_ascii=False).encode("cp949"))
    (folder / "utf16.json").write_bytes(codecs.BOM_UTF16_LE + json.dumps({**obj, "qa_id": 3}, ensure_ascii=False).encode("utf-16-le"))
    (folder / "list.json").write_text(json.dumps([{**obj, "qa_id": 4}, {**obj, "qa_id": 5}], ensure_ascii=False), encoding="utf-8")
    (folder / "number.json").write_text("42", encoding="utf-8")
    (folder / "latin.json").write_bytes(b'{"qa_id": 6, "question": "\xff\xfe\xfa"}')
    (folder / "wrong_type.json").write_text(json.dumps({**obj, "qa_id": 7, "question": ["리스트"]}), encoding="utf-8")
    records, report = _load(tmp_path)
    assert sorted(records) == ["essential:qa:2", "essential:qa:3", "essential:qa:4", "essential:qa:5"]
    assert report.skipped_by_reason() == {"not_object": 1, "bad_encoding": 1, "bad_field": 1}


def test_decode_json_errors_name_the_problem():
    with pytest.raises(FormatError) as info:
        decode_json(b'{"a": ')
    assert info.value.reason == "bad_json" and "line 1" in info.value.detail
    assert decode_json(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}
    assert decode_json(b'{"a": 1}\n{"a": 2}\n') == [{"a": 1}, {"a": 2}]  # JSON Lines in a .json file


def test_duplicate_native_ids_stay_distinct(tmp_path):
    for split in ("Training", "Validation"):
        folder = tmp_path / "09.필수의료 의학지식 데이터" / split
        folder.mkdir(parents=True)
        (folder / "필수_1.json").write_text(
            json.dumps({"qa_id": 1, "domain": 17, "q_type": 2, "question": f"{split} 질문?", "answer": "답"}, ensure_ascii=False), encoding="utf-8"
        )
    records, report = _load(tmp_path)
    assert len(records) == 2 and "essential:qa:1" in records
    assert report.skipped_by_reason() == {"duplicate_id": 1}
