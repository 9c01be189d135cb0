# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Specification of EpmVGDistillationTrainer: the loss, the frozen teacher, the optimizer recipe, checkpoints."""

import os

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from transformers import TrainerCallback

from modeling_epmvg import EpmVGForVisualGrounding
from modeling_epmvg.teacher_epmvg import teacher_embeddings
from modeling_epmvg.trainer_epmvg import (
    EpmVGDistillationTrainer,
    EpmVGNonFiniteLossError,
    EpmVGTrainingArguments,
    parameter_groups,
)

from .conftest import random_inputs, teacher_inputs, tiny_clip, tiny_config


class ListDataset(torch.utils.data.Dataset):
    """Pre-tensorized examples (one dict of tensors per example)."""

    def __init__(self, examples: list[dict]):
        self.examples = examples

    def __len__(self):
        return len(self.examples)

    def __getitem__(self, index):
        return self.examples[index]


class EpochRecordingDataset(ListDataset):
    """Records, for each example loaded, the epoch it was last told through `set_epoch`."""

    def __init__(self, examples: list[dict]):
        super().__init__(examples)
        self.epoch, self.loaded_in = None, []

    def set_epoch(self, epoch: int):
        self.epoch = epoch

    def __getitem__(self, index):
        self.loaded_in.append(self.epoch)
        return super().__getitem__(index)


def stack(examples: list[dict]) -> dict:
    return {key: torch.stack([example[key] for example in examples]) for key in examples[0]}


def tiny_dataset(size: int = 6, with_teacher_inputs: bool = True) -> ListDataset:
    student = random_inputs(tiny_config(), batch_size=size, seed=3)
    teacher = teacher_inputs(batch_size=size, seed=4) if with_teacher_inputs else {}
    batch = student | teacher
    return ListDataset([{key: value[index] for key, value in batch.items()} for index in range(size)])


def make_trainer(tmp_path, model=None, teacher=None, dataset=None, **arguments) -> EpmVGDistillationTrainer:
    defaults = dict(
        output_dir=str(tmp_path),
        per_device_train_batch_size=2,
        num_train_epochs=1,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        logging_steps=1,
        seed=0,
        disable_tqdm=True,
    )
    return EpmVGDistillationTrainer(
        model=model or EpmVGForVisualGrounding(tiny_config()),
        teacher_model=teacher if teacher is not None else tiny_clip(),
        args=EpmVGTrainingArguments(**(defaults | arguments)),
        train_dataset=dataset or tiny_dataset(),
        data_collator=stack,
    )


def expected_loss(model, teacher, batch, kind: str, alpha: float, beta: float) -> torch.Tensor:
    student = {key: value for key, value in batch.items() if not key.startswith("teacher_")}
    outputs = model(**student)
    image, text = teacher_embeddings(
        teacher, batch["teacher_pixel_values"], batch["teacher_input_ids"], batch["teacher_attention_mask"]
    )

    def distance(student_embeds, teacher_embeds):
        pooled = F.adaptive_avg_pool1d(teacher_embeds[:, None], student_embeds.shape[-1])[:, 0]
        if kind == "cosine":
            return (1 - F.cosine_similarity(student_embeds, pooled, dim=-1)).mean()
        return (student_embeds - pooled).abs().mean()

    return outputs.loss + alpha * distance(outputs.image_embeds, image) + beta * distance(outputs.text_embeds, text)


@pytest.mark.parametrize("kind", ["cosine", "l1"])
@pytest.mark.parametrize(("alpha", "beta"), [(1.5, 2.0), (1.5, 0.0), (0.0, 2.0), (0.0, 0.0)])
def test_loss_is_box_loss_plus_weighted_distillation_terms(tmp_path, kind, alpha, beta):
    config = tiny_config(
        distillation_loss=kind, distillation_image_coefficient=alpha, distillation_text_coefficient=beta
    )
    model = EpmVGForVisualGrounding(config).eval()
    teacher = tiny_clip().eval()
    trainer = make_trainer(tmp_path, model=model, teacher=teacher)
    batch = stack([tiny_dataset()[index] for index in range(2)])
    with torch.no_grad():
        expected = expected_loss(model, teacher, batch, kind, alpha, beta)
        loss = trainer.compute_loss(model, dict(batch))
    torch.testing.assert_close(loss, expected)
    logged = trainer._metrics["eval"]
    assert ("loss_distill_image" in logged) == (alpha != 0)
    assert ("loss_distill_text" in logged) == (beta != 0)


