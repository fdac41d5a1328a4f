"""configs/data_mix.yaml and the dataclass defaults agree, and every value says why."""

from __future__ import annotations

import re

import pytest
import yaml

from kmed.data.aihub.config import DEFAULT_CONFIG_PATH, PipelineConfig
from kmed.errors import ConfigError


def test_yaml_equals_the_code_defaults():
    assert PipelineConfig.load(DEFAULT_CONFIG_PATH).to_dict() == PipelineConfig().to_dict()


def test_every_value_in_the_yaml_has_a_one_line_reason():
    missing = []
    for number, line in enumerate(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped.endswith(":") or stripped.startswith("version:"):
            continue
        if not re.search(r"\s#\s\S", line):
            missing.append(f"{number}: {line}")
    assert not missing, "values without a comment:\n" + "\n".join(missing)


def test_the_yaml_opens_with_the_command_that_uses_it():
    assert DEFAULT_CONFIG_PATH.read_text(encoding="utf-8").startswith("# kmed data prepare --aihub-dir")


@pytest.mark.parametrize(
    "data",
    [
        {"mixx": {}},
        {"splits": {"valdation": 0.1}},
        {"splits": {"validation": 0.6, "test": 0.5}},
        {"splits": {"aihub_validation_as": "train"}},
        {"mix": {"buckets": {"medical": {"ratio": 1.0, "datasets": ["essential", "nope"]}}}},
        {"dedupe": {"num_perm": 100, "bands": 32}},
    ],
)
def test_bad_configs_are_rejected_with_a_config_error(data):
    with pytest.raises(ConfigError):
        PipelineConfig.from_dict(data)


def test_a_partial_yaml_keeps_the_other_defaults(tmp_path):
    path = tmp_path / "mix.yaml"
    path.write_text(yaml.safe_dump({"splits": {"validation": 0.2}}), encoding="utf-8")
    config = PipelineConfig.load(path)
    assert config.splits.validation == 0.2 and config.splits.test == 0.05
    assert config.mix.buckets["medical"].ratio == 0.5
    with pytest.raises(ConfigError):
        PipelineConfig.load(tmp_path / "missing.yaml")
