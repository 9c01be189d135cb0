# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Pretrain EpmVG's visual branch on annotated scenes with the dense per-token objective (`epmvg-pretrain-visual`).

The embedded default's counterpart of TransVG starting its visual branch from a COCO-trained DETR: the CNN backbone,
input projection, transformer encoder and projection of an [`EpmVGForVisualPretraining`] are trained through
`Trainer` to say, for every visual token, whether an object's centre falls in its cell, which attributes that object
has and where its box is. The synthetic benchmark annotates every object of a scene (`scene_objects`); with real
data, start the visual branch from a DETR checkpoint instead (`epmvg-train --backbone_model_name_or_path
facebook/detr-resnet-50`). The result loads into `epmvg-train --backbone_model_name_or_path <output-dir>`.

    python -m modeling_epmvg.commands.pretrain_visual --dataset demo_output/data --config_name student/config.json \
        --output_dir outputs/visual
"""

import argparse
import json
import os
import sys

import torch
from datasets import load_from_disk
from transformers import set_seed

from processing import EpmVGImageProcessor
from processing.data.collator import EpmVGSceneCollator
from processing.data.dense_labels import EpmVGDenseLabeler
from processing.data.synthetic import load_synthetic_config

from ..configuration_epmvg import EpmVGConfig
from ..modeling_epmvg import EpmVGForVisualPretraining
from ..trainer_epmvg import EpmVGDistillationTrainer, EpmVGNonFiniteLossError, EpmVGTrainingArguments
from .cli import EpmVGArgumentParser, run_command


METRICS_NAME = "visual_pretraining_metrics.json"


def parse_args(argv=None) -> argparse.Namespace:
    parser = EpmVGArgumentParser(prog="epmvg-pretrain-visual", description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="a saved synthetic DatasetDict (its synthetic_config.json)")
    parser.add_argument("--config_name", required=True, help="the student's EpmVG config (file or folder)")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--train_split", default="train")
    parser.add_argument("--eval_split", default="val", help="scenes for the dense accuracy check")
    parser.add_argument("--max_steps", type=int, default=500)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--learning_rate", type=float, default=2e-3)
    parser.add_argument("--logging_steps", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def unique_scenes(dataset):
    """One row per image (grounding splits hold several expressions per scene)."""
    first_rows = {}
    for index, image_id in enumerate(dataset["image_id"]):
        first_rows.setdefault(image_id, index)
    return dataset.select(sorted(first_rows.values()))


def pretraining_config(config: EpmVGConfig, labeler: EpmVGDenseLabeler) -> EpmVGConfig:
    """The student's config with the dataset's attribute classes; pretraining distils nothing."""
    if config.dense_attribute_classes not in (None, labeler.attribute_classes):
        raise ValueError(
            f"The config's dense_attribute_classes {config.dense_attribute_classes} differ from the dataset's "
            f"attributes {labeler.attributes}: drop the field from the config or use the matching dataset."
        )
    config.dense_attribute_classes = labeler.attribute_classes
    config.distillation_image_coefficient = config.distillation_text_coefficient = 0.0
    return config


@torch.no_grad()
def dense_accuracy(model: EpmVGForVisualPretraining, collator: EpmVGSceneCollator, scenes, batch_size: int = 256):
    """Objectness accuracy over all tokens, and each attribute's accuracy on the tokens holding an object centre."""
    model.eval()
    hits = {"objectness": 0, **{name: 0 for name in collator.dense_labeler.attributes}}
    tokens = objects = 0
    for start in range(0, len(scenes), batch_size):
        batch = collator([scenes[i] for i in range(start, min(start + batch_size, len(scenes)))])
        labels = batch.pop("dense_labels").to(model.device)
        logits = model(**{k: v.to(model.device) for k, v in batch.items()}).logits
        has_object = labels[..., 4] >= 0
        hits["objectness"] += ((logits[..., 0] > 0) == has_object).sum().item()
        tokens, objects = tokens + has_object.numel(), objects + has_object.sum().item()
        first = 1
        for index, (name, num_classes) in enumerate(
            zip(collator.dense_labeler.attributes, model.dense_head.attribute_classes)
        ):
            predicted = logits[..., first : first + num_classes].argmax(-1)
            hits[name] += (predicted == labels[..., 4 + index].long())[has_object].sum().item()
            first += num_classes
    return {name: count / (tokens if name == "objectness" else max(objects, 1)) for name, count in hits.items()}


def pretrain(args: argparse.Namespace) -> dict[str, float]:
    """Pretrains, saves the model in `--output_dir`, returns (and saves) the dense accuracies on held-out scenes."""
    set_seed(args.seed)
    data = load_from_disk(args.dataset)
    attributes = load_synthetic_config(args.dataset).object_attributes
    config = EpmVGConfig.from_pretrained(args.config_name)
    labeler = EpmVGDenseLabeler(attributes, config.visual_grid_size)
    model = EpmVGForVisualPretraining(pretraining_config(config, labeler))
    collator = EpmVGSceneCollator(EpmVGImageProcessor(size=config.image_size), labeler)
    training_args = EpmVGTrainingArguments(
        output_dir=args.output_dir,
        max_steps=args.max_steps,
        per_device_train_batch_size=args.batch_size,
        # the whole model is new: one learning rate, no branch at TransVG's 1e-5
        learning_rate=args.learning_rate,
        lr_backbone=args.learning_rate,
        logging_steps=args.logging_steps,
        save_strategy="no",
        report_to="none",
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        seed=args.seed,
    )
    trainer = EpmVGDistillationTrainer(
        model=model, args=training_args, train_dataset=unique_scenes(data[args.train_split]), data_collator=collator
    )
    trainer.train()
    metrics = {
        f"dense_{name}_accuracy": value
        for name, value in dense_accuracy(model, collator, unique_scenes(data[args.eval_split])).items()
    }
    trainer.save_model()
    trainer.log_metrics("eval", metrics)
    with open(os.path.join(args.output_dir, METRICS_NAME), "w") as handle:
        json.dump(metrics, handle, indent=2)
    return metrics


def run(argv: list[str]) -> int:
    pretrain(parse_args(argv))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Console entry point `epmvg-pretrain-visual`. Returns the exit status."""
    return run_command("epmvg-pretrain-visual", run, argv, expected=(EpmVGNonFiniteLossError,))


__all__ = ["dense_accuracy", "main", "parse_args", "pretrain", "pretraining_config", "unique_scenes"]


if __name__ == "__main__":
    sys.exit(main())
