"""``kmed.artifacts``: atomic folders and files, manifests."""

from __future__ import annotations

import json

import pytest

from kmed.artifacts import (
    atomic_file,
    atomic_folder,
    read_jsonl,
    read_manifest,
    swap_in,
    write_jsonl,
    write_manifest,
)
from kmed.errors import KmedError


def test_atomic_folder_swaps_in_on_success_and_keeps_the_old_on_failure(tmp_path):
    target = tmp_path / "index"
    with atomic_folder(target) as tmp:
        (tmp / "a.txt").write_text("one", encoding="utf-8")
        write_manifest(tmp, {"version": 1})
    assert (target / "a.txt").read_text(encoding="utf-8") == "one"
    assert read_manifest(target) == {"version": 1}
    with pytest.raises(RuntimeError), atomic_folder(target) as tmp:
        (tmp / "a.txt").write_text("two", encoding="utf-8")
        raise RuntimeError("build failed")
    assert (target / "a.txt").read_text(encoding="utf-8") == "one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]


def test_read_manifest_of_a_folder_without_one_is_none(tmp_path):
    assert read_manifest(tmp_path) is None
    (tmp_path / "manifest.json").write_text("{broken", encoding="utf-8")
    assert read_manifest(tmp_path) is None


def test_swap_in_creates_the_parent_and_replaces_the_old_folder(tmp_path):
    staged = tmp_path / "staged"
    staged.mkdir()
    (staged / "x").write_text("new", encoding="utf-8")
    swap_in(staged, tmp_path / "deep" / "out")
    assert (tmp_path / "deep" / "out" / "x").read_text(encoding="utf-8") == "new"
    again = tmp_path / "again"
    again.mkdir()
    swap_in(again, tmp_path / "deep" / "out")
    assert list((tmp_path / "deep" / "out").iterdir()) == []
    assert sorted(p.name for p in (tmp_path / "deep").iterdir()) == ["out"]


def test_write_jsonl_is_atomic(tmp_path):
    out = tmp_path / "edges" / "e.jsonl"
    assert write_jsonl(out, [{"a": "가"}, {"b": 2}]) == 2
    assert [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()] == [{"a": "가"}, {"b": 2}]

    def broken():
        yield {"c": 3}
        raise ValueError("half way")

    with pytest.raises(ValueError):
        write_jsonl(out, broken())
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2  # the old file is whole
    assert [p.name for p in out.parent.iterdir()] == ["e.jsonl"]  # no temp file left behind


def test_atomic_file_writes_text(tmp_path):
    with atomic_file(tmp_path / "note.txt") as handle:
        handle.write("안녕")
    assert (tmp_path / "note.txt").read_text(encoding="utf-8") == "안녕"


def test_read_jsonl_parses_each_line_and_names_a_bad_one(tmp_path):
    path = tmp_path / "rows.jsonl"
    write_jsonl(path, [{"text": "열이 나요"}, {"text": "기침해요"}])
    assert read_jsonl(path, lambda row: row["text"], '{"text": …}') == ["열이 나요", "기침해요"]
    path.write_text('{"text": "열이 나요"}\n\n{"txt": "오타"}\n', encoding="utf-8")
    with pytest.raises(KmedError, match=r"rows.jsonl:3번째 줄") as caught:
        read_jsonl(path, lambda row: row["text"], '{"text": …}')
    assert '{"text": …}' in caught.value.fix
    with pytest.raises(KmedError, match="파일이 없어요") as missing:
        read_jsonl(tmp_path / "nope.jsonl", dict, "{}", "kmed train make-sft 로 만드세요.")
    assert "make-sft" in missing.value.fix


def test_read_yaml_config_defaults_errors_and_mapping(tmp_path):
    import pytest

    from kmed.artifacts import read_yaml_config
    from kmed.errors import ConfigError

    default = tmp_path / "default.yaml"
    assert read_yaml_config(None, default) == {}  # no file at the default: built-in defaults
    default.write_text("a: 1\n", encoding="utf-8")
    assert read_yaml_config(None, default) == {"a": 1}
    with pytest.raises(ConfigError, match="없어요"):
        read_yaml_config(tmp_path / "missing.yaml", default)
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1,\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="읽을 수 없어요"):
        read_yaml_config(bad, default)
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="키: 값"):
        read_yaml_config(listed, default)


def test_read_jsonl_lines_reports_every_bad_line(tmp_path):
    from kmed.artifacts import line_errors, read_jsonl_lines

    def parse(row, line_no):
        if "text" not in row:
            raise ValueError("text가 없어요")
        return (line_no, row["text"])

    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "a"}\n\nnot json\n{"x": 1}\n{"text": "b"}\n', encoding="utf-8")
    rows, errors = read_jsonl_lines(path, parse)
    assert rows == [(1, "a"), (5, "b")]
    assert errors[0].startswith(f"{path}:3: JSON이 아니에요") and errors[1] == f"{path}:4: text가 없어요"
    assert line_errors(errors) == "\n".join(errors)
    assert line_errors([f"e{i}" for i in range(12)]).splitlines()[-1] == "… 외 2개"
