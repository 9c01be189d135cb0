# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Renders model_card.md (Hub YAML header with a model-index of Acc@0.5 per split) into a trained model's folder."""

import os
import re
from importlib import resources

from huggingface_hub import EvalResult, ModelCard, ModelCardData


# the repository's top-level model_card.md, shipped as package data through the link modeling_epmvg/model_card.md
TEMPLATE = resources.files(__package__) / "model_card.md"


# the Hub has no visual-grounding task: custom-code models whose task has no Hub pipeline are tagged "other"
PIPELINE_TAG = "other"
HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")


def hub_id(name: str | None) -> str | None:
    """`name` when it is a Hub repo id (`owner/name`, not a path of this machine), else None."""
    if name is None or os.path.exists(name) or not HUB_ID.fullmatch(name):
        return None
    return name


def public_name(name: str) -> str:
    """A Hub id as it is; a local path as its last component (a card must not show this machine's paths)."""
    return hub_id(name) or os.path.basename(os.path.normpath(name))


def backbone_summary(backbone_config) -> str:
    """The backbone's type and stage widths (ResNet, ConvNeXt), or its stage depths (Swin has no widths list)."""
    widths = getattr(backbone_config, "hidden_sizes", None)
    sizes = ", ".join(map(str, widths)) if widths else "depths " + ", ".join(map(str, backbone_config.depths))
    return f"{backbone_config.model_type} ({sizes})"


def is_project_card(path: str) -> bool:
    """Whether `path` is a model card written by [`write_model_card`] (not the Trainer's generic one)."""
    return os.path.isfile(path) and "epmvg" in (ModelCard.load(path).data.tags or [])


def results_table(accuracies: dict[str, float]) -> str:
    """A markdown table of Acc@0.5 (in %) per split."""
    if not accuracies:
        return "No evaluation results yet."
    rows = [f"| {split} | {100 * value:.2f} |" for split, value in accuracies.items()]
    return "\n".join(["| split | Acc@0.5 (%) |", "|---|---:|", *rows])


def write_model_card(
    output_dir: str,
    model,
    dataset_name: str,
    accuracies: dict[str, float],
    teacher: str | None = None,
    training_summary: str = "",
    repo_id: str | None = None,
) -> str:
    """
    Writes `README.md` into `output_dir` from the template and returns its path.

    Args:
        output_dir (`str`): the saved model's folder.
        model ([`EpmVGForVisualGrounding`]): the trained model (its config and size fill the card).
        dataset_name (`str`): Hub id or description of the training data.
        accuracies (`dict[str, float]`): Acc@0.5 in [0, 1] per evaluation split (becomes the model-index).
        teacher (`str`, *optional*): the CLIP teacher used for distillation.
        training_summary (`str`): free text about the run (epochs, batch size, time, hardware).
        repo_id (`str`, *optional*): Hub repo the card's example loads from (default: `epmvg-<dataset>`).
    """
    config = model.config
    dataset = public_name(dataset_name)
    repo_id = repo_id or "epmvg-" + re.sub(r"[^\w.-]+", "-", dataset.split("/")[-1]).strip("-")
    eval_results = [
        EvalResult(
            task_type=PIPELINE_TAG,
            task_name="Visual grounding (referring expression comprehension)",
            dataset_type=dataset,
            dataset_name=dataset,
            dataset_split=split,
            metric_type="accuracy",
            metric_name="Acc@0.5",
            metric_value=round(100 * value, 2),
        )
        for split, value in accuracies.items()
    ]
    card_data = ModelCardData(
        library_name="transformers",
        pipeline_tag=PIPELINE_TAG,
        license="apache-2.0",
        tags=["visual-grounding", "referring-expression-comprehension", "epmvg", "custom_code"],
        datasets=[hub_id(dataset_name)] if hub_id(dataset_name) else None,
        metrics=["accuracy"],
        model_name=repo_id,
        eval_results=eval_results or None,
    )
    card = ModelCard.from_template(
        card_data,
        template_str=TEMPLATE.read_text(encoding="utf-8"),
        model_name=repo_id,
        repo_id=repo_id,
        image_size=config.image_size,
        max_text_len=config.max_text_len,
        backbone=backbone_summary(config.backbone_config),
        text_encoder=f"{config.text_config.model_type}, {config.text_config.num_hidden_layers} layers, "
        f"width {config.text_config.hidden_size}",
        d_model=config.d_model,
        fusion_layers=config.fusion_layers,
        num_parameters=f"{model.num_parameters():,}",
        bbox_loss=config.bbox_loss,
        giou_loss_coefficient=config.giou_loss_coefficient,
        distillation_loss=config.distillation_loss,
        alpha=config.distillation_image_coefficient,
        beta=config.distillation_text_coefficient,
        teacher=public_name(teacher) if teacher else "none (distillation off)",
        dataset_name=dataset,
        training_summary=training_summary,
        results_table=results_table(accuracies),
    )
    path = os.path.join(output_dir, "README.md")
    os.makedirs(output_dir, exist_ok=True)
    card.save(path)
    return path


__all__ = ["hub_id", "is_project_card", "public_name", "results_table", "write_model_card"]
