# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Specification of the loss functions: hand-computed values on fixed boxes, and robustness on degenerate boxes."""

import math

import pytest
import torch

from modeling_epmvg.loss_epmvg import (
    box_regression_loss,
    center_to_corners,
    distillation_loss,
    generalized_box_iou_loss,
    grounding_loss,
)

from .conftest import tiny_config


def test_center_to_corners():
    boxes = torch.tensor([[0.5, 0.5, 0.2, 0.4]])
    torch.testing.assert_close(center_to_corners(boxes), torch.tensor([[0.4, 0.3, 0.6, 0.7]]))


def test_giou_of_identical_boxes_is_zero_and_of_disjoint_boxes_is_above_one():
    box = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    assert generalized_box_iou_loss(box, box).item() == pytest.approx(0.0, abs=1e-6)
    # [0,1]x[0,1] vs [2,3]x[0,1]: IoU 0, hull 3, union 2 -> GIoU = -1/3 -> loss 4/3
    far = torch.tensor([[2.0, 0.0, 3.0, 1.0]])
    assert generalized_box_iou_loss(box, far).item() == pytest.approx(4 / 3, abs=1e-6)


def test_giou_on_partially_overlapping_boxes_matches_hand_computation():
    # [0,2]x[0,2] vs [1,3]x[1,3]: intersection 1, union 7, hull 9 -> GIoU = 1/7 - 2/9
    loss = generalized_box_iou_loss(torch.tensor([[0.0, 0.0, 2.0, 2.0]]), torch.tensor([[1.0, 1.0, 3.0, 3.0]]))
    assert loss.item() == pytest.approx(1 - (1 / 7 - 2 / 9), abs=1e-6)


@pytest.mark.parametrize(
    "prediction",
    [
        [0.5, 0.5, 0.5, 0.5],  # a point
        [0.2, 0.5, 0.8, 0.5],  # a line
        [0.8, 0.8, 0.2, 0.2],  # inverted
    ],
)
def test_giou_loss_is_finite_with_finite_gradients_on_degenerate_predictions(prediction):
    pred = torch.tensor([prediction], requires_grad=True)
    loss = generalized_box_iou_loss(pred, torch.tensor([[0.5, 0.5, 0.5, 0.5]]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(pred.grad).all()


def test_box_regression_losses_sum_coordinates_and_average_the_batch():
    pred = torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.1, 0.1, 0.1, 0.1]])
    target = torch.tensor([[0.5, 0.5, 0.4, 0.2], [0.1, 0.1, 0.1, 2.1]])
    # L1: (0.2 + 2.0) / 2
    assert box_regression_loss(pred, target, "l1").item() == pytest.approx(1.1, abs=1e-6)
    # smooth L1 (beta 1): 0.5 * 0.2^2 = 0.02 and 2.0 - 0.5 = 1.5
    assert box_regression_loss(pred, target, "smooth_l1").item() == pytest.approx((0.02 + 1.5) / 2, abs=1e-6)
    with pytest.raises(ValueError, match="Unknown box loss"):
        box_regression_loss(pred, target, "mse")


def test_grounding_loss_weights_its_terms_with_the_config_coefficients():
    config = tiny_config(bbox_loss="l1", bbox_loss_coefficient=2.0, giou_loss_coefficient=3.0)
    pred = torch.tensor([[0.5, 0.5, 0.2, 0.2]])
    target = torch.tensor([[0.5, 0.5, 0.4, 0.2]])
    loss, terms = grounding_loss(pred, target, config)
    # widths 0.2 vs 0.4, same centre: IoU 0.5, hull == union -> GIoU loss 0.5
    assert terms["loss_bbox"].item() == pytest.approx(0.2, abs=1e-6)
    assert terms["loss_giou"].item() == pytest.approx(0.5, abs=1e-6)
    assert loss.item() == pytest.approx(2.0 * 0.2 + 3.0 * 0.5, abs=1e-5)


def test_distillation_loss_pools_the_teacher_to_the_student_width():
    student = torch.tensor([[1.0, 0.0]])
    teacher = torch.tensor([[3.0, 1.0, 0.0, 0.0]])  # adaptive average pool -> [2, 0]
    assert distillation_loss(student, teacher, "cosine").item() == pytest.approx(0.0, abs=1e-6)
    assert distillation_loss(student, teacher, "l1").item() == pytest.approx((1.0 + 0.0) / 2, abs=1e-6)
    orthogonal = torch.tensor([[0.0, 0.0, 5.0, 5.0]])  # pooled [0, 5]
    assert distillation_loss(student, orthogonal, "cosine").item() == pytest.approx(1.0, abs=1e-6)
    opposite = torch.tensor([[-1.0, -1.0, 0.0, 0.0]])
    assert distillation_loss(student, opposite, "cosine").item() == pytest.approx(2.0, abs=1e-6)
    assert math.isfinite(distillation_loss(student, torch.zeros(1, 4)).item())


def test_distillation_loss_rejects_mismatched_batches_and_unknown_kinds():
    with pytest.raises(ValueError, match="batch sizes differ"):
        distillation_loss(torch.zeros(2, 4), torch.zeros(3, 8))
    with pytest.raises(ValueError, match="Unknown distillation loss"):
        distillation_loss(torch.zeros(2, 4), torch.zeros(2, 8), "kl")
