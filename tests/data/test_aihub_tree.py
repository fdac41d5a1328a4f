"""Real downloads: packed or extracted, split zips, CP949/NFD names, any root, junk files, bad zips."""

from __future__ import annotations

import io
import os
import shutil
import unicodedata
import zipfile
from pathlib import Path

import pytest
from aihub_fixture import fx

from kmed.data.aihub.config import PipelineConfig
from kmed.data.aihub.loading import load_records
from kmed.data.aihub.report import Report
from kmed.data.aihub.tree import ConcatReader, DownloadTree, norm_name


def _load(root: Path):
    report = Report()
    tree = DownloadTree(root, report)
    records = load_records(tree, PipelineConfig(), report)
    return records, report, tree


def _signature(records):
    return sorted((r.uid, r.prov.dataset, r.prov.aihub_split, r.dedupe_text()) for r in records)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    records, report, _ = _load(fx.build(tmp_path_factory.mktemp("extracted") / "aihub", "extracted"))
    return records, report


def test_fixture_counts_when_extracted(extracted):
    records, report = extracted
    assert report.found == {"essential": 21, "specialist": 4, "healthcare_qa": 5, "korean_passage": 3, "math_solution": 4, "interview": 3}
    kinds = {key: n for key, n in report.loaded.items()}
    assert kinds["essential/qa"] == 16 and kinds["essential/document"] == 3
    assert kinds["healthcare_qa/document"] == 2 and kinds["healthcare_qa/qa"] == 2
    assert report.skipped_by_reason() == {"bad_json": 1, "missing_field": 1, "mcq_unparsed": 1, "no_solution": 1, "no_answer_in_folder": 1}
    assert len(records) == 36


@pytest.mark.parametrize("variant", ["zipped", "messy"])
def test_packed_and_messy_downloads_give_the_same_records(tmp_path, extracted, variant):
    records, report, _ = _load(fx.build(tmp_path / "aihub", variant))
    assert _signature(records) == _signature(extracted[0])
    expected_skips = dict(extracted[1].skipped_by_reason())
    if variant == "messy":
        expected_skips["shadowed_folder"] = 1  # TL_내과/ extracted beside TL_내과.zip: read once
    assert report.skipped_by_reason() == expected_skips
    zipped_origin = {r.prov.file for r in records if r.uid == "essential:qa:101"}
    assert zipped_origin == {f"{fx.ESSENTIAL}/Training/02.라벨링데이터/TL_내과.zip/필수_101.json"}


def test_cp949_entry_names_are_repaired(tmp_path):
    root = fx.copy_fixture(tmp_path / "aihub")
    zip_path = fx.zip_folder(root / fx.ESSENTIAL / "Training/02.라벨링데이터/TL_내과", encoding="cp949")
    raw_names = zipfile.ZipFile(zip_path).namelist()
    assert not any("필수" in n for n in raw_names)  # what plain zipfile shows: cp437 mojibake
    records, _, _ = _load(root)
    files = {r.prov.file.rsplit("/", 1)[-1] for r in records if "TL_내과.zip" in r.prov.file}
    assert "필수_101.json" in files


def test_nfd_names_on_disk_and_in_zips_become_nfc(tmp_path, extracted):
    root = fx.copy_fixture(tmp_path / "aihub")
    fx.zip_folder(root / fx.SPECIALIST / "Training/02.라벨링데이터/TL_피부과", nfd=True)
    fx.to_nfd(root)
    assert any(unicodedata.is_normalized("NFD", p.name) and not unicodedata.is_normalized("NFC", p.name) for p in root.iterdir())
    records, _, _ = _load(root)
    assert _signature(records) == _signature(extracted[0])
    assert all(unicodedata.is_normalized("NFC", r.prov.file) for r in records)


def test_split_zip_parts_and_a_missing_part(tmp_path):
    root = fx.copy_fixture(tmp_path / "aihub")
    parts = fx.split_parts(fx.zip_folder(root / fx.ESSENTIAL / "Training/02.라벨링데이터/TL_내과"), parts=3)
    records, report, _ = _load(root)
    assert any(r.prov.file.endswith("TL_내과.zip/필수_101.json") for r in records)
    parts[1].unlink()
    records, report, _ = _load(root)
    assert report.skipped_by_reason()["missing_part"] == 1
    assert not any("TL_내과" in r.prov.file for r in records)
    assert any(r.prov.dataset == "specialist" for r in records)  # the rest still loads


