# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Mixed precision: the losses compute in float32, the live teacher runs under the student's autocast, and a tiny
bf16 run through the Trainer (`--bf16`, on CPU) trains like the float32 run. bf16 is slow on this CPU: tiny only."""

import torch
from transformers import TrainerCallback

from modeling_epmvg import EpmVGForVisualGrounding
from modeling_epmvg.loss_epmvg import distillation_loss, grounding_loss, target_token_loss

from .conftest import random_inputs, tiny_clip, tiny_config
from .test_trainer import make_trainer


def test_box_giou_and_distillation_losses_compute_in_float32_from_half_precision_inputs():
    generator = torch.Generator().manual_seed(0)
    config = tiny_config()
    pred_boxes = (0.3 + 0.4 * torch.rand(4, 4, generator=generator)).bfloat16()
    labels = (0.3 + 0.4 * torch.rand(4, 4, generator=generator)).bfloat16()
    loss, terms = grounding_loss(pred_boxes, labels, config)
    expected, expected_terms = grounding_loss(pred_boxes.float(), labels.float(), config)
    assert loss.dtype == torch.float32 and all(term.dtype == torch.float32 for term in terms.values())
    assert torch.equal(loss, expected) and all(torch.equal(terms[key], expected_terms[key]) for key in terms)

    student, teacher = torch.randn(4, 16, generator=generator).half(), torch.randn(4, 24, generator=generator).half()
    for kind in ("cosine", "l1"):
        distilled = distillation_loss(student, teacher, kind)
        assert distilled.dtype == torch.float32
        assert torch.equal(distilled, distillation_loss(student.float(), teacher.float(), kind))
    assert target_token_loss(torch.randn(2, 4).bfloat16(), labels[:2], 2).dtype == torch.float32


def test_under_cpu_bf16_autocast_the_forward_gives_a_float32_loss_close_to_the_float32_one():
    model = EpmVGForVisualGrounding(tiny_config(dropout=0.0)).eval()
    inputs = random_inputs(model.config)
    with torch.no_grad():
        reference = model(**inputs).loss
        with torch.autocast("cpu", dtype=torch.bfloat16):
            outputs = model(**inputs)
    assert outputs.pred_boxes.dtype == torch.bfloat16
    assert outputs.loss.dtype == torch.float32
    torch.testing.assert_close(outputs.loss, reference, atol=0.05, rtol=0.05)


class LossRecorder(TrainerCallback):
    def __init__(self):
        self.losses = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        if "loss" in logs:
            self.losses.append(logs["loss"])


def train_a_few_steps(tmp_path, bf16: bool) -> tuple[list[float], set]:
    torch.manual_seed(0)
    model, teacher = EpmVGForVisualGrounding(tiny_config(dropout=0.0)), tiny_clip()
    teacher_dtypes = set()
    for projection in (teacher.visual_projection, teacher.text_projection):
        projection.register_forward_hook(lambda module, args, output: teacher_dtypes.add(output.dtype))
    trainer = make_trainer(tmp_path, model=model, teacher=teacher, bf16=bf16, max_steps=3, learning_rate=1e-3)
    recorder = LossRecorder()
    trainer.add_callback(recorder)
    trainer.train()
    return recorder.losses, teacher_dtypes


def test_a_bf16_trainer_run_trains_with_finite_losses_close_to_the_float32_run(tmp_path):
    float32_losses, float32_teacher = train_a_few_steps(tmp_path / "fp32", bf16=False)
    bf16_losses, bf16_teacher = train_a_few_steps(tmp_path / "bf16", bf16=True)
    assert float32_teacher == {torch.float32}
    # the teacher runs in the student's autocast dtype
    assert bf16_teacher == {torch.bfloat16}
    assert len(bf16_losses) == len(float32_losses) == 3
    assert all(torch.isfinite(torch.tensor(bf16_losses)))
    torch.testing.assert_close(torch.tensor(bf16_losses), torch.tensor(float32_losses), atol=0.1, rtol=0.05)
