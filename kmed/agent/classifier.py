"""A learned message classifier: how urgent a message sounds, and what kind of message it is.

    kmed build classifier                       # trains from data/triage/*.jsonl into indexes/triage/
    python -m kmed.agent.classifier "아빠가 갑자기 말을 버벅거려요"

Two heads share one feature map:

- ``triage``: emergency | urgent | self_harm | none;
- ``intent``: symptom_report | info_question | self_care_question | drug_question |
  misinformation | harmful | self_harm | out_of_scope | greeting | other_emotional.

Features tolerate wording: hashed character 1–4-grams of the message with spaces removed (so
"숨이안쉬어져요" and "숨이 안 쉬어져요" share them), character 2–3-grams inside words, and whole words,
each sublinear-tf weighted and L2-normalised. The model is scikit-learn's logistic regression,
trained deterministically at build time from utterances in the repo (written by people who never
saw the evaluation sets); at run time only numpy is used, so loading adds a few milliseconds and a
prediction takes well under a millisecond. The classifier may only raise a triage level or turn a
clarifying question into a direct answer: the KB rules remain the floor (``kmed.agent.policy``).
"""

from __future__ import annotations

import json
import re
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kmed.artifacts import atomic_folder, files_sha256, read_jsonl, read_manifest, write_manifest
from kmed.errors import KmedError
from kmed.paths import PROJECT_ROOT, default_index_dir

FORMAT_VERSION = 2
DIM = 1 << 18
TRIAGE_LABELS = ["emergency", "urgent", "self_harm", "none"]
INTENT_LABELS = ["symptom_report", "info_question", "self_care_question", "drug_question", "misinformation",
                 "harmful", "self_harm", "out_of_scope", "greeting", "other_emotional"]
HEADS = {"triage": TRIAGE_LABELS, "intent": INTENT_LABELS}
DEFAULT_DATA_DIR = PROJECT_ROOT / "data" / "triage"
MODEL_FILE = "classifier.npz"
# Per head: (C, class_weight) of the logistic regression, chosen on the dev split of the
# consultation set (never the locked test split). Triage: unweighted, so the large non-urgent
# classes keep their prior; intent: balanced, so the small intents (greeting, harmful) are heard.
HEAD_SETTINGS = {"triage": (16.0, None), "intent": (16.0, "balanced")}
_WORD = re.compile(r"[가-힣]+|[a-z]+|[0-9]+")


def _normalize(text: str) -> str:
    text = unicodedata.normalize("NFC", text or "").lower()
    return re.sub(r"([ㅋㅎㅠㅜ!?.~])\1+", r"\1\1", text)  # "ㅠㅠㅠㅠ" and "!!!!" count once


def features(text: str) -> dict[int, float]:
    """Hashed, sublinear-tf, L2-normalised n-gram features of one message."""
    text = _normalize(text)
    squashed = re.sub(r"\s+", "", text)
    counts: dict[int, float] = {}

    def add(kind: str, gram: str) -> None:
        key = zlib.crc32(f"{kind}{gram}".encode()) & (DIM - 1)
        counts[key] = counts.get(key, 0.0) + 1.0

    for n in (1, 2, 3, 4):
        for i in range(len(squashed) - n + 1):
            add(f"s{n}", squashed[i : i + n])
    for word in _WORD.findall(text):
        add("w", word)
        padded = f"<{word}>"
        for n in (2, 3):
            for i in range(len(padded) - n + 1):
                add(f"b{n}", padded[i : i + n])
    values = {k: 1.0 + np.log(v) for k, v in counts.items()}
    norm = float(np.sqrt(sum(v * v for v in values.values()))) or 1.0
    return {k: v / norm for k, v in values.items()}


@dataclass
class Prediction:
    triage: dict[str, float]
    intent: dict[str, float]

    def top(self, head: str) -> tuple[str, float]:
        probs = getattr(self, head)
        label = max(probs, key=probs.get)
        return label, probs[label]


