"""Start-up reads only the built index: no YAML parsing, no Kiwi analysis of the dictionary, staleness by
file hashes, clear errors for old or corrupt indexes, and a light, quiet default path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kmed.data.kb import combined_hash, kb_file_hashes
from kmed.retrieval.config import DenseConfig, RetrievalConfig

MINI = Path(__file__).parents[1] / "fixtures" / "kb_mini"
FAST = RetrievalConfig(dense=DenseConfig(train_steps=40))
# Never imported by answering with the extractive composer or by rebuilding an index.
HEAVY = ("bitsandbytes", "peft", "langchain", "langchain_core", "matplotlib", "sentence_transformers", "transformers",
         "wandb", "mlflow", "tensorboard")
PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def built(tmp_path_factory, mini_kb):
    from kmed.retrieval.index import build_index

    folder = tmp_path_factory.mktemp("startup") / "default"
    build_index(mini_kb, folder, FAST)
    return folder


def _no_parsing(monkeypatch):
    """Make YAML parsing and Kiwi analysis of dictionary keys fail loudly, so loading must do without them."""
    import yaml

    from kmed.kg.terms import TermDictionary

    def forbidden(*args, **kwargs):
        raise AssertionError("start-up must not do this")

    monkeypatch.setattr(yaml, "safe_load", forbidden)
    monkeypatch.setattr(yaml, "load", forbidden)
    monkeypatch.setattr(TermDictionary, "key_of", forbidden)
    monkeypatch.setattr(TermDictionary, "_noun_compounds", forbidden)


def test_load_reads_only_the_index(built, mini_kb, monkeypatch):
    from kmed import Assistant
    from kmed.kg.terms import TermDictionary
    fresh = TermDictionary.from_kb(mini_kb)  # computed the slow way, before analysis is forbidden
    _no_parsing(monkeypatch)
    assistant = Assistant.load(kb_dir=MINI, index_dir=built, config=FAST, auto_build=False)
    terms = assistant.linker.terms
    assert terms.keys == fresh.keys and terms.user_words == fresh.user_words and terms.trie == fresh.trie
    assert terms.dict_words == fresh.dict_words
    kb = assistant.kb  # the KB comes from the index's snapshot, equal to the parsed one
    assert kb.red_flags == mini_kb.red_flags and kb.conditions == mini_kb.conditions and kb.sources == mini_kb.sources
    assert kb.origin == mini_kb.origin and kb.content_hash() == mini_kb.content_hash()
    reply = assistant.ask("가슴이 쥐어짜듯 아프고 식은땀이 나요")
    assert reply.triage.level == "emergency"
    assert assistant.source_names(list(mini_kb.sources)[:1])


def test_a_turn_never_builds_the_splitters_kiwi(built, monkeypatch):
    """Index passages store their sentence ends and KG fact passages are built from sentences, so a
    turn quotes without splitting: the splitter's Kiwi (about 1 s to build) is never made in a first turn."""
    import kmed.text_ko as text_ko
    from kmed import Assistant

    assistant = Assistant.load(kb_dir=MINI, index_dir=built, config=FAST, auto_build=False)

    split: list[str] = []  # recorded, not raised: a turn turns a generator error into a fallback reply
    monkeypatch.setattr(text_ko, "split_sentences", lambda text, keep_lines=False: split.append(text) or [])
    monkeypatch.setattr(text_ko, "_splitter", lambda: split.append("_splitter"))
    for message in ["속이 쓰리고 신물이 올라와요", "타이레놀이랑 술 같이 먹어도 돼요?", "아스피린 먹는데 간이 안 좋아요",
                    "가슴이 쥐어짜듯 아프고 식은땀이 나요", "위식도역류질환은 어느 과에 가요?"]:
        reply = assistant.ask(message)
        assert reply.answer and reply.verification.get("fragments", 0) == 0
    assert [text for text in split if text.strip()] == []


def test_a_model_and_the_splitter_are_ready_when_loading_returns(built, monkeypatch):
    """A model is read at load (its ``warm_up``), and so is the splitter's Kiwi, with which the guard
    checks a model's sentences: the first answer pays for neither."""
    import kmed.text_ko as text_ko
    from kmed import Assistant
    from kmed.llm.base import GenerationResult, Generator

    class Model(Generator):
        name = "model"
        warmed = False

        def warm_up(self):
            self.warmed = True

        def generate(self, request):
            return GenerationResult(text="")

    monkeypatch.setattr(text_ko, "_kiwi", None)
    Assistant.load(kb_dir=MINI, index_dir=built, config=FAST, auto_build=False)
    assert text_ko._kiwi is None  # the composer quotes stored sentences: no splitter
    model = Model()
    Assistant.load(kb_dir=MINI, index_dir=built, config=FAST, auto_build=False, generator=model)
    assert text_ko._kiwi is not None and model.warmed


