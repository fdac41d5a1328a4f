"""``kmed kg import-dur``: reading the DUR files, recognising tables, mapping names onto KB drugs, edges."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kmed.data.dur import TABLES, DrugMatcher, import_dur, name_keys, read_table
from kmed.errors import KmedError

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "dur"
KR_DUR_KIDS = Path(__file__).resolve().parents[3] / "shared" / "benchmarks" / "kr_dur_kids"
REPO = Path(__file__).resolve().parents[2]


def _need(kb, *drug_ids: str) -> None:
    missing = [d for d in drug_ids if d not in kb.drugs]
    if missing:
        pytest.skip(f"KB has no {missing}")


def _edges(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _has(edges: list[dict], src: str, dst: str, edge_type: str) -> dict | None:
    return next((e for e in edges if e["src"] == src and e["dst"] == dst and e["type"] == edge_type), None)


@pytest.fixture(scope="module")
def fixture_import(kb, tmp_path_factory):
    out = tmp_path_factory.mktemp("dur") / "kg_edges" / "dur.jsonl"
    report = import_dur(FIXTURE, kb=kb, out_path=out)
    return report, out


# --- names ------------------------------------------------------------------------------------------


def test_name_keys_strip_salts_only_where_safe():
    assert "에스오메프라졸" in name_keys("에스오메프라졸마그네슘삼수화물")
    assert "clopidogrel" in name_keys("Clopidogrel Bisulfate")
    assert "로수바스타틴" in name_keys("로수바스타틴칼슘")
    # An ion or an acid left alone is not a drug: these keep their full name.
    assert "potassium" not in name_keys("potassium citrate")
    assert "magnesium" not in name_keys("magnesium oxide")
    # A combination is one sorted key, never its parts.
    assert name_keys("tramadol + acetaminophen") == name_keys("Acetaminophen/Tramadol")
    assert "acetaminophen" not in name_keys("tramadol + acetaminophen")
    assert name_keys("isopropyl antipyrine 함유제제")[0] == "isopropylantipyrine"


def test_matcher_maps_korean_english_and_salt_forms(kb):
    _need(kb, "drug.acetaminophen", "drug.clopidogrel", "drug.esomeprazole")
    matcher = DrugMatcher(kb)
    assert matcher.match("아세트아미노펜") == "drug.acetaminophen"
    assert matcher.match("Paracetamol") == "drug.acetaminophen"
    assert matcher.match("클로피도그렐황산수소염") == "drug.clopidogrel"
    assert matcher.match("Esomeprazole magnesium") == "drug.esomeprazole"
    assert matcher.match("tramadol + acetaminophen") is None
    assert matcher.match("pimozide") is None


# --- the fixture in the official layout -------------------------------------------------------------


def test_fixture_tables_are_recognised(fixture_import):
    report, _ = fixture_import
    seen = {t.table for t in report.tables}
    assert seen == {"combination", "pregnancy", "age", "elderly", "lactation", "max_dose", "efficacy_group"}
    rows = {t.table: t.rows for t in report.tables}
    assert rows == {
        "combination": 6,
        "pregnancy": 3,
        "age": 4,
        "elderly": 3,
        "lactation": 2,
        "max_dose": 3,
        "efficacy_group": 5,
    }
    assert not report.warnings


def test_fixture_reads_cp949_and_utf8_bom():
    encodings = {p.name: read_table(p).encoding for p in FIXTURE.glob("*.csv")}
    assert "cp949" in encodings.values()
    assert "utf-8-sig" in encodings.values()
    header = read_table(next(FIXTURE.glob("*임부금기*.csv"))).header
    assert header[0] == "성분명"  # CP949 decoded, not mojibake


def test_fixture_edges(kb, fixture_import):
    _need(
        kb,
        "drug.sildenafil",
        "drug.nitroglycerin",
        "drug.clopidogrel",
        "drug.esomeprazole",
        "drug.rosuvastatin",
        "drug.tramadol",
        "drug.acetaminophen",
        "drug.amitriptyline",
        "drug.methotrexate",
        "drug.naproxen",
        "drug.celecoxib",
    )
    report, out = fixture_import
    edges = _edges(out)
    assert report.edges_written == len(edges)

    pair = _has(edges, "drug.sildenafil", "drug.nitroglycerin", "interacts_with")
    assert pair and pair["severity"] == "major" and "혈압" in pair["note"]
    assert _has(edges, "drug.nitroglycerin", "drug.sildenafil", "interacts_with")
    assert pair["provenance"] == {
        "source": "mfds_dur",
        "file": "한국의약품안전관리원_병용금기약물_시험.csv",
        "row": 2,
    }
    assert len(pair["products"]) == 2  # two product rows of one ingredient pair give one edge
    # Salt forms on both sides (English "Clopidogrel Bisulfate", Korean "…마그네슘삼수화물").
    assert _has(edges, "drug.clopidogrel", "drug.esomeprazole", "interacts_with")

    preg = _has(edges, "drug.rosuvastatin", "pregnancy", "contraindicated_in")
    assert preg and preg["level"] == "contraindicated" and preg["grade"] == "1"
    tramadol = _has(edges, "drug.tramadol", "children", "contraindicated_in")
    assert tramadol and tramadol["level"] == "contraindicated" and tramadol["age"] == "12세 미만"
    # The KB gives acetaminophen a children's dose: a DUR age entry only concerns some products.
    acet = _has(edges, "drug.acetaminophen", "children", "contraindicated_in")
    assert acet and acet["level"] == "caution" and acet["scope"] == "some_products"
    elderly = _has(edges, "drug.amitriptyline", "elderly", "contraindicated_in")
    assert elderly and elderly["level"] == "caution"
    assert _has(edges, "drug.methotrexate", "lactation", "contraindicated_in")
    dup = _has(edges, "drug.naproxen", "drug.celecoxib", "interacts_with")
    assert dup and dup["severity"] == "moderate" and dup["group"] == "해열진통소염제"

    for edge in edges:
        assert edge["type"] in ("interacts_with", "contraindicated_in")
        assert edge["src"].startswith("drug.")
        assert edge["provenance"]["source"] == "mfds_dur" and isinstance(edge["provenance"]["row"], int)
        assert edge["note"]
    # 용량주의 rows are matched and reported but give no edge.
    max_dose = next(t for t in report.tables if t.table == "max_dose")
    assert max_dose.matched == 2 and max_dose.edges == 0


def test_fixture_unmatched_names_are_reported(fixture_import):
    report, _ = fixture_import
    names = {name.lower() for name, _ in report.unmatched.most_common(100)}
    assert {"pimozide", "thalidomide", "busulfan", "granisetron", "amfenac"} <= names
    assert "emtricitabine + tenofovir" in names  # a combination product stays unmatched


def test_output_is_written_atomically(fixture_import):
    _, out = fixture_import
    assert out.exists()
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temp file left behind


def test_edges_merge_into_the_graph(kb, fixture_import):
    from kmed.kg.graph import build_graph, merge_extra_edges

    report, out = fixture_import
    graph = build_graph(kb)
    assert merge_extra_edges(graph, out.parent) == report.edges_written


# --- bad input --------------------------------------------------------------------------------------


def test_missing_folder_is_a_clear_error(kb, tmp_path):
    with pytest.raises(KmedError) as info:
        import_dur(tmp_path / "nope", kb=kb, write=False)
    assert "DUR 폴더를 찾을 수 없어요" in info.value.message and info.value.fix


def test_folder_without_dur_files_is_a_clear_error(kb, tmp_path):
    (tmp_path / "notes.csv").write_text("제목,내용\n안녕,하세요\n", encoding="utf-8")
    with pytest.raises(KmedError) as info:
        import_dur(tmp_path, kb=kb, write=False)
    assert "알아볼 수 있는 파일을 찾지 못했어요" in info.value.message
    assert "성분명" in info.value.fix


@pytest.mark.parametrize(
    "content",
    [
        '성분명,성분코드,금기등급,상세정보\n"isotretinoin,T1,1,설명\nx,y\n'.encode(),  # unbalanced quote
        b"\x00\x01\x02PK binary",
        "성분명,성분코드,금기등급,상세정보\na,b\nc,d\ne,f\ng,h\n".encode(),  # rows shorter than the header
        "성분명,성분코드,금기등급\n".encode()
        + "가".encode("utf-16-le") * 40
        + b"\xff\xfe\xfd",  # neither UTF-8 nor CP949
    ],
)
def test_malformed_csv_is_a_clear_error(kb, tmp_path, content):
    (tmp_path / "임부금기.csv").write_bytes(content)
    with pytest.raises(KmedError) as info:
        import_dur(tmp_path, kb=kb, write=False)
    assert "임부금기.csv" in info.value.message and info.value.fix


def test_one_bad_file_among_good_ones_is_skipped_with_a_warning(kb, tmp_path):
    good = next(FIXTURE.glob("*임부금기*.csv"))
    (tmp_path / good.name).write_bytes(good.read_bytes())
    (tmp_path / "노인주의.csv").write_bytes(b"\x00\x00 not a csv")
    report = import_dur(tmp_path, kb=kb, write=False)
    assert [t.table for t in report.tables] == ["pregnancy"]
    assert any("노인주의.csv" in w for w in report.warnings)


def test_xlsx_needs_openpyxl_or_says_how_to_convert(kb, tmp_path):
    try:
        import openpyxl
    except ImportError:
        (tmp_path / "임부금기.xlsx").write_bytes(b"PK\x03\x04 not really")
        with pytest.raises(KmedError) as info:
            import_dur(tmp_path, kb=kb, write=False)
        assert "openpyxl" in info.value.message and "CSV" in info.value.fix
        return
    _need(kb, "drug.isotretinoin")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["성분명", "성분코드", "금기등급", "상세정보"])
    sheet.append(["isotretinoin", "T1", 1, "시험용 설명"])
    book.save(tmp_path / "임부금기.xlsx")
    report = import_dur(tmp_path, kb=kb, write=False)
    assert report.tables[0].table == "pregnancy" and report.tables[0].matched == 1


def test_cli_json_report_and_plain_error(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = tmp_path / "dur.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "kmed.cli.main",
            "kg",
            "import-dur",
            str(FIXTURE),
            "--out",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["edges_written"] == len(_edges(out)) > 0
    assert {t["label"] for t in data["tables"]} <= set(TABLES.values())

    missing = subprocess.run(
        [sys.executable, "-m", "kmed.cli.main", "kg", "import-dur", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert missing.returncode == 2
    assert "DUR 폴더를 찾을 수 없어요" in missing.stderr and "Traceback" not in missing.stderr


# --- the public repackaging in ../shared (coverage report) ----------------------------------------


def test_kr_dur_kids_coverage(kb, tmp_path):
    if not KR_DUR_KIDS.is_dir():
        pytest.skip(f"{KR_DUR_KIDS} is absent")
    out = tmp_path / "dur.jsonl"
    report = import_dur(KR_DUR_KIDS, kb=kb, out_path=out)
    tables = {t.table: t for t in report.tables}
    assert set(tables) == set(TABLES), f"tables not recognised: {set(TABLES) - set(tables)}"
    assert all(t.rows > 0 for t in tables.values())
    assert not report.warnings
    totals = report.totals()
    print(
        f"\nkr_dur_kids: {totals['rows']} rows, {totals['matched']} matched to {report.kb_drugs} KB drugs "
        f"({totals['coverage_pct']}%), {report.edges_written} edges; "
        + ", ".join(f"{TABLES[k]} {t.matched}/{t.rows}" for k, t in tables.items())
    )
    assert report.edges_written == len(_edges(out)) > 0
    from kmed.kg.graph import build_graph, merge_extra_edges

    assert merge_extra_edges(build_graph(kb), tmp_path) == report.edges_written
