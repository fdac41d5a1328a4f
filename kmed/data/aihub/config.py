"""Settings of ``kmed data prepare``: the mix, splits, dedupe, passages, grounding, KG and loaders.

The defaults here equal ``configs/data_mix.yaml`` (a test keeps them in step); the YAML carries the
reason for each value. ``PipelineConfig.load(path)`` reads a YAML and validates it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kmed.artifacts import read_yaml_config
from kmed.data.aihub.records import DATASETS
from kmed.data.aihub.split import AIHUB_VALIDATION_MODES
from kmed.errors import ConfigError
from kmed.paths import PROJECT_ROOT

DEFAULT_CONFIG_PATH = PROJECT_ROOT / "configs" / "data_mix.yaml"


@dataclass
class BucketConfig:
    ratio: float
    datasets: list[str]

    def __post_init__(self) -> None:
        if not 0 <= self.ratio <= 1:
            raise ConfigError(f"mix ratio must be between 0 and 1, got {self.ratio}")
        unknown = [d for d in self.datasets if d not in DATASETS]
        if unknown:
            raise ConfigError(f"unknown dataset key(s) {unknown} in the mix", f"use some of: {', '.join(DATASETS)}")


def _default_buckets() -> dict[str, BucketConfig]:
    return {
        "base_validation": BucketConfig(0.2, ["interview", "korean_passage"]),
        "compression": BucketConfig(0.3, ["math_solution"]),
        "medical": BucketConfig(0.5, ["essential", "specialist"]),
    }


@dataclass
class MixConfig:
    buckets: dict[str, BucketConfig] = field(default_factory=_default_buckets)
    max_repeat: float = 1.0
    max_train_records: int | None = None

    def __post_init__(self) -> None:
        if self.max_repeat < 1:
            raise ConfigError(f"mix.max_repeat must be at least 1 (1 = never repeat a record), got {self.max_repeat}")
        self.buckets = {k: v if isinstance(v, BucketConfig) else BucketConfig(**v) for k, v in self.buckets.items()}
        total = sum(b.ratio for b in self.buckets.values())
        if abs(total - 1.0) > 1e-6:
            raise ConfigError(f"mix ratios must add up to 1.0, they add up to {total:.3f}", "fix configs/data_mix.yaml › mix")
        seen: set[str] = set()
        for bucket in self.buckets.values():
            if seen & set(bucket.datasets):
                raise ConfigError(f"dataset(s) {sorted(seen & set(bucket.datasets))} appear in two mix buckets")
            seen |= set(bucket.datasets)


@dataclass
class SplitConfig:
    validation: float = 0.05
    test: float = 0.05
    aihub_validation_as: str = "test"
    salt: str = "kmed-aihub-split-v1"

    def __post_init__(self) -> None:
        if self.aihub_validation_as not in AIHUB_VALIDATION_MODES:
            raise ConfigError(f"splits.aihub_validation_as must be one of {AIHUB_VALIDATION_MODES}")
        if self.validation < 0 or self.test < 0 or self.validation + self.test >= 1:
            raise ConfigError("splits.validation + splits.test must be at least 0 and below 1")


@dataclass
class DedupeConfig:
    near_threshold: float = 0.9
    shingle: int = 5
    num_perm: int = 128
    bands: int = 32

    def __post_init__(self) -> None:
        if self.num_perm % self.bands:
            raise ConfigError("dedupe.num_perm must be a multiple of dedupe.bands")


@dataclass
class PassageConfig:
    max_chars: int = 220
    qa_answer_splits: list[str] = field(default_factory=lambda: ["train"])


@dataclass
class GroundingConfig:
    top_k: int = 3
    min_overlap: float = 0.5


@dataclass
class KGConfig:
    min_count: int = 2
    max_examples: int = 3


@dataclass
class EvalConfig:
    max_key_facts: int = 8


@dataclass
class InterviewConfig:
    path_hints: list[str] = field(default_factory=lambda: ["interview", "인터뷰"])
    topic: str = "interview_info.topic.topic"
    turns: str = "script"
    question: str = "question_info.question_context"
    answer: str = "answer_info[0].answer_context"


_SECTIONS = {
    "mix": MixConfig,
    "splits": SplitConfig,
    "dedupe": DedupeConfig,
    "passages": PassageConfig,
    "grounding": GroundingConfig,
    "kg": KGConfig,
    "eval": EvalConfig,
    "interview": InterviewConfig,
}


@dataclass
class PipelineConfig:
    mix: MixConfig = field(default_factory=MixConfig)
    splits: SplitConfig = field(default_factory=SplitConfig)
    dedupe: DedupeConfig = field(default_factory=DedupeConfig)
    passages: PassageConfig = field(default_factory=PassageConfig)
    grounding: GroundingConfig = field(default_factory=GroundingConfig)
    kg: KGConfig = field(default_factory=KGConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    interview: InterviewConfig = field(default_factory=InterviewConfig)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PipelineConfig:
        unknown = set(data) - set(_SECTIONS) - {"version"}
        if unknown:
            raise ConfigError(f"unknown section(s) in the data config: {sorted(unknown)}", f"known: {', '.join(_SECTIONS)}")
        sections = {}
        for name, section_cls in _SECTIONS.items():
            values = data.get(name) or {}
            known = {f.name for f in dataclasses.fields(section_cls)}
            extra = set(values) - known
            if extra:
                raise ConfigError(f"unknown key(s) {sorted(extra)} in section '{name}'", f"known: {', '.join(sorted(known))}")
            try:
                sections[name] = section_cls(**values)
            except TypeError as exc:
                raise ConfigError(f"bad section '{name}' in the data config: {exc}") from exc
        return cls(**sections)

    @classmethod
    def load(cls, path: Path | None = None) -> PipelineConfig:
        """Read ``path``, else ``configs/data_mix.yaml`` when present, else the defaults."""
        return cls.from_dict(read_yaml_config(path, DEFAULT_CONFIG_PATH))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False).encode()).hexdigest()
