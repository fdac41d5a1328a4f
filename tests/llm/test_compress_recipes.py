"""Every shipped recipe matches the dataclasses; typos and impossible plans are errors that name the fix."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from kmed.errors import ConfigError
from kmed.llm.compression.recipe import (
    STAGE_TYPES,
    EvalSettings,
    Gate,
    LoraRecovery,
    QuantizeStage,
    Recipe,
    load_recipe,
    recipe_from_dict,
)

RECIPES = sorted((Path(__file__).resolve().parents[2] / "configs" / "compress").glob("*.yaml"))


def _fields(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def test_recipes_are_shipped():
    names = {p.stem for p in RECIPES}
    assert {"default", "int4", "int8", "unstructured", "prune-int8", "gpu-nf4"} <= names


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_shipped_recipe_validates_against_the_dataclasses(path):
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# kmed compress --base ") and f"--recipe configs/compress/{path.name}" in text.splitlines()[0]
    raw = yaml.safe_load(text)
    assert set(raw) <= _fields(Recipe)
    for stage in raw["stages"]:
        cls = STAGE_TYPES[stage["kind"]]
        assert set(stage) <= _fields(cls), set(stage) - _fields(cls)
        assert set(stage.get("gate") or {}) <= _fields(Gate)
        if stage.get("lora"):
            assert set(stage["lora"]) <= _fields(LoraRecovery)
    assert set(raw.get("eval") or {}) <= _fields(EvalSettings)
    recipe = load_recipe(path)
    assert recipe.name and recipe.stages
    # Every value line carries a one-line reason.
    for line in text.splitlines():
        stripped = line.strip()
        if ":" in stripped and not stripped.startswith("#") and not stripped.endswith(":") and "kind:" not in stripped:
            assert "#" in stripped, f"{path.name}: no reason given for {stripped!r}"


@pytest.mark.parametrize(
    "raw, key",
    [
        ({"stages": [{"kind": "quantize", "schme": "int4"}]}, "schme"),
        ({"stages": [{"kind": "quantize", "gate": {"max_ppl": 1.1}}]}, "max_ppl"),
        ({"stages": [{"kind": "prune", "mlp": 0.5, "lora": {"stepz": 3}}]}, "stepz"),
        ({"stages": [{"kind": "quantize"}], "evall": {}}, "evall"),
        ({"stages": [{"kind": "quantize"}], "eval": {"ppl_len": 3}}, "ppl_len"),
    ],
)
def test_unknown_keys_are_named(raw, key):
    with pytest.raises(ConfigError) as err:
        recipe_from_dict(raw)
    assert key in err.value.message
    assert err.value.fix and "쓸 수 있는 키" in err.value.fix


@pytest.mark.parametrize(
    "raw",
    [
        {"stages": []},
        {"stages": [{"kind": "sparsify"}]},
        {"stages": [{"kind": "quantize", "scheme": "int3"}]},
        {"stages": [{"kind": "quantize"}, {"kind": "prune", "mlp": 0.5}]},  # nothing after quantize
        {"stages": [{"kind": "distill"}]},  # no student
        {"stages": [{"kind": "distill", "num_layers": 2, "keep_layers": [0]}]},  # two students
        {"stages": [{"kind": "prune", "mlp": 1.0}]},
        {"stages": [{"kind": "quantize", "gate": {"max_ppl_ratio": 0.9}}]},
    ],
)
def test_impossible_recipes_are_rejected(raw):
    with pytest.raises(ConfigError):
        recipe_from_dict(raw)


def test_nested_values_become_dataclasses():
    r = recipe_from_dict({"stages": [{"kind": "prune", "mlp": 0.5, "lora": {"steps": 3}, "gate": {"max_ppl_ratio": 2}}]})
    assert isinstance(r.stages[0].lora, LoraRecovery) and r.stages[0].lora.steps == 3
    assert r.stages[0].gate.max_ppl_ratio == 2 and r.stages[0].gate.max_qa_drop == 0.05
    assert isinstance(recipe_from_dict({"stages": [{"kind": "quantize"}]}).stages[0], QuantizeStage)


def test_missing_recipe_file_lists_the_shipped_ones(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_recipe(tmp_path / "nope.yaml")
    assert "int4.yaml" in err.value.fix


@pytest.mark.parametrize("text", ["stages: [unclosed", "- kind: quantize\n", "\xff\xfe"])
def test_a_recipe_that_is_not_a_yaml_mapping_is_a_config_error(tmp_path, text):
    path = tmp_path / "bad.yaml"
    path.write_bytes(text.encode("latin-1") if text.startswith("\xff") else text.encode("utf-8"))
    with pytest.raises(ConfigError) as err:
        load_recipe(path)
    assert err.value.fix


def test_a_model_table_entry_that_is_not_a_mapping_names_the_entry(tmp_path):
    from kmed.llm.models import load_model_table

    path = tmp_path / "models.yaml"
    path.write_text("tiny: 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="tiny"):
        load_model_table(path)
