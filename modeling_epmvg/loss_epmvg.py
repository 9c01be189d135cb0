# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""EpmVG losses: box regression (smooth-L1 or L1) + GIoU, and the cross-modal distillation loss, as pure functions."""

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
    labels = labels.to(pred_boxes.dtype)
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
    teacher = F.adaptive_avg_pool1d(teacher_embeds.to(student_embeds.dtype).unsqueeze(1), student_embeds.shape[-1])
    teacher = teacher.squeeze(1)
    if kind == "cosine":
        return (1 - F.cosine_similarity(student_embeds, teacher, dim=-1)).mean()
    if kind == "l1":
        return F.l1_loss(student_embeds, teacher)
    raise ValueError(f"Unknown distillation loss {kind!r}: use 'cosine' or 'l1'.")


__all__ = [
    "box_area",
    "box_regression_loss",
    "center_to_corners",
    "distillation_loss",
    "generalized_box_iou_loss",
    "grounding_loss",
]
