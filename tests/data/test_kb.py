"""KB validation names the file, entry and field of every error, and never raises on bad content."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kmed.data.kb import KBValidationError, load_kb, load_kb_or_fail

MINI = Path(__file__).parents[1] / "fixtures" / "kb_mini"


@pytest.fixture
def kb_copy(tmp_path):
    target = tmp_path / "kb"
    shutil.copytree(MINI, target)
    return target


def _errors(root):
    return load_kb(root)[1]


def test_mini_kb_is_valid():
    kb = load_kb_or_fail(MINI)
    assert kb.stats()["conditions"] == 1 and "cond.gerd" in kb.conditions


def test_shipped_kb_is_valid(kb):
    """The real KB ships clean: `kmed kb validate` passes."""
    stats = kb.stats()
    assert stats["conditions"] >= 1 and stats["departments"] >= 20


def test_malformed_yaml_names_file_and_line(kb_copy):
    (kb_copy / "broken.yaml").write_text("conditions:\n  - id: cond.x\n    name: [unclosed\n", encoding="utf-8")
    errors = _errors(kb_copy)
    assert any(e.file == "broken.yaml" and "line" in e.field and "YAML" in e.message for e in errors)


def test_missing_field_names_entry_and_field(kb_copy):
    path = kb_copy / "conditions" / "digestive.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("      prevention:", "      prevent:"), encoding="utf-8")
    errors = _errors(kb_copy)
    assert any(e.file == "conditions/digestive.yaml" and e.entry == "cond.gerd" and "sections" in e.field for e in errors)


def test_unknown_reference_and_duplicate_id(kb_copy):
    (kb_copy / "extra.yaml").write_text(
        "symptoms:\n"
        "  - {id: sym.fever, name: 열2, sources: [kdca_health]}\n"
        "  - {id: sym.new_thing, name: 새증상, departments: [dept.nowhere], sources: [kdca_health]}\n",
        encoding="utf-8",
    )
    errors = _errors(kb_copy)
    assert any(e.entry == "sym.fever" and "duplicate" in e.message for e in errors)
    assert any(e.entry == "sym.new_thing" and e.field == "departments" and "dept.nowhere" in e.message for e in errors)


def test_unknown_field_and_bad_id(kb_copy):
    (kb_copy / "extra.yaml").write_text(
        "symptoms:\n  - {id: fever2, name: 열, sources: [kdca_health], colour: red}\n", encoding="utf-8"
    )
    messages = {(e.field, e.message.split(";")[0][:30]) for e in _errors(kb_copy)}
    assert any(field == "colour" for field, _ in messages)
    assert any(field == "id" for field, _ in messages)


def test_otc_drug_needs_label_dose(kb_copy):
    path = kb_copy / "drugs" / "common.yaml"
    text = path.read_text(encoding="utf-8").replace("      max_daily: 하루 4,000 mg을 넘기지 않아요.\n", "")
    path.write_text(text, encoding="utf-8")
    assert any(e.entry == "drug.acetaminophen" and "max_daily" in e.message for e in _errors(kb_copy))


def test_load_or_fail_raises_with_fix_hint(kb_copy):
    (kb_copy / "bad.yaml").write_text("widgets: []\n", encoding="utf-8")
    with pytest.raises(KBValidationError, match="kmed kb validate"):
        load_kb_or_fail(kb_copy)


def test_cli_validate_reports_without_traceback(kb_copy):
    from typer.testing import CliRunner

    from kmed.cli.main import app

    (kb_copy / "bad.yaml").write_text("conditions: {}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["kb", "validate", "--kb", str(kb_copy)])
    assert result.exit_code == 1
    assert "bad.yaml" in result.output and "Traceback" not in result.output


def test_cli_stats_json_has_required_keys():
    import json

    from typer.testing import CliRunner

    from kmed.cli.main import app

    result = CliRunner().invoke(app, ["kb", "stats", "--json", "--kb", str(MINI)])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.output)
    for key in ("conditions", "symptoms", "drugs", "departments", "surface_forms", "red_flag_rules", "kg_nodes", "kg_edges"):
        assert key in counts


# --- issue 11: symmetric interactions, OTC label maxima, topics, specific sources, claim sampler ---


def test_interaction_listed_on_one_drug_only_is_an_error(kb_copy):
    path = kb_copy / "drugs" / "common.yaml"
    text = path.read_text(encoding="utf-8")
    line = "      - {with: drug.esomeprazole, severity: moderate, note: 일부 양성자펌프억제제가 효과를 낮출 수 있어요.}\n"
    assert line in text
    path.write_text(text.replace(line, "      - {with: alcohol, severity: minor, note: 술은 위장 출혈 위험을 높여요.}\n"),
                    encoding="utf-8")
    errors = _errors(kb_copy)
    assert any(e.entry == "drug.esomeprazole" and e.field == "interactions" and "drug.clopidogrel" in e.message
               and "missing" in e.message for e in errors)


def test_interaction_severity_must_agree_on_both_drugs(kb_copy):
    path = kb_copy / "drugs" / "common.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("{with: drug.esomeprazole, severity: moderate", "{with: drug.esomeprazole, severity: major"),
                    encoding="utf-8")
    errors = [e for e in _errors(kb_copy) if "severity" in e.message]
    assert len(errors) == 1 and "major" in errors[0].message and "moderate" in errors[0].message


def test_shipped_kb_interactions_are_symmetric(kb):
    for drug in kb.drugs.values():
        for ix in drug.interactions:
            other = kb.drugs.get(ix.with_)
            if other is None:
                continue
            back = [b for b in other.interactions if b.with_ == drug.id]
            assert back and back[0].severity == ix.severity, (drug.id, other.id)


def test_otc_max_daily_must_be_a_sentence_with_the_label_number(kb_copy):
    path = kb_copy / "drugs" / "common.yaml"
    text = path.read_text(encoding="utf-8").replace("max_daily: 하루 4,000 mg을 넘기지 않아요.", "max_daily: 제품 설명서를 따라요.")
    path.write_text(text, encoding="utf-8")
    assert any(e.entry == "drug.acetaminophen" and "max_daily" in e.message for e in _errors(kb_copy))


def test_every_shipped_otc_drug_states_its_daily_maximum(kb):
    otc = [d for d in kb.drugs.values() if d.otc]
    assert len(otc) >= 20
    for drug in otc:
        assert drug.dose and drug.dose.max_daily and drug.dose.max_daily.endswith("요."), drug.id
    # The audit's corrections (issue 11).
    assert kb.drugs["drug.ibuprofen"].otc and "1,200 mg" in kb.drugs["drug.ibuprofen"].dose.max_daily
    assert "3,900 mg" in kb.drugs["drug.acetaminophen"].dose.max_daily
    assert kb.drugs["drug.clopidogrel"].uses and kb.drugs["drug.clopidogrel"].interactions
    warfarin = {ix.with_ for ix in kb.drugs["drug.warfarin"].interactions}
    assert {"drug.metronidazole", "drug.fluconazole", "drug.ibuprofen", "drug.celecoxib", "drug.diclofenac",
            "drug.loxoprofen", "drug.aceclofenac", "drug.rifampicin", "drug.carbamazepine"} <= warfarin


def test_topics_validate_and_need_whole_sentences(kb_copy):
    (kb_copy / "topics.yaml").write_text(
        "topics:\n"
        "  - id: topic.ok\n    name: 정상 체온\n    kind: reference_values\n"
        "    sentences: [체온이 38.0℃ 이상이면 열이 난다고 봐요.]\n    sources: [{id: kdca_health, detail: 발열}]\n"
        "  - id: topic.no_myth\n    name: 오해\n    kind: myth\n    sentences: [사실이 아니에요.]\n    sources: [kdca_health]\n"
        "  - id: topic.fragment\n    name: 조각\n    kind: hotline\n    sentences: [자살예방상담전화 109]\n    sources: [kdca_health]\n"
        "  - id: topic.dangling\n    name: 연결\n    kind: screening\n    sentences: [검진을 받아요.]\n"
        "    related: [cond.nowhere]\n    sources: [kdca_health]\n",
        encoding="utf-8",
    )
    kb, errors = load_kb(kb_copy)
    assert "topic.ok" in kb.topics and kb.topics["topic.ok"].specific_sources()
    assert any(e.entry == "topic.no_myth" and "myth" in e.message for e in errors)
    assert any(e.entry == "topic.fragment" and "sentence" in e.message for e in errors)
    assert any(e.entry == "topic.dangling" and e.field == "related" for e in errors)


def test_stats_report_specific_source_share():
    kb = load_kb_or_fail(MINI)
    stats = kb.stats()
    assert stats["entries"] > 0 and 0.0 <= stats["specific_source_share"] <= 1.0
    assert stats["entries_with_specific_source"] == sum(
        1 for e in [*kb.entities(), *kb.red_flags.values()] if e.specific_sources())


def test_shipped_kb_has_the_numbers_people_ask_for(kb):
    kinds = {t.kind for t in kb.topics.values()}
    assert kinds == {"myth", "reference_values", "screening", "vaccination", "treatment_duration", "hotline"}
    assert sum(1 for t in kb.topics.values() if t.kind == "myth") >= 25
    assert sum(1 for t in kb.topics.values() if t.id.startswith("topic.cancer_screening_")) == 6
    text = " ".join(s for t in kb.topics.values() for s in t.sentences)
    for needle in ("109", "1577-0199", "126 mg/dL", "6.5%", "140", "BMI", "HbA1c"):
        assert needle in text
    for t in kb.topics.values():
        assert t.specific_sources() and any(kb.sources[s].url for s in t.source_ids()), t.id


def test_infant_fever_rule_has_one_wording(kb):
    texts = [s for c in kb.conditions.values() for s in c.sections.values()]
    assert not any("3개월 미만" in t and "열" in t for t in texts)


def test_sample_claims_is_seeded_and_covers_every_entry_type(kb, tmp_path):
    import json

    from typer.testing import CliRunner

    from kmed.cli.main import app
    from kmed.data.claims import sample_claims

    first = [c.claim_id for c in sample_claims(kb, n=120, seed=11)]
    assert first == [c.claim_id for c in sample_claims(kb, n=120, seed=11)]
    assert first != [c.claim_id for c in sample_claims(kb, n=120, seed=12)]
    assert len(set(first)) == 120
    out = tmp_path / "claims.jsonl"
    result = CliRunner().invoke(app, ["kb", "sample-claims", "--n", "120", "--seed", "11", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 120 and {r["entry_type"] for r in rows} >= {"condition", "drug", "topic", "red_flag", "test"}
    assert all(r["sources"] and r["text"] and r["verdict"] == "" for r in rows)
