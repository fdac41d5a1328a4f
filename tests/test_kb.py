"""KB validation names the file, entry and field of every error, and never raises on bad content."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kmed.data.kb import KBValidationError, load_kb, load_kb_or_fail

MINI = Path(__file__).parent / "fixtures" / "kb_mini"


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