class MessageClassifier:
    """Per head: labels, weights (labels × DIM; float16 once saved) and intercepts; plus one centroid per urgent
    situation (the L2-normalised mean of its training utterances) with the rule or condition it is."""

    def __init__(self, heads: dict[str, tuple[list[str], np.ndarray, np.ndarray]], centroids=None,
                 targets: list[str] | None = None, levels: list[str] | None = None):
        self.heads = heads
        self.centroids = centroids  # scipy-free CSR triple (data, indices, indptr), a row per target, or None
        self.targets = targets or []
        self.levels = np.array(levels or [])
        if centroids is not None:  # feature-major order, so a query reads only the rows sharing its features
            data, indices, indptr = centroids
            order = np.argsort(indices, kind="stable")
            self._by_feature = (indices[order], np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))[order], data[order])

    def nearest_targets(self, text: str, level: str | None = None, k: int = 2) -> list[tuple[str, float]]:
        """The ``k`` rules or conditions whose centroid is most similar (cosine) to ``text``, best first."""
        if self.centroids is None or not self.targets:
            return []
        feature_ids, rows, values = self._by_feature
        feats = features(text)
        keys = np.fromiter(feats, dtype=np.int64, count=len(feats))
        starts, ends = np.searchsorted(feature_ids, keys, "left"), np.searchsorted(feature_ids, keys, "right")
        scores = np.zeros(len(self.targets), dtype=np.float32)
        for key, start, end in zip(keys, starts, ends, strict=True):
            if end > start:
                np.add.at(scores, rows[start:end], values[start:end] * feats[int(key)])
        if level:
            scores = np.where(self.levels == level, scores, -1.0)
        order = np.argsort(-scores, kind="stable")[:k]
        return [(self.targets[i], float(scores[i])) for i in order if scores[i] > 0]

    def predict(self, text: str) -> Prediction:
        feats = features(text)
        keys = np.fromiter(feats.keys(), dtype=np.int64, count=len(feats))
        vals = np.fromiter(feats.values(), dtype=np.float32, count=len(feats))
        out = {}
        for head, (labels, weights, bias) in self.heads.items():
            # Weights stay float16 in memory; only the message's columns are widened (exactly) to float32.
            logits = weights[:, keys].astype(np.float32) @ vals + bias
            logits = logits - logits.max()
            probs = np.exp(logits) / np.exp(logits).sum()
            out[head] = {label: float(p) for label, p in zip(labels, probs, strict=True)}
        return Prediction(triage=out["triage"], intent=out["intent"])

    def save(self, folder: Path) -> None:
        arrays = {}
        for head, (_, weights, bias) in self.heads.items():
            arrays[f"{head}_weights"] = weights.astype(np.float16)
            arrays[f"{head}_bias"] = bias.astype(np.float32)
        if self.centroids is not None:
            arrays["centroids_data"], arrays["centroids_indices"], arrays["centroids_indptr"] = self.centroids
        # Uncompressed: float16 weights barely compress, and inflating them cost ~0.1 s of every start-up.
        np.savez(folder / MODEL_FILE, **arrays)
        labels = {h: names for h, (names, _, _) in self.heads.items()}
        labels.update(targets=self.targets, levels=self.levels.tolist())
        (folder / "labels.json").write_text(json.dumps(labels, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> MessageClassifier:
        labels = json.loads((folder / "labels.json").read_text(encoding="utf-8"))
        with np.load(folder / MODEL_FILE) as data:
            heads = {h: (labels[h], data[f"{h}_weights"], data[f"{h}_bias"]) for h in HEADS}
            centroids = ((data["centroids_data"], data["centroids_indices"], data["centroids_indptr"])
                         if "centroids_data" in data else None)
        for head, (names, weights, bias) in heads.items():
            if weights.shape != (len(names), DIM) or bias.shape != (len(names),):
                raise ValueError(f"{head} head has shape {weights.shape}")
        return cls(heads, centroids, labels.get("targets"), labels.get("levels"))


def read_training(data_dir: Path = DEFAULT_DATA_DIR) -> list[dict]:
    """Every ``{"text", "triage"?, "intent"?}`` line of ``data_dir/*.jsonl``; bad lines name their file and line."""
    rows = []
    files = sorted(Path(data_dir).glob("*.jsonl"))
    if not files:
        raise KmedError(f"분류기 학습 데이터가 없어요: {data_dir}", "data/triage/*.jsonl 파일이 있는지 확인하세요 (git checkout).")
    for path in files:
        rows.extend(read_jsonl(path, _training_row, '{"text": …, "triage": …, "intent": …}'))
    return rows


def _training_row(row: dict) -> dict:
    assert isinstance(row["text"], str) and row["text"].strip()
    assert row.get("triage") in (None, *TRIAGE_LABELS), f"triage {row.get('triage')}"
    assert row.get("intent") in (None, *INTENT_LABELS), f"intent {row.get('intent')}"
    return row


def _matrix(texts: list[str]):
    from scipy.sparse import csr_matrix

    indptr, indices, values = [0], [], []
    for text in texts:
        feats = features(text)
        indices.extend(feats.keys())
        values.extend(feats.values())
        indptr.append(len(indices))
    return csr_matrix((np.array(values, dtype=np.float32), np.array(indices), np.array(indptr)), shape=(len(texts), DIM))


def train(rows: list[dict]) -> MessageClassifier:
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError as exc:  # pragma: no cover - scikit-learn is a declared dependency
        raise KmedError("scikit-learn이 없어 분류기를 학습할 수 없어요.", "pip install scikit-learn") from exc
    heads = {}
    for head, labels in HEADS.items():
        subset = [r for r in rows if r.get(head)]
        x = _matrix([r["text"] for r in subset])
        y = np.array([labels.index(r[head]) for r in subset])
        c_value, class_weight = HEAD_SETTINGS[head]
        model = LogisticRegression(C=c_value, max_iter=3000, class_weight=class_weight, random_state=0)
        model.fit(x, y)
        weights = np.zeros((len(labels), DIM), dtype=np.float32)
        bias = np.zeros(len(labels), dtype=np.float32)
        weights[model.classes_] = model.coef_
        bias[model.classes_] = model.intercept_
        bias[[i for i in range(len(labels)) if i not in set(model.classes_)]] = -1e4  # a label with no data never wins
        heads[head] = (labels, weights, bias)
    return MessageClassifier(heads, *_centroids([r for r in rows if r.get("target") and r.get("triage") in ("emergency", "urgent")]))


def _centroids(rows: list[dict]):
    """One L2-normalised mean feature row per target, its most frequent level, as a CSR triple."""
    from collections import Counter

    from scipy.sparse import csr_matrix, vstack

    targets = sorted({r["target"] for r in rows})
    matrix = _matrix([r["text"] for r in rows])
    centroids, levels = [], []
    for target in targets:
        picked = [i for i, r in enumerate(rows) if r["target"] == target]
        mean = csr_matrix(matrix[picked].sum(axis=0))
        mean = mean / (np.sqrt(mean.multiply(mean).sum()) or 1.0)
        centroids.append(csr_matrix(mean, dtype=np.float32))
        levels.append(Counter(rows[i]["triage"] for i in picked).most_common(1)[0][0])
    stacked = vstack(centroids).tocsr() if centroids else csr_matrix((0, DIM), dtype=np.float32)
    triple = (stacked.data.astype(np.float32), stacked.indices.astype(np.int32), stacked.indptr.astype(np.int32))
    return triple, targets, levels


def default_folder() -> Path:
    return default_index_dir() / "triage"


def build(folder: Path | None = None, data_dir: Path = DEFAULT_DATA_DIR) -> dict:
    """Train and write the classifier atomically; returns its manifest."""
    folder = Path(folder or default_folder())
    rows = read_training(data_dir)
    model = train(rows)
    manifest = {"format": FORMAT_VERSION, "inputs": files_sha256(sorted(Path(data_dir).glob("*.jsonl"))),
                "counts": {h: sum(1 for r in rows if r.get(h)) for h in HEADS}, "settings": HEAD_SETTINGS, "dim": DIM}
    with atomic_folder(folder) as tmp:
        model.save(tmp)
        write_manifest(tmp, manifest)
    return manifest


def problem(folder: Path, data_dir: Path = DEFAULT_DATA_DIR) -> str | None:
    """Why the built classifier cannot be used as it is ("missing", "stale"), or None."""
    manifest = read_manifest(folder)
    if manifest is None or not (folder / MODEL_FILE).exists():
        return "missing"
    if manifest.get("format") != FORMAT_VERSION or manifest.get("inputs") != files_sha256(sorted(Path(data_dir).glob("*.jsonl"))):
        return "stale"
    return None


def load_or_build(folder: Path | None = None, data_dir: Path = DEFAULT_DATA_DIR, auto_build: bool = True) -> MessageClassifier:
    """The classifier, rebuilt when missing, stale or corrupt (``auto_build``), else a clear error."""
    folder = Path(folder or default_folder())
    issue = problem(folder, data_dir)
    if issue and not auto_build:
        raise KmedError(f"메시지 분류기({folder})가 {issue} 상태예요.", "kmed build classifier 로 다시 만드세요.")
    if issue:
        build(folder, data_dir)
    try:
        return MessageClassifier.load(folder)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:  # a truncated or garbled file
        if not auto_build:
            raise KmedError(f"메시지 분류기 파일이 손상됐어요 ({exc}).", "kmed build classifier 로 다시 만드세요.") from exc
        build(folder, data_dir)
        return MessageClassifier.load(folder)


if __name__ == "__main__":  # python -m kmed.agent.classifier "메시지" …
    import sys

    classifier = load_or_build()
    for message in sys.argv[1:]:
        p = classifier.predict(message)
        print(message, "→", p.top("triage"), p.top("intent"))