def test_concat_reader_reads_and_seeks_across_parts(tmp_path):
    data = bytes(range(256)) * 5
    paths = []
    for i, piece in enumerate((data[:100], data[100:700], data[700:])):
        paths.append(tmp_path / f"x.part{i}")
        paths[-1].write_bytes(piece)
    reader = io.BufferedReader(ConcatReader(paths))
    assert reader.read() == data
    reader.seek(95)
    assert reader.read(10) == data[95:105]
    reader.seek(-5, io.SEEK_END)
    assert reader.read() == data[-5:]


@pytest.mark.parametrize(
    "sub",
    [
        fx.ESSENTIAL,  # inside the dataset: "1.데이터" holds no dataset name, the root's path does
        f"{fx.ESSENTIAL}/Training/02.라벨링데이터/TL_내과",  # a single label folder
    ],
)
def test_any_root_the_user_gives(tmp_path, sub):
    root = fx.copy_fixture(tmp_path / "aihub")
    records, report, _ = _load(root / sub)
    assert records and {r.prov.dataset for r in records} == {"essential"}
    assert any(r.prov.aihub_split == "Training" for r in records)


def test_root_may_be_one_zip_and_zips_may_nest(tmp_path, extracted):
    root = fx.build(tmp_path / "aihub", "zipped")
    whole = shutil.make_archive(str(tmp_path / "whole"), "zip", root)  # a zip of folders holding zips
    records, _, _ = _load(Path(whole))
    assert _signature(records) == _signature(extracted[0])


def test_underscores_instead_of_spaces_and_macos_junk(tmp_path, extracted):
    root = fx.copy_fixture(tmp_path / "aihub")
    top = root / "09.필수의료 의학지식 데이터"
    top.rename(root / "09.필수의료_의학지식_데이터")
    label = root / "09.필수의료_의학지식_데이터/3.개방데이터/1.데이터/Training/02.라벨링데이터/TL_내과"
    (label / "._필수_101.json").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (label / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "__MACOSX").mkdir()
    (root / "__MACOSX" / "._x.json").write_bytes(b"\x00")
    records, report, _ = _load(root)
    assert len(records) == len(extracted[0])
    assert report.skipped_by_reason() == extracted[1].skipped_by_reason()
    assert norm_name("TL 내과.zip") == norm_name("tl_내과") == "tl 내과"


def test_a_broken_zip_is_skipped_and_counted(tmp_path):
    root = fx.copy_fixture(tmp_path / "aihub")
    (root / fx.ESSENTIAL / "Training/02.라벨링데이터/TL_소아청소년과.zip").write_bytes(b"PK\x03\x04 truncated download")
    records, report, _ = _load(root)
    assert report.skipped_by_reason()["bad_zip"] == 1
    assert len(records) == 36


def test_inputs_fingerprint_lists_physical_files(tmp_path):
    root = fx.build(tmp_path / "aihub", "messy")
    _, _, tree = _load(root)
    names = [f.path for f in tree.inputs()]
    assert any(n.endswith("TS_국문_의학_교과서.zip.part2") for n in names)
    assert not any("/TL_내과/" in n for n in names)  # the shadowed extracted folder is not an input


def test_an_unreadable_folder_is_reported_not_fatal(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can read any folder")
    root = fx.copy_fixture(tmp_path / "aihub")
    locked = root / fx.SPECIALIST / "Training"
    locked.chmod(0)
    try:
        records, report, _ = _load(root)
    finally:
        locked.chmod(0o755)
    assert report.skipped_by_reason()["read_error"] == 1
    assert any(r.prov.dataset == "essential" for r in records)


def test_a_file_that_vanishes_after_the_walk_is_reported(tmp_path):
    root = fx.copy_fixture(tmp_path / "aihub")
    report = Report()
    tree = DownloadTree(root, report)
    tree.plan()
    (root / fx.ESSENTIAL / "Training/02.라벨링데이터/TL_내과/필수_102.json").unlink()
    records = load_records(tree, PipelineConfig(), report)
    assert report.skipped_by_reason()["read_error"] == 1
    assert "essential:qa:102" not in {r.uid for r in records} and "essential:qa:101" in {r.uid for r in records}
