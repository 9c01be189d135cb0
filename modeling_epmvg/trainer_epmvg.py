# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""EpmVG's cross-modal distillation trainer: box loss + distillation towards a frozen CLIP teacher.

Not shipped to the Hub (no model file imports it): it needs the training stack (Trainer, accelerate).
"""

import math
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field

import torch
from torch import nn
from transformers import CLIPModel, SchedulerType, Trainer, TrainerCallback, TrainingArguments
from transformers.utils import logging

from .loss_epmvg import distillation_loss
from .model_card_epmvg import is_project_card
from .teacher_epmvg import (
    TEACHER_ATTENTION_MASK,
    TEACHER_EMBED_KEYS,
    TEACHER_INPUT_IDS,
    TEACHER_INPUT_KEYS,
    TEACHER_PIXEL_VALUES,
    teacher_embeddings,
)


logger = logging.get_logger(__name__)

# name prefixes (inside EpmVGForVisualGrounding) of the pretrained branches, trained at `lr_backbone`
PRETRAINED_BRANCHES = {
    "visual_backbone": ("model.backbone.",),
    "visual_encoder": ("model.vision_encoder.", "model.input_projection."),
    "text_encoder": ("model.text_backbone.",),
}


@dataclass
class EpmVGTrainingArguments(TrainingArguments):
    r"""
    [`TrainingArguments`] with TransVG / EpmVG's optimization recipe as defaults: AdamW, weight decay 1e-4 on every
    parameter, `lr_backbone` for the pretrained branches, `learning_rate` for the rest, and a x`lr_drop_factor`
    step of every learning rate at epoch `lr_drop_epoch`.
    """

    learning_rate: float = field(default=1e-4, metadata={"help": "Learning rate of the newly initialized parts."})
    lr_backbone: float = field(
        default=1e-5, metadata={"help": "Learning rate of the visual backbone, visual encoder and text encoder."}
    )
    weight_decay: float = field(default=1e-4, metadata={"help": "AdamW weight decay, applied to every parameter."})
    lr_drop_epoch: float | None = field(
        default=None,
        metadata={"help": "Epoch (fractions allowed) at which every learning rate is multiplied by lr_drop_factor."},
    )
    lr_drop_factor: float = field(default=0.1, metadata={"help": "Learning-rate factor applied at lr_drop_epoch."})
    max_train_minutes: float | None = field(
        default=None,
        metadata={
            "help": "Stop training after this much training wall time (max_steps still caps it), with the learning "
            "rates dropped by lr_drop_factor after lr_drop_time_fraction of it: a fixed time budget on any machine. "
            "Single process only."
        },
    )
    lr_drop_time_fraction: float = field(
        default=0.75, metadata={"help": "With max_train_minutes: the fraction of the budget after which lr drops."}
    )
    lr_scheduler_type: SchedulerType | str = field(
        default="constant", metadata={"help": "Scheduler used when lr_drop_epoch is not set."}
    )
    unfreeze_teacher: bool = field(
        default=False, metadata={"help": "Train the CLIP teacher too (the paper's ablation; single process only)."}
    )
    label_names: list[str] | None = field(
        default_factory=lambda: ["labels"],
        metadata={
            "help": "The boxes; `dense_labels` (auxiliary term) are an input, not what predictions are scored on."
        },
    )
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Kept False: the collator needs the raw image and text columns."}
    )
    ddp_find_unused_parameters: bool | None = field(
        default=False, metadata={"help": "Every trainable EpmVG parameter is used in each step."}
    )


class EpmVGTimeBudgetCallback(TrainerCallback):
    """Stops training once `minutes` of training wall time have passed; tells how much of the budget is used."""

    def __init__(self, minutes: float):
        self.seconds = 60 * minutes
        self.started = None

    def elapsed_fraction(self) -> float:
        return 0.0 if self.started is None else (time.monotonic() - self.started) / self.seconds

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if self.elapsed_fraction() >= 1:
            control.should_training_stop = True


class EpmVGEpochCallback(TrainerCallback):
    """
    Tells a training dataset with `set_epoch` (e.g. [`EpmVGAugmentedDataset`]) the epoch before its batches are
    drawn, in every process: accelerate forwards the Trainer's `set_epoch` to the dataset only when the sampler has
    none, and a shuffled or distributed run's sampler has one.
    """

    def on_epoch_begin(self, args, state, control, train_dataloader=None, **kwargs):
        dataset = getattr(train_dataloader, "dataset", None)
        if hasattr(dataset, "set_epoch"):
            # the epoch the loop enters, also when resuming inside one (state.epoch is then fractional)
            dataset.set_epoch(int(state.epoch))


def parameter_groups(model: nn.Module, learning_rate: float, lr_backbone: float, weight_decay: float) -> list[dict]:
    """AdamW parameter groups by module: the pretrained branches at `lr_backbone`, the rest at `learning_rate`."""
    groups = {name: [] for name in (*PRETRAINED_BRANCHES, "other")}
    for parameter_name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        branch = next(
            (name for name, prefixes in PRETRAINED_BRANCHES.items() if parameter_name.startswith(prefixes)), "other"
        )
        groups[branch].append(parameter)
    return [
        {
            "name": name,
            "params": parameters,
            "lr": learning_rate if name == "other" else lr_backbone,
            "weight_decay": weight_decay,
        }
        for name, parameters in groups.items()
        if parameters
    ]


class EpmVGNonFiniteLossError(RuntimeError):
    """A training step's loss is NaN or infinite: training stopped before the optimizer applied its gradients."""