def test_cached_teacher_embeddings_replace_the_live_teacher(tmp_path):
    model = EpmVGForVisualGrounding(tiny_config()).eval()
    teacher = tiny_clip().eval()
    batch = stack([tiny_dataset()[index] for index in range(2)])
    with torch.no_grad():
        image, text = teacher_embeddings(
            teacher, batch["teacher_pixel_values"], batch["teacher_input_ids"], batch["teacher_attention_mask"]
        )
        live = make_trainer(tmp_path, model=model, teacher=teacher).compute_loss(model, dict(batch))
        cached_batch = {k: v for k, v in batch.items() if not k.startswith("teacher_")}
        cached_batch |= {"teacher_image_embeds": image, "teacher_text_embeds": text}
        trainer_without_teacher = EpmVGDistillationTrainer(
            model=model,
            args=EpmVGTrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True),
            data_collator=stack,
        )
        cached = trainer_without_teacher.compute_loss(model, cached_batch)
    torch.testing.assert_close(live, cached)


def test_missing_teacher_gives_a_clear_error(tmp_path):
    model = EpmVGForVisualGrounding(tiny_config())
    trainer = EpmVGDistillationTrainer(
        model=model, args=EpmVGTrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True)
    )
    batch = random_inputs(model.config)
    with pytest.raises(ValueError, match="has no teacher: pass teacher_model="):
        trainer.compute_loss(model, batch)


def test_frozen_teacher_is_unchanged_outside_the_optimizer_and_never_saved(tmp_path):
    teacher = tiny_clip()
    before = {name: tensor.clone() for name, tensor in teacher.state_dict().items()}
    trainer = make_trainer(tmp_path, teacher=teacher, save_strategy="steps", save_steps=2, max_steps=3)
    trainer.train()
    trainer.save_model(str(tmp_path / "final"))

    for name, tensor in trainer.teacher_model.state_dict().items():
        assert torch.equal(tensor, before[name]), f"teacher weight {name} changed"
    assert not trainer.teacher_model.training and not any(p.requires_grad for p in teacher.parameters())
    optimized = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert not optimized & {id(p) for p in teacher.parameters()}

    student_keys = set(trainer.model.state_dict())
    for folder in (tmp_path / "checkpoint-2", tmp_path / "final"):
        saved = set(load_file(folder / "model.safetensors"))
        assert saved == student_keys, f"{folder.name} holds keys beyond the student's"
        weight_files = {name for name in os.listdir(folder) if name.endswith((".safetensors", "model.bin"))}
        assert weight_files == {"model.safetensors"}
    optimizer_state = torch.load(tmp_path / "checkpoint-2" / "optimizer.pt", weights_only=True)
    assert len(optimizer_state["state"]) == sum(p.requires_grad for p in trainer.model.parameters())
    assert "loss_distill_image" in trainer.state.log_history[0]


def test_parameter_groups_follow_transvg_learning_rates():
    model = EpmVGForVisualGrounding(tiny_config())
    groups = {group["name"]: group for group in parameter_groups(model, 1e-4, 1e-5, 1e-4)}
    assert set(groups) == {"visual_backbone", "visual_encoder", "text_encoder", "other"}
    assert {name: group["lr"] for name, group in groups.items()} == {
        "visual_backbone": 1e-5,
        "visual_encoder": 1e-5,
        "text_encoder": 1e-5,
        "other": 1e-4,
    }
    assert all(group["weight_decay"] == 1e-4 for group in groups.values())
    grouped = {id(p) for group in groups.values() for p in group["params"]}
    assert grouped == {id(p) for p in model.parameters() if p.requires_grad}
    assert id(model.model.input_projection.weight) in {id(p) for p in groups["visual_encoder"]["params"]}
    assert id(model.model.reg_token) in {id(p) for p in groups["other"]["params"]}


