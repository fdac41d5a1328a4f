"""``kmed data prepare``: a user's AI Hub download → passages, KG edges, training mix and eval sets.

    result = prepare(Path("data/raw/aihub"), Path("data/processed"))
    result.unchanged          # True when inputs, config and KB match the last run: nothing was redone

Steps: find files → load → scrub PII → dedupe (exact, near) → split → passages (+ entity links)
→ KG co-occurrence edges → grounded SFT mix → eval sets. Everything is written to a staging folder
inside ``out`` and moved into place at the end; ``manifest.json`` goes last, so an interrupted run
leaves the previous outputs whole and is redone next time.

Entity linking belongs to the KG floor above this one, so it comes in as a parameter: ``linker``
(``text → entity ids``) or ``make_linker`` (``KnowledgeBase → linker``, built only when the run is
not skipped). The CLI passes ``make_linker`` built on ``kmed.kg.linker.EntityLinker``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from kmed.artifacts import MANIFEST, read_manifest, swap_in, write_jsonl, write_manifest
from kmed.data.aihub.config import PipelineConfig
from kmed.data.aihub.dedupe import dedupe
from kmed.data.aihub.evalsets import mcq_item, open_item
from kmed.data.aihub.ingest import Grounder, Linker, build_passages, cooccurrence_edges, link_passages
from kmed.data.aihub.loading import load_records
from kmed.data.aihub.mix import build_mix
from kmed.data.aihub.records import QA, Dialogue, Document, Exercise, Record
from kmed.data.aihub.report import Report
from kmed.data.aihub.split import assign_splits
from kmed.data.aihub.tree import DownloadTree
from kmed.data.passages import write_jsonl as write_passages
from kmed.data.pii import redact
from kmed.errors import KmedError

if TYPE_CHECKING:
    from kmed.data.kb import KnowledgeBase

PIPELINE_VERSION = "1"
EDGES_FILE = "kg_edges/aihub_cooccurrence.jsonl"
OWNED_DIRS = ("mix", "eval")  # replaced as a whole; kg_edges/ is shared, so only our file there is
OWNED_FILES = ("passages.jsonl", EDGES_FILE, "report.json", "skipped.jsonl")
_MEDICAL = ("essential", "specialist")


class Progress:
    """Progress hooks; the CLI draws bars with rich, the API stays quiet."""

    def start(self, label: str, total: int | None) -> None: ...

    def advance(self, n: int = 1) -> None: ...

    def stop(self) -> None: ...


@dataclass
class PrepareResult:
    out_dir: Path
    report: Report
    unchanged: bool
    manifest: dict


def _kmed_version() -> str:
    try:
        from importlib.metadata import version

        return version("kmed")
    except Exception:  # noqa: BLE001 - running from a checkout without metadata
        return "dev"


def _fingerprint(tree: DownloadTree, config: PipelineConfig, linking: str) -> dict:
    inputs = tree.inputs()
    listing = "\n".join(f"{f.path}\t{f.size}\t{f.mtime_ns}" for f in inputs)
    return {
        "pipeline_version": PIPELINE_VERSION,
        "kmed_version": _kmed_version(),
        "aihub_dir": str(tree.root.resolve()),
        "inputs_sha256": hashlib.sha256(listing.encode("utf-8")).hexdigest(),
        "input_files": len(inputs),
        "input_bytes": sum(f.size for f in inputs),
        "config_sha256": config.digest(),
        "linking": linking,  # "off", "custom" or "kb:<KB content hash>": a KB edit redoes the links
    }


def _unchanged(out_dir: Path, fingerprint: dict) -> dict | None:
    manifest = read_manifest(out_dir)
    if manifest is None or manifest.get("fingerprint") != fingerprint:
        return None
    if not all((out_dir / name).exists() for name in manifest.get("outputs", {})):
        return None
    return manifest


def _load_kb(kb_dir: Path | None, report: Report) -> KnowledgeBase | None:
    """The KB for entity linking, or ``None`` (with a note) when it cannot be read."""
    from kmed.data.kb import load_kb_or_fail

    try:
        return load_kb_or_fail(kb_dir)
    except Exception as exc:  # noqa: BLE001 - a broken KB must not stop data preparation
        report.note(f"지식베이스를 읽지 못해 개체 연결 없이 진행해요 ('kmed kb validate'로 확인하세요): {str(exc).splitlines()[0][:200]}")
        return None


def scrub_record(record: Record, report: Report) -> None:
    """Redact PII in every text field of ``record`` in place; count what was found."""

    def clean(text: str) -> str:
        new, kinds = redact(text)
        for kind in kinds:
            report.pii[kind] += 1
        return new

    for f in fields(record):
        value = getattr(record, f.name)
        if f.name in ("uid", "prov", "split", "domain", "meta"):
            continue
        if isinstance(value, str):
            setattr(record, f.name, clean(value))
        elif isinstance(value, dict):
            setattr(record, f.name, {k: clean(v) if isinstance(v, str) else v for k, v in value.items()})
        elif isinstance(value, list) and f.name == "turns":
            setattr(record, f.name, [(role, clean(text)) for role, text in value])


def dedupe_all(records: list[Record], config: PipelineConfig, report: Report) -> list[Record]:
    kept: list[Record] = []
    for kind in (Document, QA, Dialogue, Exercise):
        # uid order: the same record survives whether the download was zipped or extracted.
        group = sorted((r for r in records if type(r) is kind), key=lambda r: r.uid)
        unique, stats = dedupe(
            group,
            text_of=lambda r: r.dedupe_text(),
            uid_of=lambda r: r.uid,
            near_threshold=config.dedupe.near_threshold,
            num_perm=config.dedupe.num_perm,
            bands=config.dedupe.bands,
            shingle=config.dedupe.shingle,
        )
        report.deduplicated["exact"] += stats.exact
        report.deduplicated["near"] += stats.near
        report.duplicate_pairs.extend(stats.pairs)
        kept.extend(unique)
    return kept


def _publish(staging: Path, out_dir: Path) -> None:
    """Move staged outputs into ``out_dir``: our folders swapped whole, single files replaced, manifest last."""
    for name in OWNED_DIRS:
        if (staging / name).exists():
            swap_in(staging / name, out_dir / name)
    for name in OWNED_FILES + (MANIFEST,):
        if (staging / name).exists():
            (out_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / name).replace(out_dir / name)


def prepare(
    aihub_dir: Path,
    out_dir: Path,
    config: PipelineConfig | None = None,
    link: bool = True,
    force: bool = False,
    kb_dir: Path | None = None,
    progress: Progress | None = None,
    on_stage: Callable[[str], None] | None = None,
    linker: Linker | None = None,
    make_linker: Callable[[KnowledgeBase], Linker] | None = None,
) -> PrepareResult:
    """Run the pipeline (see the module docstring).

    Entity links come from ``linker`` (``text → entity ids``) or else from ``make_linker`` applied to
    the KB in ``kb_dir``; with neither, or with ``link=False``, passages are not linked.
    """
    config = config or PipelineConfig.load()
    progress = progress or Progress()
    stage = on_stage or (lambda _: None)
    aihub_dir, out_dir = Path(aihub_dir), Path(out_dir)
    if not aihub_dir.exists():
        raise KmedError(f"AI Hub 데이터 폴더를 찾을 수 없어요: {aihub_dir}", "--aihub-dir 에 내려받은 폴더 경로를 주세요.")
    report = Report()
    tree = DownloadTree(aihub_dir, report)
    if not tree.plan():
        raise KmedError(
            f"{aihub_dir} 아래에서 JSON 파일이나 zip 파일을 찾지 못했어요.",
            "AI Hub에서 받은 폴더(예: '09.필수의료 의학지식 데이터')나 그 상위 폴더를 지정해 주세요.",
        )
    if link and linker is None and make_linker is None:
        report.note("개체 연결기가 없어 개체 연결과 KG 동시출현 간선 없이 진행해요. 연결하려면 'kmed data prepare'로 실행하세요.")
    kb = _load_kb(kb_dir, report) if link and linker is None and make_linker is not None else None
    linking = "custom" if link and linker is not None else (f"kb:{kb.content_hash()}" if kb else "off")
    fingerprint = _fingerprint(tree, config, linking)
    if not force and (manifest := _unchanged(out_dir, fingerprint)):
        return PrepareResult(out_dir, report, True, manifest)
    linker = (linker if link else None) or (make_linker(kb) if kb and make_linker else None)

    stage("load")
    progress.start("파일 읽기", tree.count_json())
    records = load_records(tree, config, report, on_file=lambda _: progress.advance())
    progress.stop()
    for record in records:
        scrub_record(record, report)
    records = dedupe_all(records, config, report)
    counts = assign_splits(records, config.splits.validation, config.splits.test, config.splits.aihub_validation_as, config.splits.salt)
    for dataset, by_split in counts.items():
        report.per_split[dataset].update(by_split)

    stage("passages")
    documents_and_qa = sorted((r for r in records if isinstance(r, (Document, QA))), key=lambda r: r.uid)
    passages = build_passages(documents_and_qa, config.passages.max_chars, config.passages.qa_answer_splits)
    if linker:
        progress.start("개체 연결", len(passages))
        link_passages(passages, linker, progress.advance)
        progress.stop()
    edges = cooccurrence_edges(passages, config.kg.min_count, config.kg.max_examples) if linker else []

    stage("mix")
    grounder = Grounder(passages, config.grounding.top_k, config.grounding.min_overlap)
    mix = build_mix(sorted(records, key=lambda r: r.uid), config.mix, grounder)
    for note in mix.notes:
        report.note(note)
    held_out = sorted((r for r in records if isinstance(r, QA) and r.prov.dataset in _MEDICAL and r.split == "test"), key=lambda r: r.uid)

    stage("write")
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out_dir))
    try:
        outputs: dict[str, int] = {}
        outputs["passages.jsonl"] = write_passages(passages, staging / "passages.jsonl")
        outputs[EDGES_FILE] = write_jsonl(staging / EDGES_FILE, edges)
        for bucket, by_split in mix.files.items():
            for split, examples in by_split.items():
                outputs[f"mix/{bucket}/{split}.jsonl"] = write_jsonl(staging / "mix" / bucket / f"{split}.jsonl", examples)
        mcq = [mcq_item(q) for q in held_out if q.q_type == "mcq"]
        open_ = [open_item(q, config.eval.max_key_facts) for q in held_out if q.q_type in ("short", "descriptive")]
        outputs["eval/medical_mcq.jsonl"] = write_jsonl(staging / "eval" / "medical_mcq.jsonl", mcq)
        outputs["eval/medical_open.jsonl"] = write_jsonl(staging / "eval" / "medical_open.jsonl", open_)
        outputs["skipped.jsonl"] = write_jsonl(staging / "skipped.jsonl", (s.to_dict() for s in report.skips))
        report.written = dict(outputs)
        report.mix = {"available_train": mix.available, "taken_train": mix.taken, "shares": mix.shares()}
        report_data = report.to_dict()
        (staging / "report.json").write_text(json.dumps(report_data, ensure_ascii=False, indent=2), encoding="utf-8")
        outputs["report.json"] = 1
        manifest = {"fingerprint": fingerprint, "outputs": outputs, "linked": linker is not None, "counts": report_data}
        write_manifest(staging, manifest)
        _publish(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return PrepareResult(out_dir, report, False, manifest)