class EpmVGDistillationTrainer(Trainer):
    r"""
    [`Trainer`] for EpmVG: the student's box loss plus the paper's cross-modal distillation,
    `alpha * L(image_embeds, CLIP image) + beta * L(text_embeds, CLIP text)`, with `alpha`, `beta` and the distance
    (`"cosine"` or `"l1"`) read from the student's config (`distillation_image_coefficient`,
    `distillation_text_coefficient`, `distillation_loss`); a coefficient of 0 switches that modality off.

    The teacher is a `CLIPModel`, frozen by default (eval mode, no gradients, outside the optimizer), placed on the
    device by accelerate without a DDP wrapper, and never saved. Teacher embeddings are taken from cached columns
    `teacher_image_embeds` / `teacher_text_embeds` when the batch has them, otherwise computed live from
    `teacher_pixel_values` / `teacher_input_ids` / `teacher_attention_mask` prepared by the collator.

    Args:
        teacher_model (`CLIPModel` or `str`, *optional*):
            The teacher, or a path / Hub id to load it from. Without a teacher only the box loss is trained.
        args ([`EpmVGTrainingArguments`]): optimization settings.
        kwargs: the other [`Trainer`] arguments (`model`, `train_dataset`, `data_collator`, `processing_class`, ...).
    """

    def __init__(self, *args, teacher_model: CLIPModel | str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
        self.teacher_model = self._prepare_teacher(teacher_model) if teacher_model is not None else None
        self.time_budget = self._time_budget()
        self.add_callback(EpmVGEpochCallback)

    def _time_budget(self) -> EpmVGTimeBudgetCallback | None:
        minutes = getattr(self.args, "max_train_minutes", None)
        if minutes is None:
            return None
        if self.args.world_size > 1 or getattr(self.args, "lr_drop_epoch", None) is not None:
            raise ValueError(
                "max_train_minutes is for single-process runs without lr_drop_epoch (processes would stop at "
                "different steps, and the budget sets the lr drop): use max_steps and lr_drop_epoch instead."
            )
        callback = EpmVGTimeBudgetCallback(minutes)
        self.add_callback(callback)
        return callback

    def _prepare_teacher(self, teacher: CLIPModel | str) -> nn.Module:
        if isinstance(teacher, str):
            teacher = CLIPModel.from_pretrained(teacher)
        if getattr(self.args, "unfreeze_teacher", False):
            if self.accelerator.num_processes > 1:
                raise ValueError(
                    "unfreeze_teacher=True is supported in single-process training only: the teacher is not wrapped "
                    "for gradient synchronization. Keep the teacher frozen (the paper's default) or use one process."
                )
            return teacher.to(self.args.device).train()
        teacher.eval().requires_grad_(False)
        # evaluation_mode places it on the device without DDP / FSDP wrapping
        return self.accelerator.prepare_model(teacher, evaluation_mode=True)

    def create_optimizer(self, model: nn.Module | None = None) -> torch.optim.Optimizer:
        """AdamW over TransVG's module groups (see [`parameter_groups`]), plus the teacher when it is unfrozen."""
        if self.optimizer is None:
            model = self.model if model is None else model
            optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, model)
            groups = parameter_groups(model, self.args.learning_rate, self.args.lr_backbone, self.args.weight_decay)
            if self.teacher_model is not None and getattr(self.args, "unfreeze_teacher", False):
                groups.append(
                    {
                        "name": "teacher",
                        "params": list(self.teacher_model.parameters()),
                        "lr": self.args.lr_backbone,
                        "weight_decay": self.args.weight_decay,
                    }
                )
            self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
        return self.optimizer

    def create_scheduler(self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None):
        """
        TransVG's StepLR: every learning rate times `lr_drop_factor` from epoch `lr_drop_epoch` on, or, with
        `max_train_minutes`, once `lr_drop_time_fraction` of the time budget has passed.
        """
        if getattr(self.args, "lr_drop_epoch", None) is None and self.time_budget is None:
            return super().create_scheduler(num_training_steps, optimizer)
        if self.lr_scheduler is None:
            factor = self.args.lr_drop_factor
            if self.time_budget is not None:
                fraction = self.args.lr_drop_time_fraction
                schedule = lambda step: factor if self.time_budget.elapsed_fraction() >= fraction else 1.0  # noqa: E731
            else:
                drop_step = round(self.args.lr_drop_epoch * self._optimizer_steps_per_epoch())
                schedule = lambda step: factor if step >= drop_step else 1.0  # noqa: E731
            self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer or self.optimizer, schedule)
            self._created_lr_scheduler = True
        return self.lr_scheduler

    def _optimizer_steps_per_epoch(self) -> int:
        per_step = self.args.per_device_train_batch_size * max(1, self.args.world_size)
        batches = math.ceil(len(self.train_dataset) / per_step)
        return max(1, math.ceil(batches / self.args.gradient_accumulation_steps))

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """Box loss from the student plus the weighted distillation terms; each term is logged."""
        teacher_inputs = {key: inputs.pop(key) for key in (*TEACHER_INPUT_KEYS, *TEACHER_EMBED_KEYS) if key in inputs}
        outputs = model(**inputs)
        loss = outputs.loss
        terms = {key: value.detach() for key, value in (outputs.loss_dict or {}).items()}
        config = self.accelerator.unwrap_model(model).config
        for name, student, teacher in self._distillation_pairs(outputs, teacher_inputs, config):
            term = distillation_loss(student, teacher, config.distillation_loss)
            loss = loss + getattr(config, f"distillation_{name}_coefficient") * term
            terms[f"loss_distill_{name}"] = term.detach()
        split = "train" if model.training else "eval"
        for key, value in terms.items():
            # kept as tensors: one device sync per log instead of one per term and step
            self._metrics[split][key].append(value)
        return (loss, outputs) if return_outputs else loss

    def _distillation_pairs(self, outputs, teacher_inputs: dict, config) -> list[tuple]:
        """(name, student embeds, teacher embeds) for each modality whose coefficient is non-zero."""
        wanted = [name for name in ("image", "text") if getattr(config, f"distillation_{name}_coefficient") != 0]
        if not wanted:
            return []
        keys = dict(zip(("image", "text"), TEACHER_EMBED_KEYS))
        cached = {name: teacher_inputs.get(keys[name]) for name in wanted}
        if any(value is None for value in cached.values()):
            live = dict(zip(("image", "text"), self._live_teacher_embeddings(teacher_inputs, wanted)))
            cached = {name: cached[name] if cached[name] is not None else live[name] for name in wanted}
        student = {"image": outputs.image_embeds, "text": outputs.text_embeds}
        return [(name, student[name], cached[name]) for name in wanted]

    def _live_teacher_embeddings(self, teacher_inputs: dict, wanted: list[str]):
        if self.teacher_model is None:
            raise ValueError(
                "Distillation is on (non-zero distillation coefficients) but the batch has no cached teacher "
                "embeddings and the trainer has no teacher: pass teacher_model=, cache embeddings with "
                "cache_teacher_embeddings(), or set distillation_image/text_coefficient=0 to train without it."
            )
        missing = [key for key in TEACHER_INPUT_KEYS[:2] if key not in teacher_inputs]
        if missing:
            raise ValueError(
                f"The batch lacks {missing}: give the data collator the teacher's processor so it prepares them."
            )
        train_teacher = getattr(self.args, "unfreeze_teacher", False) and self.teacher_model.training
        # accelerate puts the student's forward under --bf16 / --fp16 autocast; the teacher gets the same autocast
        with torch.set_grad_enabled(train_teacher), self.accelerator.autocast():
            return teacher_embeddings(
                self.teacher_model,
                teacher_inputs[TEACHER_PIXEL_VALUES] if "image" in wanted else None,
                teacher_inputs[TEACHER_INPUT_IDS] if "text" in wanted else None,
                teacher_inputs.get(TEACHER_ATTENTION_MASK),
            )

    def training_step(self, model: nn.Module, inputs: dict, num_items_in_batch=None) -> torch.Tensor:
        """
        One forward + backward. Stops training at the first NaN or infinite loss, before the optimizer applies its
        gradients, so no NaN weights are written (the Trainer would otherwise keep going and log the loss as 0).

        Raises:
            [`EpmVGNonFiniteLossError`]: naming the step, the loss terms and the learning rates.
        """
        loss = super().training_step(model, inputs, num_items_in_batch)
        # one device sync per step, as the Trainer's own NaN filter of the logged loss costs
        if not torch.isfinite(loss):
            raise EpmVGNonFiniteLossError(self._non_finite_loss_message(loss))
        return loss

    def _non_finite_loss_message(self, loss: torch.Tensor) -> str:
        terms = ", ".join(f"{key}={values[-1].item():.4g}" for key, values in self._metrics["train"].items() if values)
        rates = ", ".join(f"{name}={rate:.3g}" for name, rate in self._learning_rates().items())
        return (
            f"Training stopped at step {self.state.global_step + 1}: the loss is not finite ({loss.item()}; "
            f"{terms}). No final model was written; checkpoints already written are unchanged. The learning rates "
            f"were {rates}: the likely fix is a lower --learning_rate / --lr_backbone (e.g. 10x lower), or a warm-up "
            "(--warmup_steps)."
        )

    def _learning_rates(self) -> dict[str, float]:
        """The current learning rate of every optimizer parameter group, by group name."""
        groups = self.optimizer.param_groups if self.optimizer is not None else []
        return {group.get("name", str(index)): group["lr"] for index, group in enumerate(groups)}

    def create_model_card(self, *args, **kwargs) -> None:
        """
        The Trainer's generic card, unless the output folder has the project's card (`write_model_card`, with its
        model-index): `push_to_hub` then uploads that one instead of overwriting it.
        """
        if not is_project_card(os.path.join(self.args.output_dir, "README.md")):
            super().create_model_card(*args, **kwargs)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """
        Adds the mean of every loss term since the last log (prefixed `eval_` during evaluation) and the learning
        rate of every parameter group as `learning_rate_<group>`; `learning_rate` is the `learning_rate` group's.
        """
        split = "eval" if any(key.startswith("eval_") for key in logs) else "train"
        prefix = "eval_" if split == "eval" else ""
        for key, values in self._metrics[split].items():
            if values:
                values = torch.stack(values).tolist()
                logs[f"{prefix}{key}"] = sum(values) / len(values)
        self._metrics[split].clear()
        if "learning_rate" in logs:
            rates = self._learning_rates()
            # the Trainer reports the first group's, which is lr_backbone's: report --learning_rate's group instead
            logs["learning_rate"] = rates.get("other", logs["learning_rate"])
            logs |= {f"learning_rate_{name}": rate for name, rate in rates.items()}
        super().log(logs, start_time)


__all__ = [
    "EpmVGDistillationTrainer",
    "EpmVGEpochCallback",
    "EpmVGTimeBudgetCallback",
    "EpmVGNonFiniteLossError",
    "EpmVGTrainingArguments",
    "parameter_groups",
]