def test_learning_rates_read_back_from_the_optimizer_and_drop_tenfold_at_the_set_epoch(tmp_path):
    # 6 examples, batch 2 -> 3 steps per epoch; drop at epoch 1 -> from step 3 on
    trainer = make_trainer(tmp_path, num_train_epochs=2, lr_drop_epoch=1)
    trainer.create_optimizer_and_scheduler(num_training_steps=6)
    rates = []
    for _ in range(6):
        rates.append({group["name"]: group["lr"] for group in trainer.optimizer.param_groups})
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
    assert rates[0] == {"visual_backbone": 1e-5, "visual_encoder": 1e-5, "text_encoder": 1e-5, "other": 1e-4}
    assert rates[2] == rates[0]
    assert rates[3] == pytest.approx({name: lr * 0.1 for name, lr in rates[0].items()})
    assert rates[5] == rates[3]


def test_the_training_set_is_told_each_epoch_before_its_examples_load_also_when_resumed_inside_one(tmp_path):
    # what EpmVGAugmentedDataset seeds each example's augmentation with; 6 examples, batch 2: 3 steps an epoch
    dataset = EpochRecordingDataset(tiny_dataset().examples)
    make_trainer(tmp_path, dataset=dataset, num_train_epochs=2, save_strategy="steps", save_steps=2).train()
    assert dataset.loaded_in == [0] * 6 + [1] * 6
    dataset.loaded_in.clear()
    resumed = make_trainer(tmp_path, dataset=dataset, num_train_epochs=2)
    resumed.train(resume_from_checkpoint=str(tmp_path / "checkpoint-2"))
    assert dataset.loaded_in == [0] * 2 + [1] * 6  # the third batch of epoch 0, then epoch 1


def test_a_time_budget_stops_training_and_drops_the_learning_rates_after_its_fraction(tmp_path, monkeypatch):
    clock = {"now": 0.0}
    monkeypatch.setattr("modeling_epmvg.trainer_epmvg.time.monotonic", lambda: clock["now"])
    trainer = make_trainer(tmp_path, max_steps=100, max_train_minutes=1.0, lr_drop_time_fraction=0.5)
    rates = []

    class Tick(TrainerCallback):
        """Each step takes 10 simulated seconds; records the learning rate it ran with."""

        def on_step_begin(self, args, state, control, **kwargs):
            rates.append(trainer.optimizer.param_groups[-1]["lr"])

        def on_step_end(self, args, state, control, **kwargs):
            clock["now"] += 10.0

    # before the budget's callback in the list, so each step's time has passed when the budget looks
    trainer.callback_handler.callbacks.insert(0, Tick())
    trainer.train()
    assert trainer.state.global_step == 6  # 60 s of budget, 10 s per step
    # the scheduler steps before the step's time is counted: 30 s have passed after step 4, which drops the rate
    assert rates == pytest.approx([1e-4] * 4 + [1e-5] * 2)


def test_a_time_budget_refuses_several_processes_or_an_epoch_drop(tmp_path):
    with pytest.raises(ValueError, match="single-process runs without lr_drop_epoch"):
        make_trainer(tmp_path, max_train_minutes=1.0, lr_drop_epoch=1)


def test_a_non_finite_loss_stops_training_before_the_optimizer_applies_it(tmp_path):
    trainer = make_trainer(tmp_path, learning_rate=1e6, lr_backbone=1e6, max_grad_norm=0, save_strategy="steps")
    trainer.args.save_steps = 1
    with pytest.raises(EpmVGNonFiniteLossError) as raised:
        trainer.train()
    message = str(raised.value)
    step = trainer.state.global_step + 1
    assert f"step {step}" in message and "loss_bbox=" in message and "loss_giou=" in message
    assert "other=1e+06" in message and "lower --learning_rate" in message
    assert all(torch.isfinite(parameter).all() for parameter in trainer.model.parameters())
    # the checkpoints of the finite steps before it are kept; nothing is saved after
    assert sorted(os.listdir(tmp_path)) == [f"checkpoint-{index}" for index in range(1, step)]


def test_logs_hold_the_mean_loss_terms_and_every_groups_learning_rate_by_name(tmp_path):
    trainer = make_trainer(tmp_path, max_steps=2, learning_rate=3e-4, lr_backbone=2e-5)
    trainer.train()
    first = trainer.state.log_history[0]
    assert first["learning_rate"] == 3e-4 and first["learning_rate_other"] == 3e-4
    assert first["learning_rate_visual_backbone"] == first["learning_rate_text_encoder"] == 2e-5
    terms = first["loss_bbox"] + first["loss_giou"]
    distill = 1.5 * first["loss_distill_image"] + 2.0 * first["loss_distill_text"]
    assert first["loss"] == pytest.approx(terms + distill, rel=1e-4)