def test_staleness_is_decided_by_hashing_the_kb_files(built, tmp_path, monkeypatch):
    from kmed import Assistant
    from kmed.errors import IndexStaleError
    from kmed.retrieval.index import check_index

    kb_copy = tmp_path / "kb"
    shutil.copytree(MINI, kb_copy)
    _no_parsing(monkeypatch)
    assert check_index(built, combined_hash(kb_file_hashes(kb_copy)), FAST) is None
    path = kb_copy / "conditions" / "digestive.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("흔한 병이고", "매우 흔한 병이고"), encoding="utf-8")
    assert "stale" in check_index(built, combined_hash(kb_file_hashes(kb_copy)), FAST)
    with pytest.raises(IndexStaleError, match="kmed build index"):
        Assistant.load(kb_dir=kb_copy, index_dir=built, config=FAST, auto_build=False)
    path.unlink()  # a removed file changes the digest too
    assert "stale" in check_index(built, combined_hash(kb_file_hashes(kb_copy)), FAST)


def test_an_index_of_an_older_format_is_reported_with_the_fix(built, tmp_path):
    from kmed import Assistant
    from kmed.errors import IndexStaleError
    from kmed.retrieval.index import FORMAT_VERSION, check_index

    copy = tmp_path / "default"
    shutil.copytree(built, copy)
    manifest = json.loads((copy / "manifest.json").read_text(encoding="utf-8"))
    manifest["inputs"]["format"] = FORMAT_VERSION - 1
    (copy / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert "format" in check_index(copy, combined_hash(kb_file_hashes(MINI)), FAST)
    with pytest.raises(IndexStaleError, match="kmed build index"):
        Assistant.load(kb_dir=MINI, index_dir=copy, config=FAST, auto_build=False)


@pytest.mark.parametrize("name, content", [("kb.json", "{not json"), ("terms.json", '{"entries": 3}'),
                                           ("kb.json", '{"sections": {"red_flags": [{"id": "bad"}]}, "origin": {}, "files": {}}')])
def test_a_corrupt_index_file_is_a_clear_error(built, tmp_path, name, content):
    from kmed import Assistant
    from kmed.errors import IndexStaleError

    copy = tmp_path / "default"
    shutil.copytree(built, copy)
    (copy / name).write_text(content, encoding="utf-8")
    with pytest.raises(IndexStaleError, match="손상") as error:
        Assistant.load(kb_dir=MINI, index_dir=copy, config=FAST, auto_build=False)
    assert error.value.fix and "kmed build index" in error.value.fix


def _run(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=PROJECT,
                          env={**os.environ, **(env or {})})


def test_answering_imports_nothing_heavy(built):
    code = f"""
import sys
from pathlib import Path
from kmed import Assistant
from kmed.retrieval.config import DenseConfig, RetrievalConfig
assistant = Assistant.load(kb_dir=Path({str(MINI)!r}), index_dir=Path({str(built)!r}),
                           config=RetrievalConfig(dense=DenseConfig(train_steps=40)), auto_build=False)
assistant.ask("역류성식도염이 있는데 가슴이 쓰리고 신물이 올라와요")
print(sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r} + ("torch", "bm25s"))))
"""
    done = _run(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_silent_rebuild_of_a_corrupt_index_is_light_and_quiet(built, tmp_path):
    """`kmed ask` over an index with a garbled kg.json rebuilds it and prints only the answer."""
    copy = tmp_path / "default"
    shutil.copytree(built, copy)
    (copy / "kg.json").write_text("{garbled", encoding="utf-8")
    config = tmp_path / "retrieval.yaml"
    config.write_text("dense:\n  train_steps: 40\n", encoding="utf-8")
    seen = tmp_path / "modules.json"
    code = f"""
import atexit, json, sys
atexit.register(lambda: open({str(seen)!r}, "w").write(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}}))))
sys.argv = ["kmed", "ask", "--json", "--index", {str(copy)!r}, "가슴이 쥐어짜듯 아프고 식은땀이 나요"]
from kmed.cli.main import main
main()
"""
    done = _run(code, {"KMED_KB_DIR": str(MINI), "KMED_RETRIEVAL_CONFIG": str(config)})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["triage"]["level"] == "emergency"
    assert done.stderr.strip() == ""  # no third-party warning above (or below) the answer
    assert not set(json.loads(seen.read_text())) & set(HEAVY)
    json.loads((copy / "kg.json").read_text(encoding="utf-8"))  # rebuilt


def test_third_party_warnings_never_reach_the_terminal():
    code = """
import logging, warnings
from kmed.cli.main import quiet_third_party
quiet_third_party()
logging.getLogger("bitsandbytes.backends.cpu.ops").warning("Failed to load CPU gemm_4bit_forward")
warnings.warn("a library's warning")
logging.getLogger("kmed.agent.assistant").warning("kmed의 경고")
"""
    done = _run(code, {"KMED_DEBUG": ""})
    assert done.returncode == 0 and done.stderr.strip() == "kmed의 경고"


def test_a_missing_extra_names_what_to_install(monkeypatch):
    from kmed.errors import KmedError, MissingExtraError, require_extra

    monkeypatch.setitem(sys.modules, "peft", None)  # simulate a machine without it
    with pytest.raises(MissingExtraError) as missing:
        require_extra("peft", "lora", "LoRA 학습")
    assert isinstance(missing.value, KmedError) and isinstance(missing.value, ImportError)
    assert "kmed[lora]" in missing.value.fix
