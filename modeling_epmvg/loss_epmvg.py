# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""EpmVG losses as pure functions: box regression (smooth-L1 or L1) + GIoU, the cross-modal distillation loss, and the
training-only auxiliary terms (dense visual prediction, target token).

Every loss computes in float32 whatever its inputs' dtype, so a bf16 / fp16 (autocast) run keeps the GIoU's divisions
and the cosine's normalization exact: the inputs are cast first, and the element-wise operations that follow are not
ones autocast lowers."""

import torch
import torch.nn.functional as F
from transformers.image_transforms import center_to_corners_format as center_to_corners


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """Area of (x1, y1, x2, y2) boxes of shape `(..., 4)`."""
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def generalized_box_iou_loss(pred_boxes: torch.Tensor, target_boxes: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    r"""
    Mean of `1 - GIoU` over paired boxes (https://giou.stanford.edu/), finite for zero-area or inverted boxes.

    Args:
        pred_boxes (`torch.Tensor` of shape `(batch_size, 4)`): predicted boxes, (x1, y1, x2, y2).
        target_boxes (`torch.Tensor` of shape `(batch_size, 4)`): ground-truth boxes, (x1, y1, x2, y2).
        eps (`float`): keeps the divisions finite when a union or an enclosing box has zero area.

    Returns:
        `torch.Tensor`: the scalar loss, in [0, 2].
    """
    # inverted predictions count as empty instead of producing negative areas
    pred_boxes = torch.cat([pred_boxes[:, :2], torch.maximum(pred_boxes[:, 2:], pred_boxes[:, :2])], dim=-1)
    top_left_inner = torch.maximum(pred_boxes[:, :2], target_boxes[:, :2])
    bottom_right_inner = torch.minimum(pred_boxes[:, 2:], target_boxes[:, 2:])
    intersection = (bottom_right_inner - top_left_inner).clamp(min=0).prod(-1)
    union = box_area(pred_boxes) + box_area(target_boxes) - intersection
    iou = intersection / (union + eps)
    top_left_hull = torch.minimum(pred_boxes[:, :2], target_boxes[:, :2])
    bottom_right_hull = torch.maximum(pred_boxes[:, 2:], target_boxes[:, 2:])
    hull = (bottom_right_hull - top_left_hull).prod(-1)
    giou = iou - (hull - union) / (hull + eps)
    return (1 - giou).mean()


def box_regression_loss(
    pred_boxes: torch.Tensor, target_boxes: torch.Tensor, kind: str = "smooth_l1", beta: float = 1.0
) -> torch.Tensor:
    r"""
    Box regression loss on normalized (cx, cy, w, h): summed over the 4 coordinates, averaged over the batch
    (TransVG's reduction).

    Args:
        pred_boxes (`torch.Tensor` of shape `(batch_size, 4)`): predicted boxes.
        target_boxes (`torch.Tensor` of shape `(batch_size, 4)`): ground-truth boxes.
        kind (`str`): `"smooth_l1"` (EpmVG paper) or `"l1"` (TransVG code).
        beta (`float`): smooth-L1 threshold between the quadratic and linear parts.
    """
    if kind == "smooth_l1":
        per_coordinate = F.smooth_l1_loss(pred_boxes, target_boxes, beta=beta, reduction="none")
    elif kind == "l1":
        per_coordinate = F.l1_loss(pred_boxes, target_boxes, reduction="none")
    else:
        raise ValueError(f"Unknown box loss {kind!r}: use 'smooth_l1' or 'l1'.")
    return per_coordinate.sum(-1).mean()


def grounding_loss(pred_boxes: torch.Tensor, labels: torch.Tensor, config) -> tuple[torch.Tensor, dict]:
    r"""
    The box loss of EpmVG: `bbox_loss_coefficient * L_box + giou_loss_coefficient * L_GIoU`.

    Args:
        pred_boxes (`torch.Tensor` of shape `(batch_size, 4)`): predicted normalized (cx, cy, w, h).
        labels (`torch.Tensor` of shape `(batch_size, 4)`): ground-truth normalized (cx, cy, w, h).
        config ([`EpmVGConfig`]): provides `bbox_loss`, `smooth_l1_beta` and the two coefficients.

    Returns:
        `tuple(torch.Tensor, dict)`: the weighted total and the unweighted terms `{"loss_bbox", "loss_giou"}`.
    """
    pred_boxes, labels = pred_boxes.float(), labels.float()
    loss_dict = {
        "loss_bbox": box_regression_loss(pred_boxes, labels, config.bbox_loss, config.smooth_l1_beta),
        "loss_giou": generalized_box_iou_loss(center_to_corners(pred_boxes), center_to_corners(labels)),
    }
    loss = (
        config.bbox_loss_coefficient * loss_dict["loss_bbox"] + config.giou_loss_coefficient * loss_dict["loss_giou"]
    )
    return loss, loss_dict


def distillation_loss(
    student_embeds: torch.Tensor, teacher_embeds: torch.Tensor, kind: str = "cosine"
) -> torch.Tensor:
    r"""
    Distance between student features and frozen-teacher embeddings, after adaptive average pooling of the teacher
    embedding over its feature dimension down to the student width (e.g. 512 -> 256), as in the EpmVG paper.

    Args:
        student_embeds (`torch.Tensor` of shape `(batch_size, student_dim)`): fusion outputs of the student.
        teacher_embeds (`torch.Tensor` of shape `(batch_size, teacher_dim)`): CLIP embeddings.
        kind (`str`): `"cosine"` for `1 - cos` (paper) or `"l1"` for the mean absolute difference (ablation).

    Returns:
        `torch.Tensor`: the scalar loss averaged over the batch.
    """
    if student_embeds.shape[0] != teacher_embeds.shape[0]:
        raise ValueError(
            f"Student and teacher batch sizes differ ({student_embeds.shape[0]} vs {teacher_embeds.shape[0]}): "
            "teacher inputs must come from the same examples as the student inputs."
        )
    student_embeds, teacher_embeds = student_embeds.float(), teacher_embeds.float()
    teacher = F.adaptive_avg_pool1d(teacher_embeds.unsqueeze(1), student_embeds.shape[-1])
    teacher = teacher.squeeze(1)
    if kind == "cosine":
        return (1 - F.cosine_similarity(student_embeds, teacher, dim=-1)).mean()
    if kind == "l1":
        return F.l1_loss(student_embeds, teacher)
    raise ValueError(f"Unknown distillation loss {kind!r}: use 'cosine' or 'l1'.")


def dense_prediction_loss(
    logits: torch.Tensor, dense_labels: torch.Tensor, attribute_classes: list[int], box_coefficient: float = 5.0
) -> tuple[torch.Tensor, dict]:
    r"""
    The dense per-token objective of the visual branch (a DETR-style pretraining stand-in): every visual token says
    whether an object's centre falls in its cell (binary cross-entropy), and for those that do, the object's
    attributes (cross-entropy each) and its box (L1 on sigmoid cxcywh, summed over the coordinates).

    Args:
        logits (`torch.Tensor` of shape `(batch_size, num_tokens, 1 + sum(attribute_classes) + 4)`):
            Objectness logit, the logits of each attribute in turn, then the box logits.
        dense_labels (`torch.Tensor` of shape `(batch_size, num_tokens, 4 + len(attribute_classes))`):
            Normalized canvas (cx, cy, w, h) of the cell's object, then its attribute class indices; -1 everywhere on
            cells without an object centre (see `processing`'s `EpmVGDenseLabeler`).
        attribute_classes (`list[int]`): number of classes of each attribute (e.g. colours, shapes, sizes).
        box_coefficient (`float`): weight of the box term.

    Returns:
        `tuple(torch.Tensor, dict)`: `objectness + sum(attributes) + box_coefficient * box` and the unweighted terms
        `{"objectness", "attributes", "box"}`.
    """
    expected = 1 + sum(attribute_classes) + 4
    if logits.shape[-1] != expected or dense_labels.shape[-1] != 4 + len(attribute_classes):
        raise ValueError(
            f"Dense logits need {expected} channels and dense labels {4 + len(attribute_classes)} for attribute "
            f"classes {attribute_classes}; got {logits.shape[-1]} and {dense_labels.shape[-1]}: build the labels with "
            "the same attributes as the config's `dense_attribute_classes`."
        )
    logits, dense_labels = logits.float(), dense_labels.float()
    has_object = dense_labels[..., 4] >= 0
    objectness = F.binary_cross_entropy_with_logits(logits[..., 0], has_object.to(logits.dtype))
    object_logits, object_labels = logits[has_object], dense_labels[has_object]
    if object_labels.shape[0] == 0:
        # no object centre in the batch: only the objectness term has a target
        zero = logits.sum() * 0
        return objectness, {"objectness": objectness, "attributes": zero, "box": zero}
    attributes, start = 0, 1
    for index, num_classes in enumerate(attribute_classes):
        targets = object_labels[:, 4 + index].long()
        attributes = attributes + F.cross_entropy(object_logits[:, start : start + num_classes], targets)
        start += num_classes
    box = F.l1_loss(object_logits[:, start:].sigmoid(), object_labels[:, :4], reduction="none").sum(-1).mean()
    loss = objectness + attributes + box_coefficient * box
    return loss, {"objectness": objectness, "attributes": attributes, "box": box}


def target_cells(boxes: torch.Tensor, grid_size: int) -> torch.Tensor:
    """Index (row-major) of the `grid_size` x `grid_size` cell holding each normalized cxcywh box's centre."""
    cells = (boxes[:, :2] * grid_size).floor().long().clamp(0, grid_size - 1)
    return cells[:, 1] * grid_size + cells[:, 0]


def target_token_loss(
    scores: torch.Tensor, labels: torch.Tensor, grid_size: int, visual_mask: torch.Tensor | None = None
) -> torch.Tensor:
    r"""
    Cross-entropy of a softmax over the visual tokens towards the token whose cell holds the target box's centre
    (a training-only auxiliary term that teaches the fusion encoder to mark the referred object).

    Args:
        scores (`torch.Tensor` of shape `(batch_size, grid_size * grid_size)`): one score per visual token.
        labels (`torch.Tensor` of shape `(batch_size, 4)`): ground-truth normalized (cx, cy, w, h) in the canvas.
        grid_size (`int`): side of the visual token grid (`image_size // backbone_stride`).
        visual_mask (`torch.Tensor` of shape `(batch_size, grid_size * grid_size)`, *optional*):
            True on real (non-padding) tokens; padding tokens are never chosen.
    """
    if scores.shape[-1] != grid_size * grid_size:
        raise ValueError(f"Expected {grid_size * grid_size} visual token scores, got {scores.shape[-1]}.")
    scores = scores.float()
    if visual_mask is not None:
        scores = scores.masked_fill(~visual_mask, torch.finfo(scores.dtype).min)
    return F.cross_entropy(scores, target_cells(labels, grid_size))


__all__ = [
    "box_area",
    "box_regression_loss",
    "center_to_corners",
    "dense_prediction_loss",
    "distillation_loss",
    "generalized_box_iou_loss",
    "grounding_loss",
    "target_cells",
    "target_token_loss",
]
