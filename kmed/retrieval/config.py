"""Retrieval settings as data (``configs/retrieval.yaml``), validated so a wrong key is an error."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from kmed.artifacts import read_yaml_config
from kmed.errors import ConfigError
from kmed.paths import default_retrieval_config

DEFAULT_CONFIG = default_retrieval_config()


@dataclass
class DenseConfig:
    enabled: bool = True
    model: str = "kiwi-static"
    index_type: str | None = None  # None: chosen by corpus size
    train_steps: int = 300  # kiwi-static training steps (batch 64); recall stopped improving past ~300


@dataclass
class RetrievalConfig:
    max_chars: int = 220
    candidates: int = 50
    rrf_k: int = 60
    weights: dict = field(default_factory=lambda: {"bm25": 1.0, "dense": 1.0, "kg": 1.0})
    dense: DenseConfig = field(default_factory=DenseConfig)

    @classmethod
    def load(cls, path: str | Path | None = None) -> RetrievalConfig:
        data = read_yaml_config(path, DEFAULT_CONFIG)
        return cls.from_dict(data, str(path or DEFAULT_CONFIG))

    @classmethod
    def from_dict(cls, data: dict, where: str = "config") -> RetrievalConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{where}: 알 수 없는 설정 키 {unknown}", f"쓸 수 있는 키: {sorted(known)}")
        dense_data = data.pop("dense", None) or {}
        dense_known = {f.name for f in fields(DenseConfig)}
        bad = sorted(set(dense_data) - dense_known)
        if bad:
            raise ConfigError(f"{where}: dense에 알 수 없는 설정 키 {bad}", f"쓸 수 있는 키: {sorted(dense_known)}")
        weights = data.get("weights")
        if weights is not None and set(weights) - {"bm25", "dense", "kg"}:
            raise ConfigError(f"{where}: weights는 bm25, dense, kg만 가질 수 있어요.", "configs/retrieval.yaml을 고치세요.")
        return cls(**data, dense=DenseConfig(**dense_data))

    def fingerprint(self) -> dict:
        dense = {"model": self.dense.model, "steps": self.dense.train_steps} if self.dense.enabled else None
        return {"max_chars": self.max_chars, "dense": dense}
