"""Distillation losses against hand-computed values, student initialisation, and a loop that learns."""

from __future__ import annotations

import pytest
import torch

from kmed.errors import ConfigError
from kmed.llm.compression.distill import init_student, kd_loss, lora_recover, train
from kmed.llm.tiny import build_tiny_model

BLOCKS = torch.randint(3, 512, (8, 32), generator=torch.Generator().manual_seed(0))


def _kl(p_logits, q_logits):
    p, q = p_logits.softmax(-1), q_logits.softmax(-1)
    return float((p * (p.log() - q.log())).sum(-1).mean())


def test_kd_losses_match_their_definitions():
    def K(*args, **kwargs) -> float:
        return float(kd_loss(*args, **kwargs))

    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(5, 11, generator=g), torch.randn(5, 11, generator=g)
    assert K(s, t, "forward_kl") == pytest.approx(_kl(t, s), rel=1e-5)
    assert K(s, t, "reverse_kl") == pytest.approx(_kl(s, t), rel=1e-5)
    assert K(s, t, "forward_kl") != pytest.approx(K(s, t, "reverse_kl"), rel=1e-3)
    # Skew KL: KL(p ‖ αp + (1-α)q), by hand.
    alpha = 0.3
    p, q = t.softmax(-1), s.softmax(-1)
    mix = alpha * p + (1 - alpha) * q
    expected = float((p * (p.log() - mix.log())).sum(-1).mean())
    assert K(s, t, "skew_forward_kl", skew_alpha=alpha) == pytest.approx(expected, rel=1e-5)
    assert K(s, t, "skew_forward_kl", skew_alpha=alpha) < K(s, t, "forward_kl")  # skew bounds it
    # Temperature softens: T=1 on logits/2 equals T=2 on logits.
    assert K(s, t, "forward_kl", temperature=2.0) == pytest.approx(K(s / 2, t / 2, "forward_kl"), rel=1e-5)
    for kind in ("forward_kl", "reverse_kl", "skew_forward_kl", "skew_reverse_kl"):
        assert K(t, t, kind) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError):
        kd_loss(s, t, "js")


def test_student_from_teacher_layers_copies_their_weights():
    teacher = build_tiny_model("gpt_neox", num_layers=3)
    student, info = init_student(teacher, keep_layers=[0, 2])
    assert student.config.num_hidden_layers == 2 and info["kept_layers"] == [0, 2]
    assert torch.equal(student.gpt_neox.layers[1].mlp.dense_h_to_4h.weight, teacher.gpt_neox.layers[2].mlp.dense_h_to_4h.weight)
    assert teacher.config.num_hidden_layers == 3  # the teacher is untouched
    evenly, _ = init_student(teacher, num_layers=2)
    assert evenly.config.num_hidden_layers == 2
    with pytest.raises(ConfigError):
        init_student(teacher, keep_layers=[0, 5])


def test_student_from_a_smaller_config():
    teacher = build_tiny_model("llama")
    student, info = init_student(teacher, student_config={"intermediate_size": 32, "num_hidden_layers": 1})
    assert student.config.intermediate_size == 32 and info["init"] == "config"
    with pytest.raises(ConfigError):
        init_student(teacher, student_config={"no_such_key": 1})


@pytest.mark.parametrize("loss", ["forward_kl", "reverse_kl", "skew_reverse_kl"])
def test_distillation_moves_the_student_towards_the_teacher(loss):
    teacher = build_tiny_model("gpt_neox", seed=1)
    teacher.lm_head.weight.data *= 30  # a peaked teacher, so there is something to learn
    student, _ = init_student(teacher, student_config={"num_hidden_layers": 1}, seed=5)
    with torch.no_grad():
        t = teacher(input_ids=BLOCKS).logits
        before = float(kd_loss(student(input_ids=BLOCKS).logits, t, loss))
    history = train(student, teacher, BLOCKS, steps=20, loss=loss, kd_weight=1.0, temperature=1.0, lr=1e-2, batch_size=8)
    with torch.no_grad():
        after = float(kd_loss(student(input_ids=BLOCKS).logits, t, loss))
    assert len(history) == 20
    assert after < 0.7 * before


def test_cross_entropy_only_learns_the_text():
    student = build_tiny_model("llama", num_layers=1)
    history = train(student, None, BLOCKS[:2], steps=20, loss="ce", lr=1e-2, batch_size=2)
    assert history[-1] < history[0] - 0.5


def test_lora_recovery_merges_into_plain_weights():
    model = build_tiny_model("llama")
    teacher = build_tiny_model("llama", seed=3)
    merged, history = lora_recover(model, teacher, BLOCKS, steps=3, rank=2)
    assert len(history) == 3
    assert not any("lora" in name for name, _ in merged.named_parameters())
    assert type(merged).__name__ == "LlamaForCausalLM"


def test_gemma_student_keeps_layer_kinds_and_learns():
    """Gemma 3 layers are local or global; a student made of chosen teacher layers keeps each one's kind."""
    teacher = build_tiny_model("gemma3_text", num_layers=4, seed=1)
    student, info = init_student(teacher, keep_layers=[1, 3])
    assert student.config.layer_types == [teacher.config.layer_types[1], teacher.config.layer_types[3]]
    assert torch.equal(student.model.layers[1].mlp.down_proj.weight, teacher.model.layers[3].mlp.down_proj.weight)
    with torch.no_grad():
        t = teacher(input_ids=BLOCKS).logits
        before = float(kd_loss(student(input_ids=BLOCKS).logits, t, "forward_kl"))
    train(student, teacher, BLOCKS, steps=15, loss="forward_kl", kd_weight=1.0, temperature=1.0, lr=1e-2, batch_size=8)
    with torch.no_grad():
        assert float(kd_loss(student(input_ids=BLOCKS).logits, t, "forward_kl")) < before
    assert info["init"]
